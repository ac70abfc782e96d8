"""Redis goes away under two real server processes sharing it (issue 17), and comes back empty.

While it is down: signing in and pages keep working (rate limits are counted in each process's memory),
connections already open keep working (`subscribe` and `sync` answer from the database), a new live connection
is refused at once with a clear `connect_error` and leaves nothing behind. When Redis is back: every web
process re-subscribes within 5 s (a watchdog keeps python-socketio's listener alive, python-socketio#1581),
each connection is told to `sync` and gets what it missed, nothing lost or duplicated, and the online count is
right at once. The Redis here is a private one on a free port (tests/fault_support.py): the shared one on
6379 serves other tests."""
from __future__ import annotations

import re
import time

import pytest
import requests
import socketio

from tests.fault_support import PrivateRedis
from tests.live_support import ScriptedClient, fresh_postgres_database, postgres_url, wait_for
from tests.liveserver import make_server

pytestmark = pytest.mark.slow
PASSWORD = "a long enough test passphrase"


@pytest.fixture
def cluster(tmp_path):
    pg = postgres_url()
    if not pg:
        pytest.fail("PostgreSQL does not answer on 127.0.0.1:5432 (set COLLAB_TEST_POSTGRES_URL)")
    redis = PrivateRedis()
    redis.start()
    db_url, drop = fresh_postgres_database(pg)
    env = {"COLLAB_REDIS_URL": redis.url, "COLLAB_MEDIA_EMBEDDED": "off", "COLLAB_LOGIN_LIMIT": "5 per minute"}
    a = make_server(tmp_path / "a", database_url=db_url, extra_env=env)
    b = make_server(tmp_path / "b", database_url=db_url, extra_env=env, migrate=False)
    try:
        a.start()
        b.start()
        yield a, b, redis
    finally:
        a.kill()
        b.kill()
        redis.stop()
        drop()


def _user(server, email: str, name: str) -> tuple[str, dict]:
    server.flask("users", "create", "--email", email, "--name", name, input=PASSWORD + "\n")
    token = server.flask("tokens", "create", "--email", email).stdout.strip().splitlines()[-1]
    me = requests.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    return token, me


def _sign_in(url: str, email: str, password: str = PASSWORD) -> int:
    s = requests.Session()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', s.get(url + "/login", timeout=10).text).group(1)
    return s.post(url + "/login", data={"email": email, "password": password, "csrf_token": csrf},
                  allow_redirects=False, timeout=10).status_code


def _try_connect(url: str, token: str) -> tuple[bool, object]:
    """A new live connection: (connected, the connect_error's data)."""
    sio = socketio.Client(reconnection=False)
    refused: list = []
    sio.on("connect_error", lambda data=None: refused.append(data))
    try:
        sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return False, (refused or [None])[-1]
    sio.disconnect()
    return True, None


def test_redis_down_then_back_under_live_load(cluster):
    a, b, redis = cluster
    owner_tok, _owner = _user(a, "owner@example.org", "Olga Owner")
    member_tok, member = _user(a, "member@example.org", "Mel Member")
    h = {"Authorization": f"Bearer {owner_tok}"}
    hm = {"Authorization": f"Bearer {member_tok}"}
    room = requests.post(b.url + "/api/v1/rooms", json={"name": "Queue", "visibility": "private"}, headers=h).json()
    requests.post(b.url + f"/api/v1/rooms/{room['id']}/members", json={"user_id": member["id"]}, headers=h)
    thread = requests.post(b.url + f"/api/v1/rooms/{room['id']}/threads", json={"title": "T", "body": "x"},
                           headers=h).json()
    posts_url = f"/api/v1/threads/{thread['id']}/posts"

    on_a = ScriptedClient(a.url, member_tok, room["id"])
    on_b = ScriptedClient(b.url, owner_tok, room["id"])
    sent: list[str] = []

    def post(server, headers, body):
        r = requests.post(server.url + posts_url, json={"body": body, "client_id": body}, headers=headers, timeout=30)
        assert r.status_code == 201, r.text
        sent.append(body)

    try:
        on_a.connect()
        on_a.catch_up()
        on_b.connect()
        on_b.catch_up()
        post(b, h, "before the outage")
        assert wait_for(lambda: any(d["post"]["body"] == "before the outage" for d in on_a.events_named("post.created")),
                        timeout=10)

        redis.stop()

        # a new live connection is refused at once, with a reason, on both processes
        for server in (a, b):
            outcome = wait_for(lambda server=server: (lambda r: r if not r[0] else None)(
                _try_connect(server.url, member_tok)), timeout=30, interval=0.2)
            assert outcome, "a new connection was still accepted with Redis down"
            assert isinstance(outcome[1], dict) and outcome[1].get("code") == "unavailable", outcome
            assert "Live updates are unavailable right now" in outcome[1]["message"]

        # signing in and pages keep working (rate limits counted in memory, still limited)
        assert _sign_in(a.url, "member@example.org") == 302
        assert _sign_in(b.url, "owner@example.org") == 302
        assert requests.get(a.url + f"/api/v1/rooms/{room['id']}", headers=hm, timeout=10).status_code == 200
        codes = [_sign_in(a.url, "member@example.org", "wrong password") for _ in range(6)]
        assert 429 in codes and codes[0] == 401, codes

        # posts keep being made; connections open before the outage keep working and catch up from the database
        post(b, h, "during the outage through B")
        post(a, hm, "during the outage through A")
        ack = on_a.sio.call("subscribe", {"room_id": room["id"]}, timeout=10)
        assert ack["ok"], ack
        ack = on_a.sio.call("sync", {"room_id": room["id"], "after_seq": 0}, timeout=10)
        assert ack["ok"], ack
        assert "during the outage through B" in [e["data"]["post"]["body"] for e in ack["events"]
                                                if e["event"] == "post.created"]

        redis.start()   # empty: it lost every key
        back = time.monotonic()

        # every web process re-subscribes within 5 s, and tells its connections to sync
        assert wait_for(lambda: any(e == "live.resync" for e, _ in on_a.other)
                        and any(e == "live.resync" for e, _ in on_b.other), timeout=5, interval=0.05), \
            f"not re-subscribed within 5 s of Redis answering ({time.monotonic() - back:.1f} s)"
        resync = [d for e, d in on_a.other if e == "live.resync"][-1]
        assert room["id"] in resync["room_ids"]

        # cross-process delivery works again, both ways
        post(b, h, "after the outage through B")
        assert wait_for(lambda: any(d["post"]["body"] == "after the outage through B"
                                    for d in on_a.events_named("post.created")) or on_a.need_sync, timeout=5)
        post(a, hm, "after the outage through A")
        assert wait_for(lambda: any(d["post"]["body"] == "after the outage through A"
                                    for d in on_b.events_named("post.created")) or on_b.need_sync, timeout=5)

        # what was missed comes through sync: every post exactly once, in order, on both clients
        for client in (on_a, on_b):
            client.need_sync = True
            client.catch_up()
            seqs = [s for s, _e, _d in client.accepted]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
            bodies = [d["post"]["body"] for d in client.events_named("post.created")]
            assert [x for x in bodies if x in sent] == sent, (bodies, sent)

        # the online count is right at once (Redis came back empty; refused attempts left nothing behind)
        ack = on_a.sio.call("subscribe", {"room_id": room["id"]}, timeout=10)
        assert ack["presence"]["count"] == 2, ack["presence"]
        assert {p["user"]["name"] for p in ack["presence"]["online"]} == {"Olga Owner", "Mel Member"}
        assert _try_connect(a.url, member_tok)[0] and _try_connect(b.url, owner_tok)[0]
    finally:
        on_a.close()
        on_b.close()
