"""The forwarding core with real aiortc peers in one process, and the start-up
self-test of the aiortc internals it relies on."""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import internals, net, selftest
from media.forwarding import HISTORY, IdleTrack, Pkt, RtpForwarder, Source, is_vp8_keyframe, vp8_descriptor
from media.synthetic import ClipTrack, vp8_clip


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _negotiate(offerer, answerer, on_offer=None):
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    if on_offer:
        on_offer()
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def _until(pred, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


def test_rtp_packets_in_same_frames_out_and_keyframe_on_subscribe():
    """Publisher → (packet tap) Source → RtpForwarder → subscriber: the subscriber reassembles byte-identical
    frames, the first a keyframe; attaching the subscriber sent a PLI that reached the publisher's sender."""

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        clip = vp8_clip(seconds=1.0, width=160, height=120, bitrate=100_000)
        # 30 frames at 15 fps with a single keyframe: a subscriber arriving late can only start after a PLI.
        camera = ClipTrack("video", clip)
        cfg = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        publisher, sfu_in, sfu_out, subscriber = (RTCPeerConnection(cfg) for _ in range(4))
        source = Source("video", "camera")
        forward, idle = RtpForwarder("video"), IdleTrack("video")
        try:
            t_in = sfu_in.addTransceiver("video", direction="recvonly")

            @sfu_in.on("track")
            def _(track):
                internals.tap_packets(t_in.receiver, source.feed_rtp)
                source.keyframes.send = lambda: asyncio.ensure_future(internals.send_pli(t_in.receiver))

            def attach():
                t = publisher.getTransceivers()[0]
                t.sender.replaceTrack(camera)
                t.direction = "sendonly"
                internals.on_keyframe_request(t.sender, camera.restart_gop)

            await _negotiate(sfu_in, publisher, attach)
            # let the clip run past its only keyframe
            assert await _until(lambda: source.packets_in >= 10)

            t_out = sfu_out.addTransceiver(idle, direction="sendonly")
            internals.forward_through(t_out.sender, forward)
            got: list[bytes] = []

            @subscriber.on("track")
            def _(track):
                r = next(t.receiver for t in subscriber.getTransceivers() if t.receiver.track is track)
                if r is subscriber.getTransceivers()[0].receiver:
                    internals.tap_receiver(r, lambda codec, frame: got.append(frame.data))

            await _negotiate(sfu_out, subscriber)
            assert await _until(lambda: forward.ready and sfu_out.connectionState == "connected")
            assert forward.ssrc == t_out.sender._ssrc and forward.pt != 0
            before = camera.keyframes_requested
            forward.set_source(source)  # subscribe
            assert await _until(lambda: camera.keyframes_requested > before), "no PLI reached the publisher"
            assert await _until(lambda: len(got) >= 10)
            assert is_vp8_keyframe(got[0]), "the subscriber must start at a keyframe"
            # the same encoded frames, in the order the publisher sent them
            assert all(f in clip for f in got[:10])
            idx = [clip.index(f) for f in got[:10]]
            # (a later keyframe request restarts the clip at its keyframe, frame 0)
            assert all((b - a) % len(clip) == 1 or b == 0 for a, b in zip(idx, idx[1:])), idx
            assert forward.keyframe_starts == 1
            assert forward.packets >= 10 and forward.octets > 0
            # a renegotiation (another slot for a newcomer) leaves the running stream alone
            dropped = forward.dropped
            other = IdleTrack("video")
            internals.forward_through(sfu_out.addTransceiver(other, direction="sendonly").sender, RtpForwarder("video"))
            await _negotiate(sfu_out, subscriber)
            count = len(got)
            assert await _until(lambda: len(got) >= count + 10)
            assert forward.keyframe_starts == 1 and forward.dropped == dropped, "the stream restarted"
            other.stop()
        finally:
            forward.stop()
            idle.stop()
            for pc in (publisher, sfu_in, sfu_out, subscriber):
                await pc.close()
            net.use_addresses(None)

    run(scenario())


def _vp8(pid: int, key: bool, start: bool = True, body: bytes = b"xyz") -> bytes:
    """A VP8 RTP payload with a 15-bit picture id (RFC 7741)."""
    return bytes([0x90 if start else 0x80, 0x80, 0x80 | (pid >> 8), pid & 0xFF,
                  0x00 if key else 0x01]) + body


def _pkt(seq, ts, payload, marker=0x80, at=0.0):
    key, pid, pos = vp8_descriptor(payload)
    return Pkt(seq, ts, marker, payload, key, pid, pos, at)


def _forwarder(kind="video", rtx=True):
    sent: list[bytes] = []
    f = RtpForwarder(kind)
    f.configure(sent.append, b0=0x90, pt=100, ssrc=0x01020304, ext=b"\xbe\xde\x00\x01\x10\x31\x00\x00",
                rtx_pt=101 if rtx else None, rtx_ssrc=0x0A0B0C0D)
    return f, sent


def _fields(data: bytes):
    import struct

    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    payload = data[20:]
    pid = ((payload[2] & 0x7F) << 8) | payload[3] if len(payload) >= 4 else None
    return b1 & 0x7F, b1 >> 7, seq, ts, ssrc, payload, pid


def test_vp8_descriptor():
    assert vp8_descriptor(_vp8(300, True)) == (True, 300, 2)
    assert vp8_descriptor(_vp8(300, False)) == (False, 300, 2)
    assert vp8_descriptor(_vp8(300, True, start=False))[0] is False  # not the first packet of the frame
    assert vp8_descriptor(b"\x10\x00abc") == (True, -1, 0)  # no extension byte, no picture id
    assert vp8_descriptor(b"\x90") == (False, -1, 0)  # truncated
    assert vp8_descriptor(b"") == (False, -1, 0)


def test_switching_sources_keeps_one_continuous_stream():
    """Two publishers through one slot: keyframe gating, then sequence numbers, timestamps and VP8
    picture ids carry on across the switch; only the SSRC/PT of the slot is ever sent."""

    async def scenario():
        requests = {"a": 0, "b": 0}
        a = Source("video", "a", request_keyframe=lambda: requests.__setitem__("a", requests["a"] + 1))
        b = Source("video", "b", request_keyframe=lambda: requests.__setitem__("b", requests["b"] + 1))
        f, sent = _forwarder()
        f.set_source(a)
        assert requests["a"] == 1  # subscribing asks for a keyframe
        a.feed(_pkt(1000, 50_000, _vp8(10, False)))  # a delta before any keyframe: dropped
        assert sent == [] and f.dropped == 1
        a.feed(_pkt(1001, 53_000, _vp8(11, True), marker=0, at=1.0))
        a.feed(_pkt(1002, 53_000, _vp8(11, False, start=False), at=1.0))
        a.feed(_pkt(1003, 56_000, _vp8(12, False), at=1.05))
        out = [_fields(d) for d in sent]
        assert [o[2] for o in out] == [1001, 1002, 1003]  # the first source passes its numbering through
        assert {o[0] for o in out} == {100} and {o[4] for o in out} == {0x01020304}
        assert [o[1] for o in out] == [0, 1, 1]
        assert all(d[12:20] == b"\xbe\xde\x00\x01\x10\x31\x00\x00" for d in sent)  # the slot's mid
        assert sent[0][20:] == _vp8(11, True)  # payload untouched

        f.set_source(b)  # the active speaker changed
        assert requests["b"] == 1
        b.feed(_pkt(7, 900, _vp8(5000, False), at=1.2))  # not a keyframe: wait, ask again
        assert len(sent) == 3
        b.feed(_pkt(8, 3900, _vp8(5001, True), at=1.5))
        b.feed(_pkt(6, 900, _vp8(5000, False), at=1.5))  # late, from before the switch: dropped
        b.feed(_pkt(9, 6900, _vp8(5002, False), at=1.55))
        a.feed(_pkt(1004, 59_000, _vp8(13, False)))  # the old source no longer reaches this slot
        out = [_fields(d) for d in sent]
        assert len(out) == 5
        assert [o[2] for o in out] == [1001, 1002, 1003, 1004, 1005]
        assert out[3][3] - out[2][3] >= 0.45 * 90000 * 0.99  # the timeline advances by the real gap
        assert out[4][3] - out[3][3] == 3000
        assert [o[6] for o in out] == [11, 11, 12, 13, 14]  # picture ids continue too
        assert out[3][5][4:] == _vp8(5001, True)[4:]
        assert f.keyframe_starts == 2

        # a source that leaves: nothing more is sent, and a new one joins the same stream
        b.close()
        assert f.source is None
        c = Source("video", "c")
        f.set_source(c)
        c.feed(_pkt(60000, 1, _vp8(1, True), at=2.0))
        assert _fields(sent[-1])[2] == 1006 and _fields(sent[-1])[6] == 15
        for s in (a, c):
            s.close()
        f.stop()

    run(scenario())


def test_sequence_numbers_wrap_and_audio_needs_no_keyframe():
    async def scenario():
        src = Source("audio", "mic")
        f, sent = _forwarder("audio", rtx=False)
        f.set_source(src)
        for i in range(5):
            src.feed(Pkt((65533 + i) & 0xFFFF, 960 * i, 0, b"opus%d" % i, at=i * 0.02))
        assert [_fields(d)[2] for d in sent] == [65533, 65534, 65535, 0, 1]
        for i in range(40000):  # a long talk: the epoch start must follow the 16-bit numbers
            src.feed(Pkt((2 + i) & 0xFFFF, 960 * (5 + i), 0, b"o"))
        assert len(sent) == 40005 and f.dropped == 0
        f.retransmit(1)  # no history for audio: nothing happens
        assert len(sent) == 40005
        f.stop()
        src.close()

    run(scenario())


def test_nack_is_answered_with_rtx_from_the_history():
    async def scenario():
        src = Source("video", "cam")
        f, sent = _forwarder()
        f.set_source(src)
        src.feed(_pkt(500, 9000, _vp8(1, True), marker=0))
        src.feed(_pkt(501, 9000, _vp8(1, False, start=False)))
        f.retransmit(500)
        import struct

        rtx = sent[-1]
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", rtx[:12])
        assert (b1 & 0x7F, ssrc, ts) == (101, 0x0A0B0C0D, 9000)
        assert rtx[12:20] == sent[0][12:20]
        assert rtx[20:22] == (500).to_bytes(2, "big") and rtx[22:] == sent[0][20:]  # OSN + original payload
        f.retransmit(502)  # never sent: nothing
        f.retransmit(500 + HISTORY)  # an older packet in the same history cell: not confused with it
        assert len(sent) == 3 and f.retransmitted == 1
        f.stop()
        src.close()

    run(scenario())


def test_keyframe_requests_are_rate_limited():
    async def scenario():
        sent = []
        source = Source("video", "cam", request_keyframe=lambda: sent.append(asyncio.get_running_loop().time()))
        for _ in range(20):
            source.request_keyframe()
        await asyncio.sleep(0.45)
        assert len(sent) == 2  # one at once, one when the 300 ms window ends
        assert sent[1] - sent[0] >= 0.29
        source.close()

    run(scenario())


def test_self_test_passes_on_the_pinned_aiortc():
    report = run(selftest.run())
    assert report.aiortc_version == selftest.PINNED
    assert len(report.checks) >= 6


def test_self_test_fails_loudly_when_an_internal_changes(monkeypatch):
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(selftest.SelfTestError, match="_send_keyframe"):
        selftest.check_structure()


def test_self_test_fails_when_the_jitter_buffer_is_gone(monkeypatch):
    monkeypatch.setattr(internals, "JITTER_BUFFER", "_RTCRtpReceiver__renamed_buffer")
    with pytest.raises(selftest.SelfTestError, match="jitter buffer"):
        run(selftest.run(timeout=3))


def test_self_test_fails_when_send_rtp_would_wait(monkeypatch):
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    original = RTCDtlsTransport._send_rtp

    async def slower(self, data):
        await asyncio.sleep(0)
        await original(self, data)

    monkeypatch.setattr(RTCDtlsTransport, "_send_rtp", slower)
    with pytest.raises(selftest.SelfTestError):
        run(selftest.run(timeout=3))


def _rtp(seq: int, ts: int, data: bytes):
    from aiortc.rtp import RtpPacket

    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts)
    p._data = data  # what aiortc's depayloader leaves on the packet
    return p


def test_a_hole_nobody_repairs_is_skipped_and_a_keyframe_requested():
    skipped = []
    jb = internals.SkippingJitterBuffer(on_skip=lambda: skipped.append(1), max_wait=0.05)
    frames = []

    def add(seq, ts, data):
        pli, frame = jb.add(_rtp(seq, ts, data))
        if frame is not None:
            frames.append(frame.data)
        return pli

    # frames of two packets each; the second packet of frame 3000 is lost for good
    add(100, 0, b"a1"), add(101, 0, b"a2"), add(102, 3000, b"b1")
    assert frames == [b"a1a2"]
    add(104, 6000, b"c1"), add(105, 6000, b"c2")
    assert frames == [b"a1a2"] and not skipped  # held back behind the hole, for now
    import time as _time

    _time.sleep(0.06)
    assert add(106, 9000, b"d1") is True  # stalled long enough: skip, and ask for a keyframe
    assert skipped == [1]
    add(107, 9000, b"d2"), add(108, 12000, b"e1")
    # the incomplete frame 3000 never comes out; later frames flow again
    assert b"b1" not in b"".join(frames) and frames[-1] == b"d1d2"


def test_reordered_packets_are_not_mistaken_for_a_hole():
    jb = internals.SkippingJitterBuffer(max_wait=0.0)
    out = []
    for seq, ts in ((1, 0), (3, 3000), (2, 0), (4, 3000), (5, 6000)):
        _, frame = jb.add(_rtp(seq, ts, bytes([seq])))
        if frame is not None:
            out.append(frame.data)
    assert out == [b"\x01\x02", b"\x03\x04"] and jb.skips == 0


def test_worker_event_loop_is_uvloop_and_honours_the_udp_port_range():
    """The worker runs on uvloop (pinned); host candidates bind inside the configured range."""
    import socket

    from media import net

    async def scenario():
        loop = asyncio.get_running_loop()
        assert isinstance(loop, net.MediaLoop)
        net.use_port_range(loop, (43000, 43004))
        transports = []
        for _ in range(5):
            t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
            transports.append(t)
        ports = sorted(t.get_extra_info("sockname")[1] for t in transports)
        assert ports == [43000, 43001, 43002, 43003, 43004]
        try:
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
            raise AssertionError("the range is full")
        except OSError as exc:
            assert "no free UDP port" in str(exc)
        for t in transports:
            t.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.close()
        return await selftest.run()

    report = net.run(scenario())
    assert "PLI to publisher on subscribe" in str(report)


def test_holes_in_a_row_each_wait_max_wait_at_most_not_one_after_another():
    """A lossy line leaves a hole every few frames: each is skipped once it is `max_wait` old, so frames
    keep coming out (waiting `max_wait` per hole in turn fell further behind with each one)."""
    import time as _time

    jb = internals.SkippingJitterBuffer(max_wait=0.05)
    out = []

    def add(seq, ts):
        _, frame = jb.add(_rtp(seq, ts, bytes([seq % 256])))
        if frame is not None:
            out.append(frame.timestamp)

    # frames of two packets; the second packet of every other frame is lost for good
    seq = 0
    for n in range(8):
        add(seq, n * 3000)
        if n % 2:
            add(seq + 1, n * 3000)
        seq += 2
    assert out == [] and jb.skips == 0       # held back behind the first hole
    _time.sleep(0.06)
    add(seq, 8 * 3000)                        # every hole is old now: all skipped at this one packet
    add(seq + 1, 8 * 3000)
    add(seq + 2, 9 * 3000)
    assert jb.skips == 4 and out and out[-1] == 8 * 3000
