"""Start-up self-test: do the aiortc internals we rely on still behave as we expect?

Run by the worker before it accepts anyone (it refuses to start on failure), by
`python -m media --self-test`, and by the test suite (`make test`).

It first checks that the private names exist with the expected shapes, then
sends real encoded media over loopback through a publisher → worker → subscriber
chain built exactly as the worker builds it, and checks:

- the replaced jitter buffer still receives every RTP packet, decrypted and parsed (tap),
- the audio-level header extension still arrives on those packets,
- `RTCDtlsTransport._send_rtp` still sends at once (never suspends), so rewritten packets
  reach the subscriber, which reassembles exactly the published frames, starting at a keyframe,
- `_send_rtcp_pli` still makes the publisher's sender call `_send_keyframe`,
- a subscriber's PLI still reaches our `_send_keyframe` override, its NACK our `_retransmit`,
- the sender reports aiortc sends carry the counters we set.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from importlib import metadata

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import internals, net
from media.forwarding import IdleTrack, RtpForwarder, Source, is_vp8_keyframe
from media.synthetic import ClipTrack, ToneTrack, vp8_clip

log = logging.getLogger(__name__)

PINNED = "1.16.0"


class SelfTestError(RuntimeError):
    pass


@dataclass
class Report:
    aiortc_version: str
    seconds: float = 0.0
    checks: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"aiortc {self.aiortc_version} internals OK in {self.seconds:.2f}s: " + "; ".join(self.checks))


def _fail(msg: str) -> None:
    raise SelfTestError(
        f"aiortc internals changed ({msg}). The media worker forwards RTP packets through private parts of "
        f"aiortc {PINNED}; pin aiortc=={PINNED} again or update media/internals.py.")


def check_structure() -> None:
    """Cheap checks that the private names still exist with the expected shapes."""
    for cls, name, params in ((RTCRtpReceiver, "_send_rtcp_pli", ["self", "media_ssrc"]),
                              (RTCRtpReceiver, "_handle_rtp_packet", ["self", "packet", "arrival_time_ms"]),
                              (RTCRtpSender, "_handle_rtcp_packet", ["self", "packet"]),
                              (RTCRtpSender, "_next_encoded_frame", ["self", "codec"])):
        fn = getattr(cls, name, None)
        if fn is None or not inspect.iscoroutinefunction(fn):
            _fail(f"{cls.__name__}.{name} is missing or no longer a coroutine")
        if list(inspect.signature(fn).parameters) != params:
            _fail(f"{cls.__name__}.{name} has a new signature {inspect.signature(fn)}")
    for cls, name, params in ((RTCRtpSender, "_retransmit", ["self", "sequence_number"]),
                              (RTCRtpSender, "send", ["self", "parameters"]),
                              (RTCDtlsTransport, "_send_rtp", ["self", "data"])):
        fn = getattr(cls, name, None)
        if fn is None or not inspect.iscoroutinefunction(fn):
            _fail(f"{cls.__name__}.{name} is missing or no longer a coroutine")
        if list(inspect.signature(fn).parameters) != params:
            _fail(f"{cls.__name__}.{name} has a new signature {inspect.signature(fn)}")
    src = inspect.getsource(RTCDtlsTransport._send_rtp)
    if "data = self._tx_srtp.protect(data)" not in src or "await self.transport._send(data)" not in src:
        _fail("RTCDtlsTransport._send_rtp no longer SRTP-protects with _tx_srtp and sends through ICE")
    import aioice.ice
    from aiortc.rtcicetransport import RTCIceTransport

    for fn, needle in ((RTCIceTransport.__init__, "self._send = self._connection.send"),
                       (aioice.ice.Connection.send, "await self.sendto(data, 1)"),
                       (aioice.ice.Connection.sendto, "active_pair = self._nominated.get(component)"),
                       (aioice.ice.Connection.sendto, "await active_pair.protocol.send_data(data, active_pair.remote_addr)"),
                       (aioice.ice.StunProtocol.send_data, "self.transport.sendto(data, addr)"),
                       (aioice.ice.Connection.__init__, "self._nominated: dict[int, CandidatePair] = {}")):
        if needle not in inspect.getsource(fn):
            _fail(f"aiortc/aioice no longer send RTP the way media.internals.rtp_writer does ({needle})")
    src = inspect.getsource(RTCRtpSender.__init__)
    for name in ("self._ssrc =", "self._rtx_ssrc =", *(f"self.__{n.split('__', 1)[1]} = asyncio.Event()"
                                                       for n in (internals.RTCP_STARTED, internals.RTCP_EXITED))):
        if name not in src:
            _fail(f"RTCRtpSender no longer sets {name.split()[0]}")
    fn = getattr(RTCRtpSender, "_run_rtcp", None)
    if fn is None or not inspect.iscoroutinefunction(fn) or list(inspect.signature(fn).parameters) != ["self"]:
        _fail("RTCRtpSender._run_rtcp is missing or has a new signature")
    src = inspect.getsource(RTCRtpSender.send)
    if "asyncio.ensure_future(self._run_rtcp())" not in src or "parameters.rtcp.cname" not in src:
        _fail("RTCRtpSender.send no longer starts its RTCP loop as we replace it")
    src = inspect.getsource(RTCRtpSender.stop)
    if "self.__rtcp_started.wait()" not in src or "self.__rtcp_exited.wait()" not in src:
        _fail("RTCRtpSender.stop no longer waits for the RTCP loop's events")
    src = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    if "await self._retransmit(seq)" not in src:
        _fail("RTCRtpSender no longer answers NACKs through _retransmit")
    src = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    steps = ("unwrap_rtx(", "self._send_rtcp_nack(", "self.__jitter_buffer.add(packet)")
    if any(step not in src for step in steps) or sorted(steps, key=src.index) != list(steps):
        _fail("RTCRtpReceiver._handle_rtp_packet no longer hands unwrapped packets to its jitter buffer")
    fn = getattr(RTCRtpSender, "_send_keyframe", None)
    if fn is None or list(inspect.signature(fn).parameters) != ["self"]:
        _fail("RTCRtpSender._send_keyframe is missing or has a new signature")
    src = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    if "self._send_keyframe()" not in src:
        _fail("RTCRtpSender no longer reacts to PLI/FIR through _send_keyframe")
    src = inspect.getsource(RTCRtpSender._next_encoded_frame)
    if ".pack(" not in src:
        _fail("RTCRtpSender no longer packs pre-encoded packets")
    src = inspect.getsource(RTCRtpReceiver.__init__)
    if "self.__decoder_queue" not in src:
        _fail("RTCRtpReceiver no longer has a decoder queue")
    if "self.__jitter_buffer = JitterBuffer(capacity=16, prefetch=4)" not in src:
        _fail("RTCRtpReceiver no longer makes the audio jitter buffer we replace")
    if "self.__jitter_buffer = JitterBuffer(capacity=512, is_video=True)" not in src:
        _fail("RTCRtpReceiver no longer makes the video jitter buffer we replace")
    from aiortc.jitterbuffer import JitterBuffer

    for name in ("_packets", "_origin", "_capacity", "_remove_frame", "remove"):
        if not hasattr(JitterBuffer(capacity=16), name):
            _fail(f"aiortc's JitterBuffer has no {name}")
    from aiortc import codecs

    audio = getattr(codecs, "CODECS", {}).get("audio") or []
    if not any(c.mimeType.lower() == "audio/opus" and isinstance(c.parameters, dict) for c in audio):
        _fail("aiortc.codecs.CODECS no longer lists Opus with parameters")
    exts = getattr(codecs, "HEADER_EXTENSIONS", None)
    if not isinstance(exts, dict) or not isinstance(exts.get("video"), list):
        _fail("aiortc.codecs.HEADER_EXTENSIONS is no longer a table of lists")


async def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            _fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def _negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection, on_offer=None) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    if on_offer:
        on_offer()
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def run(timeout: float = 15.0) -> Report:
    """Full self-test over loopback; raises SelfTestError when something changed."""
    started = time.monotonic()
    version = metadata.version("aiortc")
    report = Report(aiortc_version=version)
    if version != PINNED:
        log.warning("aiortc %s is installed but the worker was verified against %s", version, PINNED)
    check_structure()
    report.checks.append("names and signatures")

    previous = net.current_addresses()
    net.use_addresses(["127.0.0.1"])
    config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    publisher, sfu_in, sfu_out, subscriber = (RTCPeerConnection(config) for _ in range(4))
    taps: list[internals.PacketTap] = []
    slots: list[tuple[RtpForwarder, IdleTrack]] = []
    try:
        clip = vp8_clip(seconds=1.0, fps=15, width=160, height=120, bitrate=100_000)
        video_out = ClipTrack("video", clip)
        audio_out = ToneTrack()
        sent_video = set(clip)

        # -- publisher → worker, built as the worker builds it (worker offers recvonly) ---------
        sfu_in.addTransceiver("video", direction="recvonly")
        sfu_in.addTransceiver("audio", direction="recvonly")
        video_src = Source("video", "self-test camera")
        audio_src = Source("audio", "self-test microphone")
        levels: list[int] = []

        @sfu_in.on("track")
        def _on_track(track):
            receiver = next(t.receiver for t in sfu_in.getTransceivers() if t.receiver.track is track)
            if track.kind == "audio":
                def on_packet(packet):
                    level = packet.extensions.audio_level
                    if level is not None:
                        levels.append(level[1])
                    audio_src.feed_rtp(packet)
            else:
                on_packet = video_src.feed_rtp
            try:
                taps.append(internals.tap_packets(receiver, on_packet))
            except RuntimeError as exc:
                _fail(str(exc))
            if track.kind == "video":
                video_src.keyframes.send = lambda r=receiver: asyncio.ensure_future(internals.send_pli(r))

        def attach_publisher_tracks():
            for t in publisher.getTransceivers():
                t.sender.replaceTrack(video_out if t.kind == "video" else audio_out)
                t.direction = "sendonly"
                if t.kind == "video":
                    internals.on_keyframe_request(t.sender, video_out.restart_gop)

        await _negotiate(sfu_in, publisher, attach_publisher_tracks)
        await _wait(lambda: video_src.packets_in >= 5 and audio_src.packets_in >= 5, timeout,
                    "RTP packets reached the worker's replaced jitter buffers")
        report.checks.append("jitter buffer tap gets every RTP packet")
        await _wait(lambda: len(levels) >= 3, timeout, "audio levels arrived")
        report.checks.append("audio level header extension read")

        # -- worker → subscriber: rewritten RTP packets, subscribe requests a keyframe ---------
        senders = {}
        for kind in ("video", "audio"):
            track, fwd = IdleTrack(kind), RtpForwarder(kind)
            sender = sfu_out.addTransceiver(track, direction="sendonly").sender
            internals.forward_through(sender, fwd)
            slots.append((fwd, track))
            senders[kind] = sender
        fwd_video, fwd_audio = slots[0][0], slots[1][0]
        received: list[bytes] = []
        received_audio: list[bytes] = []
        sub_receivers = {}

        @subscriber.on("track")
        def _on_sub_track(track):
            receiver = next(t.receiver for t in subscriber.getTransceivers() if t.receiver.track is track)
            sub_receivers[track.kind] = receiver
            sink = received if track.kind == "video" else received_audio
            internals.tap_receiver(receiver, lambda codec, frame, sink=sink: sink.append(frame.data))

        await _negotiate(sfu_out, subscriber)
        await _wait(lambda: fwd_video.ready and fwd_audio.ready, timeout, "aiortc started the slots' senders")
        await _wait(lambda: sfu_out.connectionState == "connected", timeout, "the subscriber connected")
        requested_before = video_out.keyframes_requested
        fwd_video.set_source(video_src)
        fwd_audio.set_source(audio_src)
        await _wait(lambda: video_out.keyframes_requested > requested_before, timeout,
                    "a subscribe made the publisher's sender get a PLI (_send_rtcp_pli → _send_keyframe)")
        report.checks.append("PLI to publisher on subscribe")
        await _wait(lambda: len(received) >= 3, timeout,
                    "forwarded packets reached the subscriber (RTCDtlsTransport._send_rtp)")
        if not is_vp8_keyframe(received[0]):
            _fail("the first forwarded video frame was not a keyframe")
        if not set(received) <= sent_video:
            _fail("frames reassembled from forwarded packets differ from the published ones")
        await _wait(lambda: len(received_audio) >= 3, timeout, "forwarded audio reached the subscriber")
        if not fwd_video._send.direct():
            _fail("the loopback path did not use the direct UDP write")
        report.checks.append("rewritten packets out, the same frames, starting at a keyframe")

        # -- a subscriber's own PLI reaches the publisher through our _send_keyframe override ---------
        await asyncio.sleep(0.35)  # let the rate limit window pass
        requested_before = video_out.keyframes_requested
        if not await internals.send_pli(sub_receivers["video"]):
            _fail("the subscriber's receiver lists no synchronisation source")
        await _wait(lambda: video_out.keyframes_requested > requested_before, timeout,
                    "a subscriber's PLI reached the publisher")
        report.checks.append("subscriber PLI forwarded to publisher")

        # -- a subscriber's NACK is answered from the slot's history (as RTX) ---------------------------
        seq = fwd_video.last_seq
        await sub_receivers["video"]._send_rtcp_nack(senders["video"]._ssrc, [seq])
        await _wait(lambda: fwd_video.retransmitted >= 1, timeout, "a subscriber's NACK reached _retransmit")
        report.checks.append("subscriber NACK answered")

        # -- one compound packet of sender reports for all slots reaches the subscriber -------------------
        packets = internals.sender_reports([fwd_video, fwd_audio])
        if len(packets) != 1:
            _fail("sender reports for two slots did not make one compound packet")
        counts = {f.ssrc: f.report()[1] for f in (fwd_video, fwd_audio)}
        internals.rtcp_writer(senders["video"].transport)(packets[0])

        async def reported() -> bool:
            seen = {}
            for r in sub_receivers.values():
                for s in (await r.getStats()).values():
                    if s.type == "remote-outbound-rtp":
                        seen[s.ssrc] = s.packetsSent
            return all(seen.get(ssrc, -1) >= n for ssrc, n in counts.items())

        deadline = time.monotonic() + timeout
        while not await reported():
            if time.monotonic() > deadline:
                _fail("our sender reports did not reach the subscriber")
            await asyncio.sleep(0.1)
        try:
            await asyncio.wait_for(senders["audio"].stop(), 5)
        except TimeoutError:
            _fail("a sender with our RTCP loop does not stop")
        report.checks.append("sender reports, one compound packet per participant")
    finally:
        for fwd, track in slots:
            fwd.stop()
            track.stop()
        for pc in (publisher, sfu_in, sfu_out, subscriber):
            await pc.close()
        net.use_addresses(previous)
    for tap in taps:
        if tap.packets == 0:
            _fail("a tapped receiver delivered no packets")
    report.seconds = time.monotonic() - started
    return report


def run_sync(timeout: float = 15.0) -> Report:
    return net.run(run(timeout))


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    print(run_sync())
