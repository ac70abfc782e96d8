"""Simulcast (issue 15) with the real worker and real aiortc participants: a publisher sends two layers
with RIDs, each subscriber gets the high layer on its stage and the low layer on thumbnails, layers
change on a keyframe of the new layer with one continuous outgoing stream, and the SDP handling."""
from __future__ import annotations

import asyncio

import pytest

from media import simulcast
from media.client import SyntheticParticipant, vp8_width
from media.config import WorkerConfig
from media.forwarding import Pkt, RtpForwarder, Source, vp8_descriptor
from media.synthetic import opus_clip, vp8_clip
from tests.live_support import until
from tests.test_media_signalling import token, with_worker

LOW = dict(width=160, height=120, bitrate=80_000)
HIGH = dict(width=320, height=240, bitrate=250_000)


def layers():
    return {"l": vp8_clip(**LOW), "h": vp8_clip(**HIGH)}


OFFER = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
         "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=recvonly\r\n"
         "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:1\r\na=recvonly\r\n"
         "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:2\r\na=recvonly\r\n")


def test_offer_and_answer_carry_the_layers_of_the_camera_only():
    sdp = simulcast.offer_layers(OFFER, "1")
    camera = simulcast.sections(sdp)[2]
    assert "a=rid:l recv" in camera and "a=rid:h recv" in camera and "a=simulcast:recv l;h" in camera
    assert not any("rid" in line for s in simulcast.sections(sdp) if "a=mid:1" not in s for line in s)
    assert simulcast.offer_layers(sdp, "1") == sdp  # never twice
    answer = OFFER.replace("a=mid:1\r\na=recvonly", "a=mid:1\r\na=sendonly\r\na=simulcast:send h;l")
    assert simulcast.answered_layers(answer, "1") == ["l", "h"]  # low first, whatever the answer's order
    assert simulcast.answered_layers(answer, "2") == []
    paused = answer.replace("send h;l", "send ~h;l")
    assert simulcast.answered_layers(paused, "1") == []  # one layer left: no simulcast
    odd = answer.replace("send h;l", "send h;x;l,zz")
    assert simulcast.answered_layers(odd, "1") == ["l", "h"]
    assert simulcast.answered_layers(None, "1") == [] and simulcast.answered_layers(OFFER, None) == []


def test_simulcast_setting():
    base = {"COLLAB_SECRET_KEY": "k"}
    assert WorkerConfig.from_env(base).simulcast is True
    assert WorkerConfig.from_env({**base, "COLLAB_MEDIA_SIMULCAST": "off"}).simulcast is False
    with pytest.raises(ValueError, match="COLLAB_MEDIA_SIMULCAST must be on or off"):
        WorkerConfig.from_env({**base, "COLLAB_MEDIA_SIMULCAST": "maybe"})


def _vp8(pid: int, key: bool) -> bytes:
    frame = (b"\x00" if key else b"\x01") + b"\x00\x00\x9d\x01\x2a"
    return bytes([0x90, 0x80, 0x80 | (pid >> 8), pid & 0xFF]) + frame


def _feed(src: Source, seq: int, ts: int, pid: int, key: bool = False) -> None:
    payload = _vp8(pid, key)
    k, p, pos = vp8_descriptor(payload)
    src.feed(Pkt(seq, ts, 0x80, payload, k, p, pos, 0.0))


def test_layer_switch_waits_for_the_new_layers_keyframe_and_keeps_one_stream():
    """Until the target layer's keyframe the old layer goes on; then the new one follows with consecutive
    sequence numbers and picture ids; the target got a keyframe request when the switch began."""

    async def scenario():
        asked = {"low": 0, "high": 0}
        low = Source("video", "low", request_keyframe=lambda: asked.__setitem__("low", asked["low"] + 1))
        high = Source("video", "high", request_keyframe=lambda: asked.__setitem__("high", asked["high"] + 1))
        sent: list[bytes] = []
        f = RtpForwarder("video")
        f.configure(sent.append, b0=0x80, pt=96, ssrc=1, ext=b"", rtx_pt=None, rtx_ssrc=0)
        f.set_source(low)
        _feed(low, 100, 1000, 7, key=True)
        _feed(low, 101, 4000, 8)
        f.set_source(high, seamless=True)
        assert f.source is low and f.target is high and asked["high"] == 1
        _feed(high, 5000, 90000, 300)          # a delta frame of the high layer: not forwarded
        _feed(low, 102, 7000, 9)               # the low layer still is
        _feed(high, 5001, 93000, 301, key=True)
        _feed(low, 103, 10000, 10)             # no longer forwarded
        _feed(high, 5002, 96000, 302)
        assert f.source is high and f.layer_switches == 1 and low.sinks == [] and high.sinks == [f]
        seqs = [int.from_bytes(d[2:4], "big") for d in sent]
        pids = [int.from_bytes(d[14:16], "big") & 0x7FFF for d in sent]
        keys = [not d[16] & 1 for d in sent]
        assert seqs == [100, 101, 102, 103, 104]
        assert pids == [7, 8, 9, 10, 11]
        assert keys == [True, False, False, True, False]
        # switching back and changing one's mind before the keyframe: the pending layer is forgotten
        f.set_source(low, seamless=True)
        f.set_source(high, seamless=True)
        assert f.target is high and low.sinks == []
        f.stop()
        assert high.sinks == []

    asyncio.run(scenario())


def test_vp8_width_reads_keyframes_only():
    clip = vp8_clip(**LOW)
    assert vp8_width(clip[0]) == 160 and vp8_width(clip[1]) is None and vp8_width(b"") is None


def test_stage_gets_the_high_layer_thumbnails_the_low_one_and_layers_follow_the_speaker():
    """Two simulcast publishers and a subscriber: the speaker's camera arrives at 320 px (high layer),
    the other at 160 px (low layer); when the other one speaks instead, the two swap layers, each
    switch starting on a keyframe, while frames keep arriving."""
    audio = opus_clip()

    async def scenario(url):
        a = await SyntheticParticipant(url, token(1), audio=audio, layers=layers(), speaking=True).start()
        b = await SyntheticParticipant(url, token(2), audio=audio, layers=layers()).start()
        viewer = await SyntheticParticipant(url, token(3), audio=audio).start()
        try:
            assert await until(lambda: viewer.widths.get((1, "video")) == 320
                               and viewer.widths.get((2, "video")) == 160, 30)
            assert all(layer.sent > 0 for layer in a.layers + b.layers), "both layers are published"
            # the speaker changes: layers swap
            a.speaking, b.speaking = False, True
            assert await until(lambda: viewer.widths.get((1, "video")) == 160
                               and viewer.widths.get((2, "video")) == 320, 30)
            before = viewer.video_frames_from(1), viewer.video_frames_from(2)
            assert await until(lambda: viewer.video_frames_from(1) > before[0] + 10
                               and viewer.video_frames_from(2) > before[1] + 10)
            assert viewer.errors == [] and a.errors == [] and b.errors == []
        finally:
            for p in (a, b, viewer):
                await p.leave()

    with_worker(scenario, timeout=90)


def test_with_simulcast_off_the_worker_offers_no_layers_and_forwards_the_one_stream():
    audio = opus_clip()

    async def scenario(url):
        a = await SyntheticParticipant(url, token(1), audio=audio, layers=layers(), speaking=True).start()
        viewer = await SyntheticParticipant(url, token(3), audio=audio).start()
        try:
            assert await until(lambda: viewer.widths.get((1, "video")) == 320, 30)
            offers = [m for m in a.messages if m["type"] == "offer"]
            assert offers and not any("a=simulcast" in m["sdp"] for m in offers)
            assert all(layer.sent == 0 for layer in a.layers)
        finally:
            for p in (a, viewer):
                await p.leave()

    with_worker(scenario, timeout=60, simulcast=False)


def test_a_camera_whose_uplink_collapses_is_shown_as_paused_by_a_weak_connection():
    """A publisher whose camera is on and watched but whose packets stop arriving (its uplink collapsed)
    is announced with "stalled": true, and false again once its packets flow."""
    audio = opus_clip()

    async def scenario(url):
        a = await SyntheticParticipant(url, token(1), audio=audio, layers=layers(), speaking=True).start()
        viewer = await SyntheticParticipant(url, token(3), audio=audio).start()
        try:
            assert await until(lambda: viewer.video_frames_from(1) > 5, 30)
            for layer in a.layers:  # the line goes dead: nothing leaves the publisher
                layer.track.paused = True
            assert await until(lambda: viewer.members.get(1, {}).get("stalled") is True, 15)
            for layer in a.layers:
                layer.track.paused = False
                layer.track.restart_gop()
            assert await until(lambda: viewer.members.get(1, {}).get("stalled") is False, 15)
            assert not a.members.get(3, {}).get("stalled")
        finally:
            for p in (a, viewer):
                await p.leave()

    with_worker(scenario, timeout=90)


def test_a_camera_nobody_is_shown_large_sends_its_low_layer_alone_until_someone_is(monkeypatch):
    """The speaker is on everyone's stage; the other camera is only a thumbnail: the worker asks its browser to
    send the low layer alone (the full one costs the uplink for nothing, Jitsi's sender constraints), and as
    soon as it is wanted large — its owner speaks — the full layer again, starting with a keyframe."""
    import media.members

    monkeypatch.setattr(media.members, "PAUSE_AFTER", 0.5)
    audio = opus_clip()

    async def scenario(url):
        speaker = await SyntheticParticipant(url, token(1), audio=audio, layers=layers(), speaking=True).start()
        other = await SyntheticParticipant(url, token(2), audio=audio, layers=layers()).start()
        viewer = await SyntheticParticipant(url, token(3), audio=audio).start()
        await speaker.send({"type": "receive", "video": False})   # audio only: the speaker is shown nobody
        try:
            assert await until(lambda: viewer.widths.get((1, "video")) == 320
                               and viewer.widths.get((2, "video")) == 160, 30)
            assert await until(lambda: {"type": "pause", "source": "video", "paused": False, "low_only": True}
                               in other.messages)
            high, low = (next(x for x in other.layers if x.rid == r) for r in ("h", "l"))
            assert high.track.paused and not low.track.paused
            sent_high, seen = high.sent, viewer.video_frames_from(2)
            assert await until(lambda: viewer.video_frames_from(2) > seen + 10)   # the thumbnail goes on
            assert high.sent == sent_high   # nothing of the full layer meanwhile
            # the speaker's camera, on the viewer's stage, keeps both layers
            assert not any(m.get("low_only") for m in speaker.messages if m["type"] == "pause")
            # the other one speaks: the full layer at once, and the viewer's stage shows it large
            speaker.speaking, other.speaking = False, True
            assert await until(lambda: not high.track.paused and viewer.widths.get((2, "video")) == 320, 30)
            assert high.sent > sent_high
        finally:
            for p in (speaker, other, viewer):
                await p.leave()

    with_worker(scenario, timeout=90)
