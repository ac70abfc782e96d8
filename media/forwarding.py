"""The forwarding core: RTP packets in from one publisher, the same packets out
to each subscriber, never depacketised into frames, decoded or re-encoded.

This is what Janus VideoRoom and mediasoup do: a packet is SRTP-decrypted once
when it arrives, and for each subscriber only its header is rewritten (SSRC,
payload type, sequence number, timestamp, header extensions) before it is
SRTP-protected (in C, by pylibsrtp) and sent.

- A `Source` is one published stream (someone's microphone, camera or screen).
  It is fed `Pkt`s taken from an aiortc receiver once aiortc has decrypted,
  parsed and (for retransmissions) unwrapped them (see `media.internals.tap_packets`),
  or from another worker process (`media.cluster`).
- An `RtpForwarder` is one outgoing stream of one subscriber (a "slot"): it writes
  rewritten packets straight through the subscriber's DTLS transport. Its source
  can be switched (the "active speaker" slots); the subscriber sees one continuous
  stream: sequence numbers, timestamps and VP8 picture ids carry on across switches.
- Keyframes: a video forwarder starts (and restarts after a switch) only at the
  first packet of a keyframe and asks the publisher for one (PLI) when it is
  attached; a subscriber's own PLI/FIR is passed to the publisher; requests are rate
  limited per source. A subscriber's NACK is answered from a short per-slot history
  of sent packets, as an RTX retransmission.
- aiortc's `RTCRtpSender` of the slot still exists: it owns the SSRC and is in the SDP,
  and it receives the subscriber's RTCP. Its track (`IdleTrack`) never yields anything,
  so aiortc's own packetiser stays idle; sender reports for all of a participant's slots
  go out together once a second (`media.internals.sender_reports`).
"""
from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable
from fractions import Fraction

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.bandwidth import Rate

log = logging.getLogger(__name__)

TIME_BASE = {"video": Fraction(1, 90000), "audio": Fraction(1, 48000)}
CLOCK_RATE = {"video": 90000, "audio": 48000}
# Smallest timestamp step used to join two sources' timelines (1/30 s of video, 20 ms of Opus).
STEP = {"video": 3000, "audio": 960}
CODECS = {"video": "video/vp8", "audio": "audio/opus"}
KEYFRAME_INTERVAL = 0.3  # at most one keyframe request per source per 300 ms
HISTORY = 128            # sent video packets kept per slot for retransmission (about 4 s of a camera), as aiortc

RTP_HEAD = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence number, timestamp, SSRC
PICTURE_ID = struct.Struct("!H")


def is_vp8_keyframe(data: bytes) -> bool:
    """Bit 0 of the first byte of a VP8 frame is 0 for a key frame (RFC 6386 section 9.1)."""
    return bool(data) and not (data[0] & 0x01)


def vp8_descriptor(payload: bytes) -> tuple[bool, int, int]:
    """(starts a keyframe, 15-bit picture id or -1, offset of the picture id) of one VP8 RTP
    payload (RFC 7741 section 4.2)."""
    try:
        b = payload[0]
        i, pid, pos = 1, -1, 0
        if b & 0x80:  # X: extension byte follows
            x = payload[1]
            i = 2
            if x & 0x80:  # I: picture id
                if payload[2] & 0x80:  # M: 15 bits
                    pid, pos = ((payload[2] & 0x7F) << 8) | payload[3], 2
                    i = 4
                else:
                    i = 3
            if x & 0x40:  # L: TL0PICIDX
                i += 1
            if x & 0x30:  # T or K: TID/Y/KEYIDX
                i += 1
        # S=1 and partition 0: the first packet of a frame; then P=0 marks a keyframe.
        key = (b & 0x17) == 0x10 and not (payload[i] & 0x01)
        return key, pid, pos
    except IndexError:
        return False, -1, 0


class Pkt:
    """One received RTP packet, reduced to what forwarding needs."""

    __slots__ = ("at", "key", "marker", "payload", "pid", "pos", "seq", "ts")

    def __init__(self, seq: int, ts: int, marker: int, payload: bytes, key: bool = False, pid: int = -1,
                 pos: int = 0, at: float = 0.0) -> None:
        self.seq = seq
        self.ts = ts
        self.marker = marker  # 0x80 or 0
        self.payload = payload
        self.key = key        # the first packet of a VP8 keyframe
        self.pid = pid        # VP8 15-bit picture id, -1 if none
        self.pos = pos        # where the picture id sits in the payload
        self.at = at          # arrival, time.monotonic()


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
    """One published stream as RTP packets; fans out to its sinks."""

    def __init__(self, kind: str, label: str = "", request_keyframe: Callable[[], None] | None = None) -> None:
        if kind not in TIME_BASE:
            raise ValueError(kind)
        self.kind = kind
        self.label = label
        self.sinks: list = []
        self.keyframes = KeyframeRequests(request_keyframe)
        self.packets_in = 0
        self.octets_in = 0
        self.last_at = 0.0  # arrival of the last packet (time.monotonic())
        self.keyframes_in = 0
        self.rate = Rate()  # sampled once a second by the meeting, for the bandwidth allocation
        self.closed = False
        # called with True when the first sink attaches and False when the last one leaves
        self.on_demand: Callable[[bool], None] | None = None

    def feed_rtp(self, packet) -> None:
        """An aiortc `RtpPacket` (decrypted, parsed, retransmissions unwrapped)."""
        payload = packet.payload
        if self.kind == "video":
            key, pid, pos = vp8_descriptor(payload) if payload else (False, -1, 0)
        else:
            key, pid, pos = False, -1, 0
        self.feed(Pkt(packet.sequence_number, packet.timestamp, 0x80 if packet.marker else 0, payload,
                      key, pid, pos, time.monotonic()))

    def feed(self, p: Pkt) -> None:
        self.packets_in += 1
        self.octets_in += len(p.payload)
        self.last_at = p.at
        if p.key:
            self.keyframes_in += 1
        for sink in self.sinks:
            sink.push(p)

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

    def close(self) -> None:
        self.closed = True
        self.keyframes.cancel()
        for sink in list(self.sinks):
            sink.source_closed(self)
        self.sinks.clear()


class RtpForwarder:
    """One subscriber's outgoing stream ("slot"): rewrites and sends the packets of its current source.

    Until `configure` (called when aiortc starts the slot's sender, see
    `media.internals.forward_through`) it drops everything."""

    def __init__(self, kind: str) -> None:
        if kind not in TIME_BASE:
            raise ValueError(kind)
        self.kind = kind
        self.video = kind == "video"
        self.rate = CLOCK_RATE[kind]
        self.source: Source | None = None
        self.closed = False
        # set by configure()
        self._send: Callable[[bytes], None] | None = None
        self.b0 = 0x80
        self.pt = 0
        self.ssrc = 0
        self.ext = b""
        self.rtx_pt: int | None = None
        self.rtx_ssrc = 0
        self.rtx_seq = random.randrange(32768)
        self.cname = ""
        # the continuous outgoing stream
        self._fresh = True          # the next forwarded packet starts a new source epoch
        self.seq_off = self.ts_off = self.pid_off = 0
        self.first_seq = 0
        self.last_seq: int | None = None
        self.last_ts = 0
        self.last_at = 0.0
        self.last_pid = -1          # incoming picture id of the last forwarded packet
        self.history: list[bytes | None] | None = [None] * HISTORY if self.video else None
        # counters
        self.packets = 0
        self.octets = 0
        self.dropped = 0
        self.keyframe_starts = 0
        self.retransmitted = 0
        self.nacked = 0             # packets the subscriber asked for again (NACK)
        self.layer_switches = 0
        self.hold_retransmissions = False  # the subscriber's line is overflowing (media.bandwidth)
        self.sent_rate = Rate()  # sampled once a second, for the subscriber's bandwidth estimate
        self._pending: _PendingLayer | None = None  # the simulcast layer being switched to

    # -- set-up -------------------------------------------------------------------
    def configure(self, send: Callable[[bytes], None], *, b0: int, pt: int, ssrc: int, ext: bytes,
                  rtx_pt: int | None, rtx_ssrc: int) -> None:
        if self.closed:
            return
        self.b0, self.pt, self.ssrc, self.ext = b0, pt, ssrc, ext
        self.rtx_pt, self.rtx_ssrc = rtx_pt, rtx_ssrc
        self._send = send
        if self.source is not None:
            self.source.request_keyframe()

    @property
    def ready(self) -> bool:
        return self._send is not None

    # -- source ---------------------------------------------------------------------
    def set_source(self, source: Source | None, seamless: bool = False) -> None:
        """Forward `source` from now on. With `seamless` (another simulcast layer of the same camera), the
        current source goes on being forwarded until the new one's first keyframe arrives, so the
        subscriber never sees a frozen picture while the publisher makes that keyframe."""
        self._cancel_pending()
        if source is self.source:
            return
        if (seamless and self.video and source is not None and self.source is not None and not self._fresh
                and not self.closed):
            self._pending = _PendingLayer(self, source)
            source.attach(self._pending)
            return
        if self.source is not None:
            self.source.detach(self)
        self.source = source
        self._fresh = True
        if source is not None and not self.closed:
            source.attach(self)

    @property
    def target(self) -> Source | None:
        """The source being forwarded, or the one it is switching to."""
        return self._pending.source if self._pending is not None else self.source

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.source.detach(self._pending)
            self._pending = None

    def _switch(self, pending: _PendingLayer, p: Pkt) -> None:
        """The pending source sent the first packet of a keyframe: it becomes the source, in place of the
        stand-in among its sinks (the list is being iterated by `Source.feed`, so it is not resized)."""
        self._pending = None
        new = pending.source
        if self.source is not None:
            self.source.detach(self)
        sinks = new.sinks
        sinks[sinks.index(pending)] = self
        self.source = new
        self._fresh = True
        self.layer_switches += 1
        self.push(p)

    def source_closed(self, source: Source) -> None:
        if self._pending is not None and self._pending.source is source:
            self._pending = None
        if self.source is source:
            self.source = None
            self._fresh = True
            if self._pending is not None:  # nothing left to bridge the wait with
                pending, self._pending = self._pending, None
                pending.source.detach(pending)
                self.set_source(pending.source)

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (its PLI/FIR reached our sender)."""
        if self.source is not None:
            self.source.request_keyframe()

    # -- packets --------------------------------------------------------------------------
    def _start(self, p: Pkt) -> None:
        """Join `p`'s source onto the outgoing stream."""
        self._fresh = False
        if self.last_seq is None:  # the first source: pass its numbering through
            self.seq_off = self.ts_off = self.pid_off = 0
        else:
            self.seq_off = (self.last_seq + 1 - p.seq) & 0xFFFF
            gap = max(STEP[self.kind], int((p.at - self.last_at) * self.rate))
            self.ts_off = (self.last_ts + gap - p.ts) & 0xFFFFFFFF
            if p.pid >= 0 and self.last_pid >= 0:
                self.pid_off = ((self.last_pid + self.pid_off + 1) - p.pid) & 0x7FFF
            else:
                self.pid_off = 0
        self.first_seq = (p.seq + self.seq_off) & 0xFFFF
        if p.key:
            self.keyframe_starts += 1

    def push(self, p: Pkt) -> None:
        send = self._send
        if send is None:
            return
        if self._fresh:
            if self.video and not p.key:
                self.dropped += 1
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._start(p)
        seq = (p.seq + self.seq_off) & 0xFFFF
        since = (seq - self.first_seq) & 0xFFFF
        if since & 0x8000:
            self.dropped += 1  # a late packet from before this source joined the stream
            return
        if since > 0x4000:  # keep the epoch's start within reach of the 16-bit numbers
            self.first_seq = (seq - 0x1000) & 0xFFFF
        ts = (p.ts + self.ts_off) & 0xFFFFFFFF
        payload = p.payload
        if self.pid_off and p.pid >= 0:
            i = p.pos
            payload = b"".join((payload[:i], PICTURE_ID.pack(0x8000 | ((p.pid + self.pid_off) & 0x7FFF)),
                                payload[i + 2:]))
        data = b"".join((RTP_HEAD.pack(self.b0, self.pt | p.marker, seq, ts, self.ssrc), self.ext, payload))
        if self.history is not None:
            self.history[seq % HISTORY] = data
        self.packets += 1
        self.octets += len(payload)
        if self.last_seq is None or not (seq - self.last_seq) & 0x8000:  # not a reordered older packet
            self.last_seq = seq
            self.last_ts = ts
            self.last_at = p.at
            self.last_pid = p.pid
        try:
            send(data)
        except ConnectionError:
            pass

    def retransmit(self, seq: int) -> None:
        """The subscriber reported `seq` lost (NACK): resend it as RTX if we still have it."""
        self.nacked += 1
        if self.history is None or self.rtx_pt is None or self._send is None or self.hold_retransmissions:
            return
        data = self.history[seq % HISTORY]
        if data is None or ((data[2] << 8) | data[3]) != seq:
            return
        head = 12 + len(self.ext)
        rtx = b"".join((RTP_HEAD.pack(self.b0, self.rtx_pt | (data[1] & 0x80), self.rtx_seq,
                                      int.from_bytes(data[4:8], "big"), self.rtx_ssrc),
                        self.ext, data[2:4], data[head:]))
        self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
        self.retransmitted += 1
        try:
            self._send(rtx)
        except ConnectionError:
            pass

    def report(self) -> tuple[int, int, int, int] | None:
        """(RTP timestamp now, packets, octets, last timestamp) for an RTCP sender report, None before any packet."""
        if self.last_seq is None:
            return None
        now_ts = (self.last_ts + int((time.monotonic() - self.last_at) * self.rate)) & 0xFFFFFFFF
        return now_ts, self.packets, self.octets, self.last_ts

    def stop(self) -> None:
        self.closed = True
        self._cancel_pending()
        if self.source is not None:
            self.source.detach(self)
            self.source = None
        self._send = None
        self.history = None


class _PendingLayer:
    """Stands in, among the sinks of the layer a forwarder switches to, for the forwarder until that
    layer's first keyframe: it drops everything else."""

    __slots__ = ("forwarder", "source")

    def __init__(self, forwarder: RtpForwarder, source: Source) -> None:
        self.forwarder = forwarder
        self.source = source

    def push(self, p: Pkt) -> None:
        if p.key and self.forwarder.ready:
            self.forwarder._switch(self, p)

    def source_closed(self, source: Source) -> None:
        self.forwarder.source_closed(source)


class IdleTrack(MediaStreamTrack):
    """The track of a forwarding slot's `RTCRtpSender`: it never yields a frame (the
    forwarder writes packets itself), so aiortc's packetiser waits without cost."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped: asyncio.Future | None = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        self._stopped = asyncio.get_running_loop().create_future()
        await self._stopped
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
