"""The forwarding core with real aiortc peers in one process, and the start-up
self-test of the aiortc internals it relies on."""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import internals, net, selftest
from media.forwarding import EncodedFrame, ForwardTrack, Source, is_vp8_keyframe
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


def test_encoded_frames_in_same_frames_out_and_keyframe_on_subscribe():
    """Publisher → (tap) Source → ForwardTrack → subscriber: bytes identical, first frame a keyframe,
    attaching the subscriber sent a PLI that reached the publisher's sender."""

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        clip = vp8_clip(seconds=1.0, width=160, height=120, bitrate=100_000)
        # 30 frames at 15 fps with a single keyframe: a subscriber arriving late can only start after a PLI.
        camera = ClipTrack("video", clip)
        cfg = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        publisher, sfu_in, sfu_out, subscriber = (RTCPeerConnection(cfg) for _ in range(4))
        source = Source("video", "camera")
        at_sfu: list[bytes] = []
        try:
            t_in = sfu_in.addTransceiver("video", direction="recvonly")

            @sfu_in.on("track")
            def _(track):
                def on_frame(codec, frame):
                    at_sfu.append(frame.data)
                    source.feed(EncodedFrame(frame.timestamp, frame.data, is_vp8_keyframe(frame.data)))
                internals.tap_receiver(t_in.receiver, on_frame)
                source.keyframes.send = lambda: asyncio.ensure_future(internals.send_pli(t_in.receiver))

            def attach():
                t = publisher.getTransceivers()[0]
                t.sender.replaceTrack(camera)
                t.direction = "sendonly"
                internals.on_keyframe_request(t.sender, camera.restart_gop)

            await _negotiate(sfu_in, publisher, attach)
            # let the clip run past its only keyframe
            assert await _until(lambda: len(at_sfu) >= 5)

            forward = ForwardTrack("video")
            t_out = sfu_out.addTransceiver(forward, direction="sendonly")
            internals.on_keyframe_request(t_out.sender, forward.request_keyframe)
            got: list[bytes] = []

            @subscriber.on("track")
            def _(track):
                r = subscriber.getTransceivers()[0].receiver
                internals.tap_receiver(r, lambda codec, frame: got.append(frame.data))

            await _negotiate(sfu_out, subscriber)
            before = camera.keyframes_requested
            forward.set_source(source)  # subscribe
            assert await _until(lambda: camera.keyframes_requested > before), "no PLI reached the publisher"
            assert await _until(lambda: len(got) >= 10)
            assert is_vp8_keyframe(got[0]), "the subscriber must start at a keyframe"
            # the same encoded frames, in the same order, as the worker received from the publisher
            assert any(at_sfu[i:i + 10] == got[:10] for i in range(len(at_sfu)))
            assert set(got) <= set(clip)
            assert forward.dropped >= 0 and source.frames_in >= len(at_sfu)
        finally:
            for pc in (publisher, sfu_in, sfu_out, subscriber):
                await pc.close()
            net.use_addresses(None)

    run(scenario())


def test_slow_subscriber_drops_to_next_keyframe():
    async def scenario():
        requests = []
        source = Source("video", "cam", request_keyframe=lambda: requests.append(1))
        track = ForwardTrack("video", max_queue=3)
        track.set_source(source)
        assert requests == [1]  # subscribing asks for a keyframe
        source.feed(EncodedFrame(0, b"\x01delta", False))
        assert track.dropped == 1  # nothing before the first keyframe
        for i in range(3):
            source.feed(EncodedFrame(3000 * (i + 1), b"\x00key" if i == 0 else b"\x01d", i == 0))
        # the queue is full (nobody reads): the next delta empties it and waits for a keyframe
        source.feed(EncodedFrame(20000, b"\x01d", False))
        assert track.overflows == 1 and not track._queue
        source.feed(EncodedFrame(23000, b"\x01d", False))
        assert not track._queue
        source.feed(EncodedFrame(26000, b"\x00key2", True))
        pkt = await track.recv()
        assert bytes(pkt) == b"\x00key2"
        # timestamps stay continuous and grow
        source2 = Source("video", "other")
        track.set_source(source2)
        source2.feed(EncodedFrame(5, b"\x00k", True))
        pkt2 = await track.recv()
        assert pkt2.pts > pkt.pts
        track.stop()
        source.keyframes.cancel()
        source2.keyframes.cancel()

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


def test_self_test_fails_when_the_decoder_queue_is_gone(monkeypatch):
    monkeypatch.setattr(internals, "DECODER_QUEUE", "_RTCRtpReceiver__renamed_queue")
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
    # a source told about the skip makes its subscribers wait for the next keyframe
    source = Source("video", "cam")
    track = ForwardTrack("video")
    track.set_source(source)
    source.feed(EncodedFrame(0, b"\x00key", True))
    source.discontinuity()
    source.feed(EncodedFrame(3000, b"\x01delta", False))
    assert len(track._queue) == 1 and track.dropped == 1
    track.stop()
    source.close()


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
