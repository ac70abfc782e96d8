"""Scale out: two real server processes (`flask --app wsgi serve`) on different
ports sharing one PostgreSQL database and Redis. A client connected to A sees a
post made through B within 500 ms; presence and access revocation cross
processes too; rate limits are kept in Redis, so both processes count together.
Skipped, with the reason, only when no PostgreSQL or Redis answers."""
from __future__ import annotations

import random
import time

import pytest
import requests

from tests.live_support import (
    ScriptedClient,
    fresh_postgres_database,
    postgres_url,
    redis_base,
    wait_for,
)
from tests.liveserver import NO_MEDIA, make_server

pytestmark = pytest.mark.slow
PASSWORD = "a long enough test passphrase"


@pytest.fixture
def two_servers(tmp_path):
    pg, redis_url = postgres_url(), redis_base()
    if not pg:
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (set COLLAB_TEST_POSTGRES_URL)")
    if not redis_url:
        pytest.skip("Redis does not answer on 127.0.0.1:6379 (set COLLAB_TEST_REDIS_URL)")
    db_url, drop = fresh_postgres_database(pg)
    redis_db = f"{redis_url}/{random.randint(8, 15)}"
    env = {"COLLAB_REDIS_URL": redis_db, "COLLAB_LOGIN_LIMIT": "4 per minute", **NO_MEDIA}
    a = make_server(tmp_path / "a", database_url=db_url, extra_env=env)
    b = make_server(tmp_path / "b", database_url=db_url, extra_env=env, migrate=False)
    try:
        a.start()
        b.start()
        yield a, b, redis_db
    finally:
        a.kill()
        b.kill()
        drop()
        import redis

        r = redis.Redis.from_url(redis_db)
        keys = list(r.scan_iter("collab:*"))
        if keys:
            r.delete(*keys)


def _user(server, email: str, name: str) -> tuple[str, dict]:
    server.flask("users", "create", "--email", email, "--name", name, input=PASSWORD + "\n")
    token = server.flask("tokens", "create", "--email", email).stdout.strip().splitlines()[-1]
    me = requests.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    return token, me


def test_two_processes_share_live_events_presence_revocation_and_limits(two_servers):
    a, b, _redis = two_servers
    owner_tok, _owner = _user(a, "owner@example.org", "Olga Owner")
    member_tok, member = _user(a, "member@example.org", "Mel Member")
    h = {"Authorization": f"Bearer {owner_tok}"}
    room = requests.post(b.url + "/api/v1/rooms", json={"name": "Across", "visibility": "private"}, headers=h).json()
    requests.post(b.url + f"/api/v1/rooms/{room['id']}/members", json={"user_id": member["id"]}, headers=h)
    thread = requests.post(b.url + f"/api/v1/rooms/{room['id']}/threads", json={"title": "T", "body": "x"},
                           headers=h).json()

    on_a = ScriptedClient(a.url, member_tok, room["id"])
    on_b = ScriptedClient(b.url, owner_tok, room["id"])
    try:
        on_a.connect()
        on_a.catch_up()
        on_b.connect()
        on_b.catch_up()

        # a post made through B reaches the client on A within 500 ms (after one first post that warms up
        # both fresh processes: imports, connection pools, the Redis subscription)
        t0 = time.perf_counter()
        requests.post(b.url + f"/api/v1/threads/{thread['id']}/posts", json={"body": "warm-up"}, headers=h, timeout=10)
        assert wait_for(lambda: on_a.events_named("post.created"), timeout=5, interval=0.002)
        cold = time.perf_counter() - t0
        latencies = []
        for i in range(5):
            before = len(on_a.events_named("post.created"))
            t0 = time.perf_counter()
            r = requests.post(b.url + f"/api/v1/threads/{thread['id']}/posts",
                              json={"body": f"through B {i}", "client_id": f"b-{i}"}, headers=h, timeout=10)
            assert r.status_code == 201
            assert wait_for(lambda before=before: len(on_a.events_named("post.created")) > before, timeout=2,
                            interval=0.002)
            latencies.append(time.perf_counter() - t0)
            assert on_a.events_named("post.created")[-1]["post"]["body"] == f"through B {i}"
        print(f"\nB -> A latency (POST sent to event received), ms: {[round(x * 1000) for x in latencies]} "
              f"(first post after start: {round(cold * 1000)} ms)")
        assert max(latencies) < 0.5, latencies

        # presence is shared: the client on B is listed for the client on A
        def both_online():
            snaps = [d for e, d in on_a.other if e == "presence"]
            return snaps and snaps[-1]["count"] == 2
        assert wait_for(both_online, timeout=5)

        # removing the member through B takes their connection on A out of the room at once
        r = requests.delete(b.url + f"/api/v1/rooms/{room['id']}/members/{member['id']}", headers=h, timeout=10)
        assert r.status_code == 200
        assert wait_for(lambda: any(e == "access.revoked" for e, _ in on_a.other), timeout=2)
        requests.post(b.url + f"/api/v1/threads/{thread['id']}/posts", json={"body": "after removal"}, headers=h)
        assert wait_for(lambda: any(d["post"]["body"] == "after removal" for d in on_b.events_named("post.created")),
                        timeout=2)
        time.sleep(0.3)
        assert all(d["post"]["body"] != "after removal" for d in on_a.events_named("post.created"))
        assert not on_a.sio.call("subscribe", {"room_id": room["id"]}, timeout=10)["ok"]
    finally:
        on_a.close()
        on_b.close()

    # rate limits live in Redis: sign-in attempts through A and B count together (4 per minute)
    import re

    browser = requests.Session()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(a.url + "/login", timeout=10).text).group(1)
    codes = []
    for server in (a, b, a, b, a):
        codes.append(browser.post(server.url + "/login", data={"email": "owner@example.org", "password": "wrong",
                                                               "csrf_token": csrf},
                                  allow_redirects=False, timeout=10).status_code)
    assert codes[:4] == [401] * 4 and codes[4] == 429, codes
