"""The private aiortc internals the forwarding path depends on, in one place.

aiortc has no pass-through forwarding, so the worker reaches into private details
of aiortc 1.16.0 (pinned exactly in requirements.txt). Forwarding is done on RTP
packets, the way Janus does it:

1. Receive side: `RTCRtpReceiver.__jitter_buffer` (`_RTCRtpReceiver__jitter_buffer`)
   is replaced by a `PacketTap` before the receiver gets anything. aiortc calls its
   `add(packet)` for every RTP packet once it has SRTP-decrypted and parsed it,
   kept the RTCP receiver statistics, asked the publisher for missing packets
   (NACK) and unwrapped RTX retransmissions; the tap hands the packet to us and
   returns "no frame", so aiortc never assembles frames and its decoder thread idles.
2. Sending: `RTCDtlsTransport._send_rtp(data)` SRTP-protects (pylibsrtp, in C) one RTP
   packet with `_tx_srtp` and sends it through aioice, whose nominated candidate pair
   (`RTCIceTransport._connection._nominated[1]`) writes it to its UDP socket. `rtp_writer`
   does the same directly (no coroutines per packet); through a TURN relay it runs
   `_send_rtp` itself to completion synchronously (it never suspends).
3. `RTCRtpSender.send(parameters)` (public) is wrapped per slot to learn the negotiated
   payload types and header extensions; `RTCRtpSender._ssrc` / `_rtx_ssrc` give the slot's SSRCs.
4. `RTCRtpSender._send_keyframe()`: called when a subscriber sends PLI/FIR; overridden
   per sender to ask the publisher. `RTCRtpSender._retransmit(seq)`: called for each
   sequence number a subscriber NACKs; overridden per sender to answer from the slot's
   history.
5. `RTCRtpSender._run_rtcp()`: the sender's RTCP loop, started by `send()`, sends a sender
   report per slot every 0.5–1.5 s. It is replaced per sender by one that only sets the
   events `stop()` waits for (`_RTCRtpSender__rtcp_started`, `__rtcp_exited`); each
   participant sends one compound report for all its slots instead (`sender_reports`).
6. `RTCRtpReceiver._send_rtcp_pli(media_ssrc)`: asks the publisher for a keyframe.

For the synthetic clients and tests (which receive whole frames) the decoder queue
(`_RTCRtpReceiver__decoder_queue`) is tapped too (`tap_receiver`), and video receivers
get `SkippingJitterBuffer`.

`media.selftest` checks all of them, structurally and by sending real media through
them; the worker refuses to start when they have changed.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Callable

from aioice.ice import StunProtocol
from aiortc import RTCRtpReceiver, RTCRtpSender, clock
from aiortc.codecs import is_rtx
from aiortc.rtp import HeaderExtensionsMap, RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket, RtpPacket
from aiortc.jitterbuffer import JitterBuffer

log = logging.getLogger(__name__)

DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
VIDEO_JITTER_CAPACITY = 512  # aiortc's own value for video
DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"

FrameCallback = Callable[[object, object], None]  # (codec parameters, JitterFrame)


class FrameTap(queue.Queue):
    """Stands in for a receiver's decoder queue (clients and tests: see the module docstring)."""

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
            log.exception("handling an encoded frame failed")


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


class SkippingJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, except that a hole nobody repaired within `max_wait`
    seconds is skipped, together with the incomplete frames on either side of it.

    A hole's age is the time since the first packet after it arrived, so on a lossy line
    every hole waits `max_wait` at most, however many follow it (waiting `max_wait` per hole
    in turn would leave a receiver further behind with every one, and with holes coming
    faster than one per `max_wait` no frame would come out at all). Skipping drops the
    packets up to the first whole frame after the hole, calls `on_skip` (the source then
    makes its subscribers wait for a keyframe) and `add` reports a picture loss, so aiortc
    sends the publisher a PLI."""

    def __init__(self, on_skip=None, max_wait: float = 0.4) -> None:
        super().__init__(capacity=VIDEO_JITTER_CAPACITY, is_video=True)
        self.on_skip = on_skip
        self.max_wait = max_wait
        self.skips = 0
        self._arrived = [0.0] * self._capacity   # when the packet in each position arrived

    def add(self, packet):
        now = time.monotonic()
        self._arrived[packet.sequence_number % self._capacity] = now
        pli, frame = super().add(packet)
        while frame is None:
            first = self._packets[self._origin % self._capacity] if self._origin is not None else None
            if first is not None and first.timestamp == packet.timestamp:
                break  # the oldest frame is simply still arriving
            age = self._first_hole_age(now)
            if age is None or age <= self.max_wait:
                break
            self._skip()
            pli = True
            frame = self._remove_frame(packet.sequence_number)
        return pli, frame

    def _first_hole_age(self, now: float) -> float | None:
        """Seconds since the first packet after the oldest hole arrived (None: no packet after a hole)."""
        cap, packets, origin = self._capacity, self._packets, self._origin
        if origin is None:
            return None
        i = 0
        while i < cap and packets[(origin + i) % cap] is not None:
            i += 1
        while i < cap and packets[(origin + i) % cap] is None:
            i += 1
        return None if i >= cap else now - self._arrived[(origin + i) % cap]

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


# -- RTP-level forwarding -------------------------------------------------------------------------

RTCP_STARTED = "_RTCRtpSender__rtcp_started"
RTCP_EXITED = "_RTCRtpSender__rtcp_exited"
SR_PER_PACKET = 10  # sender reports per RTCP compound packet (10 × 28 bytes + CNAMEs stays under 1200 bytes)


class PacketTap:
    """Stands in for a receiver's jitter buffer (see module docstring, item 1)."""

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        self.on_packet = on_packet
        self.packets = 0

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self.packets += 1
        try:
            self.on_packet(packet)
        except Exception:
            log.exception("forwarding an RTP packet failed")
        return False, None


def tap_packets(receiver: RTCRtpReceiver, on_packet: Callable[[RtpPacket], None]) -> PacketTap:
    """Hand every RTP packet `receiver` gets (decrypted, RTX unwrapped) to `on_packet`
    instead of assembling frames. Must run before the receiver gets anything (the peer
    connection's "track" event is early enough)."""
    if not isinstance(getattr(receiver, JITTER_BUFFER, None), JitterBuffer):
        raise RuntimeError("aiortc changed: RTCRtpReceiver has no jitter buffer to replace")
    tap = PacketTap(on_packet)
    setattr(receiver, JITTER_BUFFER, tap)
    return tap


def rtp_writer(dtls) -> Callable[[bytes], None]:
    """A function that SRTP-protects and sends one RTP packet on `dtls` (an RTCDtlsTransport)
    at once. Raises ConnectionError while the transport is not connected.

    For the usual direct UDP path it does what `RTCDtlsTransport._send_rtp` and aioice do,
    without their four coroutines per packet: `_tx_srtp.protect` (pylibsrtp), then the
    nominated candidate pair's (`RTCIceTransport._connection._nominated[1]`) datagram
    transport. Any other path (a TURN relay) goes through `_send_rtp` itself, run to
    completion synchronously: it never suspends."""
    send_rtp = dtls._send_rtp
    nominated = dtls.transport._connection._nominated
    pair = sendto = addr = protect = None

    def slow(data: bytes) -> None:
        coro = send_rtp(data)
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()  # it waited for something: aiortc changed (the self-test catches this)
        raise RuntimeError("aiortc changed: RTCDtlsTransport._send_rtp suspended")

    def write(data: bytes, again_after: float | None = None) -> None:
        """`again_after`: send the same datagram once more that many seconds later (audio on a weak
        line, `media.pacer`): the copy is the same ciphertext, which the subscriber's SRTP replay
        check discards if the first arrived. Not on the slow path (a TURN relay)."""
        nonlocal pair, sendto, addr, protect
        current = nominated.get(1)
        if current is not pair:
            if current is None or dtls.state != "connected" or dtls._tx_srtp is None:
                raise ConnectionError("not connected")
            pair = current
            protocol = current.protocol
            if type(protocol) is StunProtocol and protocol.transport is not None:
                sendto, addr, protect = protocol.transport.sendto, current.remote_addr, dtls._tx_srtp.protect
            else:
                sendto = None
        if sendto is None:
            slow(data)
        else:
            datagram = protect(data)
            sendto(datagram, addr)
            if again_after is not None:
                asyncio.get_running_loop().call_later(again_after, _send_again, sendto, datagram, addr)

    write.direct = lambda: sendto is not None  # type: ignore[attr-defined]
    return write


def _send_again(sendto, datagram: bytes, addr) -> None:
    try:
        sendto(datagram, addr)
    except OSError:  # the socket closed meanwhile
        pass


def forward_through(sender: RTCRtpSender, forwarder, on_rtcp: Callable[[object], None] | None = None,
                    pace: Callable[[Callable[[bytes], None]], Callable[[bytes], None]] | None = None) -> None:
    """Make `sender` (a send-only transceiver's sender with an `IdleTrack`) the way out of
    `forwarder` (a `media.forwarding.RtpForwarder`): configure it when aiortc starts the
    sender, pass the subscriber's PLI/FIR and NACKs to it, and every RTCP packet aiortc routes
    to the sender (receiver reports, REMB) to `on_rtcp` (the bandwidth estimate). `pace` wraps
    the way out (the subscriber's `media.pacer.Pacer`)."""
    original_send = sender.send
    original_rtcp = sender._handle_rtcp_packet

    async def quiet_rtcp() -> None:
        """Stands in for the sender's own RTCP loop (a sender report per slot every 0.5–1.5 s):
        the participant sends one compound report for all its slots (`sender_reports`)."""
        getattr(sender, RTCP_STARTED).set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        getattr(sender, RTCP_EXITED).set()

    async def send(parameters) -> None:
        # aiortc calls this again after every renegotiation; only the first call starts the sender
        sender._run_rtcp = quiet_rtcp  # type: ignore[method-assign]
        await original_send(parameters)
        if forwarder.ready:
            return
        forwarder.cname = parameters.rtcp.cname or ""
        codec = parameters.codecs[0]
        pt = codec.payloadType
        rtx_pt = next((c.payloadType for c in parameters.codecs
                       if is_rtx(c) and c.parameters.get("apt") == pt), None)
        extensions = HeaderExtensionsMap()
        extensions.configure(parameters)
        template = RtpPacket(payload_type=pt)
        template.extensions.mid = parameters.muxId
        raw = template.serialize(extensions)
        write = rtp_writer(sender.transport)
        forwarder.configure(pace(write) if pace is not None else write, b0=raw[0], pt=pt, ssrc=sender._ssrc, ext=raw[12:],
                            rtx_pt=rtx_pt, rtx_ssrc=sender._rtx_ssrc)

    async def retransmit(sequence_number: int) -> None:
        forwarder.retransmit(sequence_number)

    async def handle_rtcp(packet) -> None:
        if on_rtcp is not None:
            try:
                on_rtcp(packet)
            except Exception:
                log.exception("bandwidth feedback failed")
        await original_rtcp(packet)

    sender.send = send  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]
    sender._send_keyframe = forwarder.request_keyframe  # type: ignore[method-assign]
    sender._retransmit = retransmit  # type: ignore[method-assign]


def sender_reports(forwarders) -> list[bytes]:
    """RTCP compound packets (at most `SR_PER_PACKET` sender reports each, then the CNAMEs) that
    describe what `forwarders` (media.forwarding.RtpForwarder) have sent, as of now."""
    ntp = clock.current_ntp_time()
    out = []
    batch = [f for f in forwarders if f.ready and f.report() is not None]
    for i in range(0, len(batch), SR_PER_PACKET):
        part = batch[i:i + SR_PER_PACKET]
        data = b""
        for f in part:
            rtp_ts, packets, octets, _ = f.report()
            data += bytes(RtcpSrPacket(ssrc=f.ssrc, sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp, rtp_timestamp=rtp_ts, packet_count=packets & 0xFFFFFFFF,
                octet_count=octets & 0xFFFFFFFF)))
        data += bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=f.ssrc, items=[(1, f.cname.encode())])
                                             for f in part]))
        out.append(data)
    return out


def rtcp_writer(dtls) -> Callable[[bytes], None]:
    """Sends one RTCP compound packet on `dtls` at once (`RTCDtlsTransport._send_rtp`, which SRTCP-protects
    it, run to completion). Raises ConnectionError while not connected."""
    send_rtp = dtls._send_rtp

    def write(data: bytes) -> None:
        coro = send_rtp(data)
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()
        raise RuntimeError("aiortc changed: RTCDtlsTransport._send_rtp suspended")

    return write
