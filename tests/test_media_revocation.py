"""Losing one's place in a meeting reaches the media worker (issue 10, leak 4).

A real worker process (`python -m media`), the real web app deciding, and real
aiortc participants receiving RTP through the worker: the chair's "remove" and
ending the meeting close the sessions at once with a "bye" that says why, and
a meeting token minted before is refused from then on. The worker obeys only
control messages signed with the app's key, fresh and not seen before; its
`/status` answers only signed requests too."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from collab.errors import Forbidden
from media import control, net
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from rooms.meetings import attendance, media_control, minutes, services
from tests.live_support import until

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-secret-key-not-for-production"  # the test app's SECRET_KEY (tests/conftest.py)


@pytest.fixture
def backend():
    """The database is not what these tests are about: SQLite only keeps them quick."""
    return "sqlite"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_process(**env: str):
    """A real media worker process (`python -m media`) on a free port, with the test app's key and `env`;
    yields its WebSocket URL and stops it afterwards."""
    port = _free_port()
    env = dict(os.environ, COLLAB_SECRET_KEY=KEY, COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", **env)
    proc = subprocess.Popen([sys.executable, "-m", "media", "--skip-self-test"], cwd=ROOT, env=env)
    url = f"ws://127.0.0.1:{port}/"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            break
        except OSError:
            assert time.time() < deadline and proc.poll() is None, "the media worker did not start"
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def worker_url():
    yield from worker_process()


@pytest.fixture
def app_config(worker_url):
    return {"MEDIA_URLS": [worker_url]}


async def join_reply(url: str, token: str) -> tuple[dict, int | None]:
    """The worker's first answer to a join with `token`, and how it closed the connection."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "join", "token": token}))
        reply = json.loads(await ws.recv())
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except Exception:  # noqa: BLE001 - closed (or quiet): what we wait for
            pass
        return reply, ws.close_code


def received(p: SyntheticParticipant) -> int:
    return sum(p.frames_by_mid.values())


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _meeting(make):
    org = make.org()
    chair, member, witness = (make.user(org=org) for _ in range(3))
    room = make.room(chair, members=[member, witness])
    return chair, member, witness, services.start_meeting(chair, room.id, title="Review")


async def _in_call(url, chair_tok, *others):
    """The chair speaks with camera on; each other participant receives the chair's audio and video."""
    net.use_addresses(["127.0.0.1"])
    video, audio = vp8_clip(), opus_clip()
    chair = await SyntheticParticipant(url, chair_tok, video=video, audio=audio, speaking=True).start()
    ps = [await SyntheticParticipant(url, t, video=video, audio=audio).start() for t in others]
    cid = None
    assert await until(lambda: chair.me is not None)
    cid = chair.me["id"]
    assert await until(lambda: all(p.video_frames_from(cid) > 5 and p.audio_frames_from(cid) > 10 for p in ps))
    return chair, ps


def test_chair_remove_stops_the_media_says_why_and_voids_the_old_token(app, make, worker_url):
    chair_u, member_u, witness_u, m = _meeting(make)
    chair_tok = services.join(chair_u, m.id)["token"]
    old = services.join(member_u, m.id)["token"]   # minted before the removal
    witness_tok = services.join(witness_u, m.id)["token"]

    async def scenario():
        chair, (victim, witness) = await _in_call(worker_url, chair_tok, old, witness_tok)
        removed_at = time.monotonic()
        attendance.remove_participant(chair_u, m.id, user_id=member_u.id)   # the chair's "remove" (a service)
        assert await until(lambda: victim.bye is not None)
        print(f"\nchair's remove → bye at the participant: {time.monotonic() - removed_at:.2f} s")
        bye = next(x for x in victim.messages if x["type"] == "bye")
        assert bye == {"type": "bye", "reason": "removed", "message": services.REMOVED_MESSAGE}
        assert await until(lambda: victim.ws.close_code is not None), "the worker closes the connection"
        # nothing more arrives at the removed person, while the meeting goes on for the others
        await asyncio.sleep(0.5)  # packets already on the loopback wire
        frames, seen = received(victim), received(witness)
        await asyncio.sleep(3)
        assert received(victim) == frames, "RTP still reaches the removed participant"
        assert received(witness) > seen + 20, "the meeting must go on for the others"
        assert member_u.id not in chair.members and member_u.id not in witness.members
        # the token minted before the removal no longer lets them in
        reply, code = await join_reply(worker_url, old)
        assert reply == {"type": "error", "code": "revoked", "message": services.REMOVED_MESSAGE} and code == 4003
        # and the web app mints no new one
        with pytest.raises(Forbidden):
            services.join(member_u, m.id)
        # the others' tokens still work
        reply, _ = await join_reply(worker_url, services.join(witness_u, m.id)["token"])
        assert reply["type"] == "welcome"
        for p in (chair, victim, witness):
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))


@pytest.mark.parametrize("how", ["end", "end_with_minutes"])
def test_ending_the_meeting_says_bye_to_everyone_and_voids_every_old_token(app, make, worker_url, how):
    chair_u, member_u, witness_u, m = _meeting(make)
    toks = [services.join(u, m.id)["token"] for u in (chair_u, member_u, witness_u)]

    async def scenario():
        chair, others = await _in_call(worker_url, *toks)
        if how == "end":
            services.end_meeting(chair_u, m.id)
        else:
            minutes.end_with_minutes(chair_u, m.id)
        everyone = [chair, *others]
        assert await until(lambda: all(p.bye is not None for p in everyone))
        for p in everyone:
            bye = next(x for x in p.messages if x["type"] == "bye")
            assert bye == {"type": "bye", "reason": "ended", "message": services.ENDED_MESSAGE}
        await asyncio.sleep(0.5)
        frames = [received(p) for p in everyone]
        await asyncio.sleep(2)
        assert [received(p) for p in everyone] == frames
        for tok in toks:
            reply, code = await join_reply(worker_url, tok)
            assert reply["code"] == "revoked" and reply["message"] == services.ENDED_MESSAGE and code == 4003
        with pytest.raises(Forbidden):
            services.join(member_u, m.id)
        for p in everyone:
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_forged_old_replayed_or_mislabelled_control_messages_change_nothing(app, make, worker_url):
    chair_u, member_u, witness_u, m = _meeting(make)
    chair_tok = services.join(chair_u, m.id)["token"]
    member_tok = services.join(member_u, m.id)["token"]
    drop = {"op": "drop", "meeting": m.id, "account": member_u.id, "reason": "removed", "message": "Gone."}
    base = worker_url.replace("ws://", "http://")

    async def scenario():
        chair, (member,) = await _in_call(worker_url, chair_tok, member_tok)
        refused = {
            "forged": f"{base}control?{control.signed_query('not the key', drop)}",
            "old": f"{base}control?{control.signed_query(KEY, drop, now=time.time() - 3 * control.MAX_AGE)}",
            "future": f"{base}control?{control.signed_query(KEY, drop, now=time.time() + 3 * control.MAX_AGE)}",
            "a status request": f"{base}control?{control.signed_query(KEY, {'op': 'status'})}",
        }
        q = control.signed_query(KEY, drop)
        m_, s_ = q.split("&")
        refused["tampered"] = f"{base}control?{m_[:-4]}AAAA&{s_}"
        for what, url in refused.items():
            assert await asyncio.to_thread(http_status, url) == 403, what
        for bad in ("", "m=abc", "s=00"):
            assert await asyncio.to_thread(http_status, f"{base}control?{bad}") == 403, bad
        for bad in ("m=a&s=b&x=1", "m=a&m=b&s=c", "m&s", "m=" + "a" * 5000 + "&s=b"):
            assert await asyncio.to_thread(http_status, f"{base}control?{bad}") == 400, bad
        # a genuine message for someone else, then the same message again: the replay is refused
        other = media_control.control_url(worker_url, KEY, dict(drop, account=member_u.id + 1000))
        assert await asyncio.to_thread(http_status, other) == 200
        assert await asyncio.to_thread(http_status, other) == 403
        # nothing changed: the member still receives, was told nothing, and its token still works
        await asyncio.sleep(0.5)
        before = received(member)
        assert await until(lambda: received(member) > before + 20)
        assert member.bye is None and member.ws.close_code is None
        reply, _ = await join_reply(worker_url, member_tok)   # (this replaces its first window)
        assert reply["type"] == "welcome"
        for p in (chair, member):
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_status_answers_only_the_web_app(app, worker_url):
    base = worker_url.replace("ws://", "http://")
    assert http_status(f"{base}status") == 403
    assert http_status(f"{base}status?{control.signed_query('not the key', {'op': 'status'})}") == 403
    signed = media_control.status_url(worker_url, KEY)
    with urllib.request.urlopen(signed, timeout=5) as resp:
        assert resp.status == 200 and json.loads(resp.read())["participants"] == 0
    assert http_status(signed) == 403  # single use
    assert services.worker_load(worker_url) == 0  # the web app signs its own requests
    assert http_status(f"{base}health") == 200  # open, and says nothing
