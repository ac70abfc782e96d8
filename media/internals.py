"""The private aiortc internals the forwarding path depends on, in one place.

aiortc has no pass-through forwarding, so the worker reaches into four private
details of aiortc 1.16.0 (pinned exactly in requirements.txt):

1. `RTCRtpReceiver.__decoder_queue` (name-mangled `_RTCRtpReceiver__decoder_queue`):
   the receiver puts `(codec, JitterFrame)` there for its decoder thread. We
   replace it, before `receive()` starts that thread, with a queue that hands
   encoded frames to us on the event-loop thread and lets only the stop signal
   (None) through, so the decoder thread idles and exits normally.
2. `RTCRtpReceiver._send_rtcp_pli(media_ssrc)`: asks the publisher for a keyframe.
3. `RTCRtpSender._send_keyframe()`: called when a subscriber sends PLI/FIR; it only
   flags the (absent) encoder, so we override it per sender to reach the publisher.
4. `RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)`, called by the DTLS
   transport for every RTP packet: wrapped per audio receiver to read the
   ssrc-audio-level header extension (RFC 6464) that picks the active speakers.
5. `RTCRtpReceiver.__jitter_buffer` (`_RTCRtpReceiver__jitter_buffer`): replaced, for video
   receivers, by `SkippingJitterBuffer` (aiortc's own class, which holds every later frame
   back behind a packet that NACK/RTX did not repair until 512 packets have arrived — about
   17 s of a camera — skips such a hole after 0.4 s and asks for a keyframe).

`media.selftest` checks all four, structurally and by sending real media through
them; the worker refuses to start when they have changed.
"""
from __future__ import annotations

import logging
import queue
import time
from collections.abc import Awaitable, Callable

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer

log = logging.getLogger(__name__)

DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
VIDEO_JITTER_CAPACITY = 512  # aiortc's own value for video
DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"

FrameCallback = Callable[[object, object], None]  # (codec parameters, JitterFrame)
LevelCallback = Callable[[int], None]              # audio level in -dBov: 0 loudest … 127 silence


class FrameTap(queue.Queue):
    """Stands in for a receiver's decoder queue (see module docstring, item 1)."""

    def __init__(self, on_frame: FrameCallback) -> None:
        super().__init__()
        self.on_frame = on_frame
        self.frames = 0

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # stop signal: must reach the (idle) decoder thread
            super().put(None, block, timeout)
            return
        self.frames += 1
        try:
            self.on_frame(*item)
        except Exception:
            log.exception("forwarding an encoded frame failed")


def tap_receiver(receiver: RTCRtpReceiver, on_frame: FrameCallback) -> FrameTap:
    """Route `receiver`'s encoded frames to `on_frame` instead of its decoder.

    Must run before the receiver starts (the peer connection's "track" event is
    early enough)."""
    current = getattr(receiver, DECODER_QUEUE, None)
    if not isinstance(current, queue.Queue):
        raise RuntimeError("aiortc changed: RTCRtpReceiver has no decoder queue to tap")
    if getattr(receiver, DECODER_THREAD, None) is not None:
        raise RuntimeError("the receiver has already started its decoder")
    tap = FrameTap(on_frame)
    setattr(receiver, DECODER_QUEUE, tap)
    return tap


def watch_audio_level(receiver: RTCRtpReceiver, on_level: LevelCallback) -> None:
    """Call `on_level` with the ssrc-audio-level of every RTP packet `receiver` gets."""
    original: Callable[..., Awaitable[None]] = receiver._handle_rtp_packet

    async def _handle_rtp_packet(packet, arrival_time_ms):
        level = packet.extensions.audio_level
        if level is not None:
            try:
                on_level(level[1])
            except Exception:
                log.exception("audio level callback failed")
        await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = _handle_rtp_packet  # type: ignore[method-assign]


class SkippingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, except that a hole nobody repaired within `max_wait`
    seconds is skipped, together with the incomplete frames on either side of it.

    The buffer is stalled when a packet of a later frame has arrived and still no frame
    comes out. After `max_wait` of that, the packets up to the first whole frame after
    the hole are dropped, `on_skip` is called (the source then makes its subscribers wait
    for a keyframe) and `add` reports a picture loss, so aiortc sends the publisher a PLI."""

    def __init__(self, on_skip=None, max_wait: float = 0.4) -> None:
        super().__init__(capacity=VIDEO_JITTER_CAPACITY, is_video=True)
        self.on_skip = on_skip
        self.max_wait = max_wait
        self.skips = 0
        self._stalled_since: float | None = None

    def add(self, packet):
        pli, frame = super().add(packet)
        if frame is not None:
            self._stalled_since = None
            return pli, frame
        first = self._packets[self._origin % self._capacity] if self._origin is not None else None
        if first is not None and first.timestamp == packet.timestamp:
            return pli, frame  # the oldest frame is simply still arriving
        now = time.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= self.max_wait:
            self._skip()
            self._stalled_since = None
            pli = True
            frame = self._remove_frame(packet.sequence_number)
        return pli, frame

    def _skip(self) -> None:
        cap, packets, origin = self._capacity, self._packets, self._origin
        i = 0
        while i < cap and packets[(origin + i) % cap] is not None:  # the incomplete frame before the hole
            i += 1
        while i < cap and packets[(origin + i) % cap] is None:      # the hole
            i += 1
        if i < cap:                                                  # the frame the hole cut the start off
            ts = packets[(origin + i) % cap].timestamp
            while i < cap and packets[(origin + i) % cap] is not None and packets[(origin + i) % cap].timestamp == ts:
                i += 1
        self.remove(min(i, cap))
        self.skips += 1
        if self.on_skip is not None:
            try:
                self.on_skip()
            except Exception:
                log.exception("jitter buffer skip callback failed")


def skip_video_holes(receiver: RTCRtpReceiver, on_skip=None, max_wait: float = 0.4) -> SkippingJitterBuffer:
    """Give a video receiver the `SkippingJitterBuffer` (before it receives anything)."""
    current = getattr(receiver, JITTER_BUFFER, None)
    if not isinstance(current, JitterBuffer) or current.capacity != VIDEO_JITTER_CAPACITY:
        raise RuntimeError("aiortc changed: the video receiver's jitter buffer is not the expected one")
    buffer = SkippingJitterBuffer(on_skip, max_wait)
    setattr(receiver, JITTER_BUFFER, buffer)
    return buffer


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the publisher behind `receiver` for a keyframe; False if it has sent nothing yet."""
    sources = receiver.getSynchronizationSources()
    if not sources:
        return False
    ssrc = max(sources, key=lambda s: s.timestamp).source
    await receiver._send_rtcp_pli(ssrc)
    return True


def drop_abs_send_time() -> None:
    """Stop negotiating the abs-send-time header extension in this process.

    With it, every received video packet runs aiortc's receive-side bandwidth
    estimator (REMB), pure Python that loops once per elapsed millisecond; it
    was the largest single cost in a profile of the worker. REMB towards a
    publisher is not needed here (browsers cap their own camera bitrate, see
    meeting.js, and fall back to loss-based estimation), and REMB from
    subscribers cannot act on forwarded packets anyway. `HEADER_EXTENSIONS` is
    a public table of aiortc.codecs that every offer copies."""
    from aiortc import codecs

    codecs.HEADER_EXTENSIONS["video"][:] = [
        e for e in codecs.HEADER_EXTENSIONS["video"] if "abs-send-time" not in e.uri]


def request_opus_dtx() -> None:
    """Offer Opus with `usedtx=1` (and in-band FEC): browsers then send a silent microphone as a
    packet every 400 ms instead of 50 a second, so the many quiet people of a large meeting cost
    the worker almost nothing. `CODECS` is the public codec table of aiortc.codecs."""
    from aiortc import codecs

    for codec in codecs.CODECS["audio"]:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters.update({"usedtx": 1, "useinbandfec": 1})


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote side of `sender` asks for a keyframe (PLI/FIR)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]
