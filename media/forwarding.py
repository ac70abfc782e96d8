"""The forwarding core: encoded frames in from one publisher, the same frames out
to each subscriber, never decoded or re-encoded.

- A `Source` is one published stream (someone's microphone, camera or screen).
  It is fed encoded frames taken from an aiortc receiver after its jitter
  buffer (see `media.internals.tap_receiver`) or from another worker process.
- A `ForwardTrack` is one outgoing stream of one subscriber. aiortc's
  `RTCRtpSender` pulls `av.Packet`s from it and only packetises them (the same
  path as `MediaPlayer(decode=False)`). Its source can be switched (the
  "active speaker" slots); timestamps stay continuous across switches.
- Keyframes: a video ForwardTrack drops frames until the first keyframe after it
  is attached and asks the publisher for one (PLI); a subscriber's own PLI/FIR
  is passed to the publisher; requests are rate limited per source. A slow
  subscriber's queue is small and bounded: on overflow it is emptied and the
  track waits for the next keyframe instead of falling further behind.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

TIME_BASE = {"video": Fraction(1, 90000), "audio": Fraction(1, 48000)}
# Timestamp step used to join two sources' timelines (one frame: 1/30 s of video, 20 ms of Opus).
STEP = {"video": 3000, "audio": 960}
CODECS = {"video": "video/vp8", "audio": "audio/opus"}
KEYFRAME_INTERVAL = 0.3  # at most one keyframe request per source per 300 ms
VIDEO_QUEUE = 8          # frames (about half a second at 15 fps)
AUDIO_QUEUE = 10         # 200 ms of Opus


def is_vp8_keyframe(data: bytes) -> bool:
    """Bit 0 of the first byte of a VP8 frame is 0 for a key frame (RFC 6386 section 9.1)."""
    return bool(data) and not (data[0] & 0x01)


class EncodedFrame:
    __slots__ = ("data", "keyframe", "timestamp")

    def __init__(self, timestamp: int, data: bytes, keyframe: bool) -> None:
        self.timestamp = timestamp
        self.data = data
        self.keyframe = keyframe


class KeyframeRequests:
    """Calls `send` at most once per `interval`; a request inside the window is
    sent when the window ends, so a late subscriber is never forgotten."""

    def __init__(self, send: Callable[[], None] | None, interval: float = KEYFRAME_INTERVAL) -> None:
        self.send = send
        self.interval = interval
        self._last = -1e9
        self._pending: asyncio.TimerHandle | None = None
        self.sent = 0

    def request(self) -> None:
        if self.send is None or self._pending is not None:
            return
        now = time.monotonic()
        wait = self._last + self.interval - now
        if wait <= 0:
            self._fire()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        self.sent += 1
        try:
            if self.send is not None:
                self.send()
        except Exception:  # a publisher that just left must not break its subscribers
            log.exception("keyframe request failed")

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self.send = None


class Source:
    """One published stream as encoded frames; fans out to its sinks."""

    def __init__(self, kind: str, label: str = "", request_keyframe: Callable[[], None] | None = None) -> None:
        if kind not in TIME_BASE:
            raise ValueError(kind)
        self.kind = kind
        self.label = label
        self.sinks: list = []
        self.keyframes = KeyframeRequests(request_keyframe)
        self.frames_in = 0
        self.last_frame_at = 0.0
        self.closed = False
        # called with True when the first sink attaches and False when the last one leaves
        self.on_demand: Callable[[bool], None] | None = None

    def feed(self, frame: EncodedFrame) -> None:
        self.frames_in += 1
        self.last_frame_at = time.monotonic()
        for sink in self.sinks:
            sink.push(frame)

    def attach(self, sink) -> None:
        if sink not in self.sinks:
            self.sinks.append(sink)
            if len(self.sinks) == 1 and self.on_demand is not None:
                self.on_demand(True)
            if self.kind == "video":
                self.request_keyframe()

    def detach(self, sink) -> None:
        try:
            self.sinks.remove(sink)
        except ValueError:
            return
        if not self.sinks and self.on_demand is not None and not self.closed:
            self.on_demand(False)

    def request_keyframe(self) -> None:
        if self.kind == "video" and not self.closed:
            self.keyframes.request()

    def discontinuity(self) -> None:
        """Frames were lost on the way in: every subscriber must wait for the next keyframe."""
        for sink in self.sinks:
            sink.resync()
        self.request_keyframe()

    def close(self) -> None:
        self.closed = True
        self.keyframes.cancel()
        for sink in list(self.sinks):
            sink.source_closed(self)
        self.sinks.clear()


class ForwardTrack(MediaStreamTrack):
    """An outgoing track whose `recv()` returns `av.Packet`s of encoded frames."""

    def __init__(self, kind: str, *, max_queue: int | None = None) -> None:
        super().__init__()
        if kind not in TIME_BASE:
            raise ValueError(kind)
        self.kind = kind
        self.time_base = TIME_BASE[kind]
        self.max_queue = max_queue or (VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE)
        self.source: Source | None = None
        self._queue: deque = deque()
        self._waiter: asyncio.Future | None = None
        self._need_keyframe = kind == "video"
        self._offset: int | None = None
        self._last_out: int | None = None
        self.frames_out = 0
        self.dropped = 0
        self.overflows = 0

    # -- source ---------------------------------------------------------------
    def set_source(self, source: Source | None) -> None:
        if source is self.source:
            return
        if self.source is not None:
            self.source.detach(self)
        self.source = source
        self._queue.clear()
        self._offset = None
        self._need_keyframe = self.kind == "video"
        if source is not None:
            source.attach(self)

    def source_closed(self, source: Source) -> None:
        if self.source is source:
            self.source = None
            self._queue.clear()
            self._offset = None

    def resync(self) -> None:
        if self.kind == "video":
            self._need_keyframe = True

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (its PLI/FIR reached our sender)."""
        if self.source is not None:
            self.source.request_keyframe()

    # -- frames in (event-loop thread) ---------------------------------------------
    def push(self, frame: EncodedFrame) -> None:
        if self.readyState != "live":
            return
        queue = self._queue
        if self.kind == "video":
            if self._need_keyframe:
                if not frame.keyframe:
                    self.dropped += 1
                    if self.source is not None:
                        self.source.request_keyframe()
                    return
                self._need_keyframe = False
            if len(queue) >= self.max_queue:
                # The subscriber cannot keep up: start again from the next keyframe.
                self.overflows += 1
                self.dropped += len(queue)
                queue.clear()
                if not frame.keyframe:
                    self._need_keyframe = True
                    self.dropped += 1
                    if self.source is not None:
                        self.source.request_keyframe()
                    return
        elif len(queue) >= self.max_queue:
            queue.popleft()
            self.dropped += 1
            self.overflows += 1

        ts = frame.timestamp
        if self._offset is None:
            self._offset = (0 if self._last_out is None else self._last_out + STEP[self.kind]) - ts
        out = ts + self._offset
        if self._last_out is not None and out <= self._last_out - 10 * STEP[self.kind]:
            # The publisher's clock went backwards (it restarted): rejoin the timeline.
            self._offset = self._last_out + STEP[self.kind] - ts
            out = ts + self._offset
        self._last_out = out

        packet = av.Packet(frame.data)
        packet.pts = out
        packet.time_base = self.time_base
        queue.append(packet)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- frames out (aiortc's RTCRtpSender) -------------------------------------------
    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._queue:
                self.frames_out += 1
                return self._queue.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def stop(self) -> None:
        if self.source is not None:
            self.source.detach(self)
            self.source = None
        self._queue.clear()
        super().stop()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
