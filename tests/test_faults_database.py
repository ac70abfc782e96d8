"""The database goes away under a running server (issue 17): PostgreSQL is stopped and started again under
`flask serve` (gunicorn, gevent). Meanwhile a signed-in browser gets a clear 503 page and an API client a 503
JSON error (never gunicorn's bare "Internal Server Error", never a traceback); the log has a line per cause per
minute, not one per request; once PostgreSQL is back the same server answers again without a restart, and
the post that was refused during the outage does not exist half-written: sending it again with its client_id
makes it exactly once."""
from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import create_engine, text

import socketio

from tests.fault_support import PrivatePostgres
from tests.live_support import ScriptedClient, wait_for
from tests.liveserver import make_server

pytestmark = pytest.mark.slow
PASSWORD = "a long enough test passphrase"


@pytest.fixture
def pg():
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def _sign_in(url: str, email: str) -> requests.Session:
    s = requests.Session()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', s.get(url + "/login", timeout=10).text).group(1)
    r = s.post(url + "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:500]
    return s


def test_postgres_restart_gives_503_then_recovers_without_half_written_posts(tmp_path, pg):
    server = make_server(tmp_path / "srv", database_url=pg.url, extra_env={"COLLAB_MEDIA_EMBEDDED": "off"})
    server.start()
    try:
        server.flask("users", "create", "--email", "olga@example.org", "--name", "Olga Owner",
                     input=PASSWORD + "\n")
        token = server.flask("tokens", "create", "--email", "olga@example.org").stdout.strip().splitlines()[-1]
        h = {"Authorization": f"Bearer {token}"}
        room = requests.post(server.url + "/api/v1/rooms", json={"name": "Outage", "visibility": "private"},
                             headers=h, timeout=10).json()
        thread = requests.post(server.url + f"/api/v1/rooms/{room['id']}/threads",
                               json={"title": "During the outage", "body": "first"}, headers=h, timeout=10).json()
        browser = _sign_in(server.url, "olga@example.org")
        assert browser.get(server.url + f"/rooms/{room['id']}", timeout=10).status_code == 200
        live = ScriptedClient(server.url, token, room["id"])
        live.connect()
        live.catch_up()
        log_before = server.log_path.read_text()

        pg.stop()

        # live: an event on an open connection is refused with a clear code, a new connection too
        ack = live.sio.call("sync", {"room_id": room["id"], "after_seq": 0}, timeout=30)
        assert ack["ok"] is False and ack["error"]["code"] == "unavailable", ack
        fresh = socketio.Client(reconnection=False)
        refused: list = []
        fresh.on("connect_error", lambda data=None: refused.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            fresh.connect(server.url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
        assert refused and refused[-1]["code"] == "unavailable", refused

        page = browser.get(server.url + f"/rooms/{room['id']}", timeout=30)
        assert page.status_code == 503
        assert "Collab is briefly unavailable" in page.text
        assert "its database is not answering" in page.text and "Nothing was saved" in page.text
        assert "Internal Server Error" not in page.text and "Traceback" not in page.text
        assert page.headers["Retry-After"]

        api = requests.get(server.url + f"/api/v1/rooms/{room['id']}/threads", headers=h, timeout=30)
        assert api.status_code == 503
        assert api.json()["error"]["code"] == "unavailable"

        post = {"body": "sent while the database was down", "client_id": "outage-post-1"}
        r = requests.post(server.url + f"/api/v1/threads/{thread['id']}/posts", json=post, headers=h, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"

        # a burst of requests during the outage: every one a 503, the log a handful of lines
        codes = [browser.get(server.url + "/rooms", timeout=30).status_code for _ in range(60)]
        codes += [requests.get(server.url + "/api/v1/rooms", headers=h, timeout=30).status_code for _ in range(60)]
        assert set(codes) == {503}, codes
        during = server.log_path.read_text()[len(log_before):]
        outage_lines = [ln for ln in during.splitlines() if "database unavailable" in ln]
        assert 1 <= len(outage_lines) <= 6, outage_lines
        # the web process writes no traceback; the only ones are the search worker's (a process of its own that
        # exits when its database goes and is restarted with back-off by `flask serve`): one report per restart,
        # of a chained exception (three "Traceback" headings)
        assert during.count("Traceback") <= 3 * during.count("search worker exited"), during[-3000:]
        assert len(during.splitlines()) < 200 * max(1, during.count("search worker exited")), len(during.splitlines())

        pg.start()

        # the same server answers again (pool_pre_ping replaces the dead connections), no restart
        assert wait_for(lambda: browser.get(server.url + f"/rooms/{room['id']}", timeout=30).status_code == 200,
                        timeout=60, interval=0.5)
        assert server.proc.poll() is None
        engine = create_engine(pg.url.rsplit("/", 1)[0] + "/postgres")
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM posts WHERE body = :b"), {"b": post["body"]}).scalar()
        assert n == 0   # the refused post was not half-written
        for _ in range(2):  # the client's retry, and a retry of the retry: one post
            r = requests.post(server.url + f"/api/v1/threads/{thread['id']}/posts", json=post, headers=h,
                              timeout=30)
            assert r.status_code in (200, 201), r.text
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM posts WHERE body = :b"), {"b": post["body"]}).scalar()
        engine.dispose()
        assert n == 1
        ack = live.sio.call("sync", {"room_id": room["id"], "after_seq": 0}, timeout=30)   # live again too
        assert ack["ok"], ack
        live.close()
    finally:
        server.kill()
