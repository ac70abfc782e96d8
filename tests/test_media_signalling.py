"""The media worker's signalling endpoint with a real worker and real aiortc
participants: token checks, bad input reported to one participant only,
selective forwarding, leaving, and a participant who vanishes."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aioice.ice
import pytest
from websockets.asyncio.client import connect

from media import tokens, worker
from media.client import SyntheticParticipant
from media.config import WorkerConfig
from media.synthetic import opus_clip, vp8_clip
from tests.live_support import until

SECRET = "signalling-test-secret"
ROOT = Path(__file__).resolve().parent.parent


def token(account: int, meeting: int = 1, role: str = "member", ttl: int = 60, secret: str = SECRET) -> str:
    return tokens.mint(secret, meeting=meeting, account=account, name=f"Person {account}", role=role, ttl=ttl)


def with_worker(scenario, timeout: float = 60, **cfg):
    async def main():
        config = WorkerConfig(secret_key=SECRET, host="127.0.0.1", port=0, addresses=["127.0.0.1"],
                              self_test=False, **cfg)
        loop = asyncio.get_running_loop()
        stop, ready = loop.create_future(), loop.create_future()
        server = asyncio.ensure_future(worker.serve(config, stop=stop, on_ready=ready.set_result))
        port = await asyncio.wait_for(ready, 10)
        try:
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}/"), timeout)
        finally:
            stop.set_result(None)
            await server

    asyncio.run(main())


async def first_reply(url: str, *messages) -> tuple[dict, object]:
    async with connect(url) as ws:
        for m in messages:
            await ws.send(m if isinstance(m, str) else json.dumps(m))
        reply = json.loads(await ws.recv())
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except Exception:
            pass
        return reply, ws.close_code


def test_tokens_round_trip_and_refuse_forgery_and_expiry():
    t = token(5)
    g = tokens.verify(SECRET, t)
    assert (g.meeting, g.account, g.name, g.role) == (1, 5, "Person 5", "member")
    with pytest.raises(tokens.TokenError, match="not valid"):
        tokens.verify("another secret", t)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(SECRET, token(5, ttl=-1))
    with pytest.raises(tokens.TokenError):
        tokens.verify(SECRET, t[:-3] + "abc")
    with pytest.raises(tokens.TokenError, match="malformed"):
        tokens.verify(SECRET, None)
    user, password = tokens.turn_credentials("turnsecret", "7-5", ttl=60, now=1000)
    assert user == "1060:7-5" and len(password) == 28  # base64 of a 20-byte HMAC-SHA1


@pytest.mark.parametrize("bad", ["forged", "expired", "missing", "garbage"])
def test_bad_token_is_refused(bad):
    msg = {"type": "join", "token": {"forged": token(1, secret="not the key"), "expired": token(1, ttl=-5),
                                     "missing": None, "garbage": "x" * 50}[bad]}

    async def scenario(url):
        reply, code = await first_reply(url, msg)
        assert reply["type"] == "error" and reply["code"] == "bad_token"
        assert code == 4001

    with_worker(scenario)


def test_first_message_must_be_join():
    async def scenario(url):
        reply, code = await first_reply(url, {"type": "answer", "sdp": "v=0"})
        assert reply["code"] == "join_first" and code == 4002
        reply, code = await first_reply(url, "{not json")
        assert reply["code"] == "bad_message"

    with_worker(scenario)


def test_malformed_sdp_and_candidates_get_an_error_for_that_participant_only():
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        good = await SyntheticParticipant(url, token(1), video=video, audio=audio).start()
        other = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        assert await until(lambda: good.video_frames_from(2) > 5 and other.video_frames_from(1) > 5)

        async with connect(url) as ws:  # a third, badly behaved participant
            await ws.send(json.dumps({"type": "join", "token": token(3)}))
            seen = []

            async def expect(code):
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    seen.append(m)
                    if m["type"] == "error":
                        assert m["code"] == code, m
                        return m

            await ws.send(json.dumps({"type": "answer", "sdp": "v=0\r\nthis is not sdp\r\n"}))
            await expect("bad_sdp")
            await ws.send(json.dumps({"type": "answer", "sdp": 42}))
            await expect("bad_sdp")
            await ws.send(json.dumps({"type": "candidate", "candidate": {"candidate": "candidate:1 1 udp",
                                                                         "sdpMid": "0"}}))
            await expect("bad_candidate")
            await ws.send(json.dumps({"type": "candidate", "candidate": "nonsense"}))
            await expect("bad_candidate")
            await ws.send(json.dumps({"type": "warp", "speed": 9}))
            await expect("unknown_message")
            await ws.send("][")
            await expect("bad_message")
            await ws.send(json.dumps({"type": "pin", "ids": "everyone"}))
            await expect("bad_message")
            assert any(m["type"] == "offer" for m in seen)  # it was offered media like everyone else
            # still connected and still in the meeting
            await ws.send(json.dumps({"type": "state", "audio": False}))
            assert await until(lambda: good.members.get(3, {}).get("audio") is False)

        # the others noticed nothing but the join and leave of participant 3
        assert not good.errors and not other.errors
        assert await until(lambda: 3 not in good.members)
        before = good.video_frames_from(2)
        assert await until(lambda: good.video_frames_from(2) > before + 10)
        await good.leave()
        await other.leave()

    with_worker(scenario)


def test_selective_forwarding_speakers_audio_and_n_videos():
    """With 2 video slots, each participant receives at most 2 cameras: the most recent speakers;
    only speaking participants' audio is forwarded."""
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        ps = []
        for i in range(1, 5):
            ps.append(await SyntheticParticipant(url, token(i), video=video, audio=audio,
                                                 speaking=(i == 4)).start())
        p1, p2, p3, p4 = ps
        # p4 speaks: everyone else hears p4 and sees p4's camera
        assert await until(lambda: all(p.audio_frames_from(4) > 10 for p in (p1, p2, p3)))
        assert await until(lambda: all(p.video_frames_from(4) > 5 for p in (p1, p2, p3)))
        for p in ps:
            videos = {k[0] for k, v in p.frames.items() if k[1] == "video"}
            assert len([s for s in p.slots.values() if s and s["source"] == "video"]) <= 2
            assert all(p.audio_frames_from(x) == 0 for x in (1, 2, 3)), "silent audio must not be forwarded"
            assert p.me["id"] not in videos
        # p4 stops, p1 starts speaking: p1's camera comes into everyone's view
        p4.speaking, p1.speaking = False, True
        assert await until(lambda: all(p.audio_frames_from(1) > 10 for p in (p2, p3, p4)))
        assert await until(lambda: all(any(s and s["participant"] == 1 and s["source"] == "video"
                                           for s in p.slots.values()) for p in (p2, p3, p4)))
        before = p2.video_frames_from(1)
        assert await until(lambda: p2.video_frames_from(1) > before + 5)
        # keyframe first: each newly forwarded camera starts with a keyframe
        assert p2.keyframes[(1, "video")] >= 1
        for p in ps:
            await p.leave()

    with_worker(scenario, video_slots=2)


def test_leaving_frees_the_slot_and_tells_the_others():
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        a = await SyntheticParticipant(url, token(1), video=video, audio=audio).start()
        b = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        c = await SyntheticParticipant(url, token(3), video=video, audio=audio).start()
        assert await until(lambda: a.video_frames_from(3) > 5 and b.video_frames_from(3) > 5)
        await c.leave()
        assert await until(lambda: 3 not in a.members and 3 not in b.members)
        assert await until(lambda: not any(s and s["participant"] == 3 for s in a.slots.values()))
        assert any(m["type"] == "left" and m["id"] == 3 for m in a.messages)
        # the same account joining twice replaces its earlier window
        b2 = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        assert await until(lambda: b.bye is not None)
        assert await until(lambda: a.video_frames_from(2) > 0 and b2.video_frames_from(1) > 5)
        for p in (a, b, b2):
            await p.close()

    with_worker(scenario)


CLIENT = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {root!r})
    from media import net
    from media.client import SyntheticParticipant
    from media.synthetic import vp8_clip, opus_clip
    async def main():
        net.use_addresses(["127.0.0.1"])
        p = await SyntheticParticipant({url!r}, {token!r}, video=vp8_clip(), audio=opus_clip()).start()
        await p.connected.wait()
        print("connected", flush=True)
        await asyncio.sleep(3600)
    asyncio.run(main())
""")


def test_participant_who_vanishes_is_removed_after_the_ice_timeout(monkeypatch):
    """A participant whose machine stops answering (here: SIGSTOP) is removed when ICE consent
    freshness fails. The consent interval is shortened from 5 s to 0.2 s for the test."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        watcher = await SyntheticParticipant(url, token(1), video=video, audio=audio).start()
        proc = subprocess.Popen([sys.executable, "-c", CLIENT.format(root=str(ROOT), url=url, token=token(2))],
                                stdout=subprocess.PIPE, text=True)
        try:
            line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
            assert line.strip() == "connected"
            assert await until(lambda: 2 in watcher.members and watcher.video_frames_from(2) > 3)
            os.kill(proc.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            assert await until(lambda: 2 not in watcher.members, timeout=20)
            assert time.monotonic() - stopped < 20
        finally:
            proc.kill()
            proc.wait()
        await watcher.leave()

    with_worker(scenario, timeout=90)


def test_worker_settings_ice_servers_turn_credentials_and_udp_port_range():
    from media.config import WorkerConfig
    from media.net import parse_port_range

    env = {"COLLAB_SECRET_KEY": SECRET, "COLLAB_PORT": "6000",
           "COLLAB_MEDIA_ICE_SERVERS": "stun:turn.example.org:3478, turns:turn.example.org:443?transport=tcp",
           "COLLAB_MEDIA_TURN_SECRET": "coturn-secret", "COLLAB_MEDIA_TURN_TTL": "600",
           "COLLAB_MEDIA_UDP_PORTS": "41000-41009", "COLLAB_PUBLIC_URL": "https://collab.example.org/"}
    cfg = WorkerConfig.from_env(env)
    assert cfg.port == 6001 and cfg.host == "127.0.0.1" and cfg.addresses == ["127.0.0.1"]
    assert cfg.port_range == (41000, 41009) and cfg.origins == ["https://collab.example.org"]
    stun, turn = cfg.browser_ice_servers("9-5")
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    user, cred = turn["username"], turn["credential"]
    assert turn["urls"] == ["turns:turn.example.org:443?transport=tcp"]
    expiry, label = user.split(":")
    assert label == "9-5" and 590 < int(expiry) - time.time() <= 600
    assert (user, cred) == tokens.turn_credentials("coturn-secret", "9-5", 600, now=int(expiry) - 600)
    for bad in ({"COLLAB_MEDIA_UDP_PORTS": "80-90"}, {"COLLAB_MEDIA_UDP_PORTS": "high"},
                {"COLLAB_MEDIA_ICE_SERVERS": "http://example.org"}, {"COLLAB_MEDIA_VIDEO_SLOTS": "0"}):
        with pytest.raises(ValueError):
            WorkerConfig.from_env(dict(env, **bad))
    assert parse_port_range("") is None


def test_media_sockets_stay_in_the_configured_udp_port_range():
    """Participants' ICE candidates use only the configured ports (a firewall can open exactly those)."""
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        a = await SyntheticParticipant(url, token(1), video=video, audio=audio).start()
        b = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        assert await until(lambda: a.video_frames_from(2) > 3 and b.video_frames_from(1) > 3)
        offers = [m["sdp"] for p in (a, b) for m in p.messages if m["type"] == "offer"]
        ports = {int(line.split()[5]) for sdp in offers for line in sdp.splitlines()
                 if line.startswith("a=candidate:")}
        assert ports and all(42000 <= port <= 42019 for port in ports), ports
        await a.leave()
        await b.leave()

    with_worker(scenario, port_range=(42000, 42019))


def test_unwatched_cameras_are_paused_and_resumed_and_opus_dtx_is_offered(monkeypatch):
    """With one video slot, nobody is shown participant 3's camera: the worker pauses it at the
    browser, and resumes it (keyframe first) as soon as 3 speaks and becomes someone's choice."""
    import media.members

    monkeypatch.setattr(media.members, "PAUSE_AFTER", 0.5)
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        p1 = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        p2 = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        p3 = await SyntheticParticipant(url, token(3), video=video, audio=audio).start()
        assert await until(lambda: any(m["type"] == "offer" for m in p3.messages))
        offer = next(m["sdp"] for m in p3.messages if m["type"] == "offer")
        assert "usedtx=1" in offer  # browsers send silence as Opus DTX
        assert await until(lambda: p3.video_track.paused)
        assert {"type": "pause", "source": "video", "paused": True} in p3.messages
        sent = p3.video_track.sent
        await asyncio.sleep(1)
        assert p3.video_track.sent == sent  # nothing sent while paused
        assert not p1.video_track.paused and not p2.video_track.paused  # 1 and 2 are being watched
        # DTX: a silent participant sends about one audio packet per 400 ms
        before = p2.audio_track.sent
        await asyncio.sleep(2)
        assert p2.audio_track.sent - before <= 8
        p1.speaking, p3.speaking = False, True
        assert await until(lambda: not p3.video_track.paused)
        assert await until(lambda: p1.video_frames_from(3) > 5 and p2.video_frames_from(3) > 5)
        assert p1.keyframes[(3, "video")] >= 1
        for p in (p1, p2, p3):
            await p.leave()

    with_worker(scenario, video_slots=1)


def test_audio_only_mode_stops_incoming_video_and_pins_keep_a_camera_in_view():
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        p1 = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        p2 = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        p3 = await SyntheticParticipant(url, token(3), video=video, audio=audio).start()
        p4 = await SyntheticParticipant(url, token(4), video=video, audio=audio).start()

        def cams(p):
            return {s["participant"] for s in p.slots.values() if s and s["source"] == "video"}

        # one video slot: p4 sees the speaker (1); pinning 3 adds 3's camera on top of it
        assert await until(lambda: cams(p4) == {1})
        await p4.send({"type": "pin", "ids": [3]})
        assert await until(lambda: cams(p4) == {1, 3})
        before = p4.video_frames_from(3)
        assert await until(lambda: p4.video_frames_from(3) > before + 5)
        # audio only: no camera at all, voices still
        await p4.send({"type": "receive", "video": False})
        assert await until(lambda: cams(p4) == set())
        frames = sum(v for k, v in p4.frames.items() if k[1] == "video")
        heard = p4.audio_frames_from(1)
        await asyncio.sleep(1.5)
        assert sum(v for k, v in p4.frames.items() if k[1] == "video") <= frames + 3  # at most what was in flight
        assert p4.audio_frames_from(1) > heard + 20
        await p4.send({"type": "receive", "video": True})
        assert await until(lambda: cams(p4) == {1, 3})
        for p in (p1, p2, p3, p4):
            await p.leave()

    with_worker(scenario, video_slots=1)
