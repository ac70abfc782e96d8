"""Meetings on the web side: starting one in a room, who may join (the room's
rules), the join token the media worker checks, the page, the API, and the
choice of worker among several."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from media import tokens
from tests.conftest import bearer

ROOT = Path(__file__).resolve().parent.parent


def test_start_a_meeting_through_the_api_returns_its_id(app, make):
    owner = make.user()
    room = make.room(owner)
    c = app.test_client()
    r = c.post(f"/api/v1/rooms/{room.id}/meetings", json={"title": "Stop and search review"},
               headers=bearer(make.token(owner)))
    assert r.status_code == 201, r.json
    assert isinstance(r.json["id"], int) and r.json["title"] == "Stop and search review"
    assert r.json["room_id"] == room.id and r.json["url"] == f"/meetings/{r.json['id']}"
    got = c.get(f"/api/v1/meetings/{r.json['id']}", headers=bearer(make.token(owner)))
    assert got.status_code == 200 and got.json["id"] == r.json["id"]
    # without a title the room's name is used; bad titles are refused and nothing is written
    r2 = c.post(f"/api/v1/rooms/{room.id}/meetings", json={}, headers=bearer(make.token(owner)))
    assert r2.status_code == 201 and room.name in r2.json["title"]
    r3 = c.post(f"/api/v1/rooms/{room.id}/meetings", json={"title": "x" * 201}, headers=bearer(make.token(owner)))
    assert r3.status_code == 422 and r3.json["error"]["field"] == "title"
    r4 = c.post(f"/api/v1/rooms/{room.id}/meetings", json={"title": 5}, headers=bearer(make.token(owner)))
    assert r4.status_code == 422


def test_meetings_inherit_the_rooms_access_rules(app, make):
    org = make.org()
    owner, member, observer, outsider = (make.user(org=org) for _ in range(4))
    room = make.room(owner, visibility="private", members=[member], observer=[observer])
    c = app.test_client()

    def start(user):
        return c.post(f"/api/v1/rooms/{room.id}/meetings", json={"title": "T"}, headers=bearer(make.token(user)))

    assert start(outsider).status_code == 404   # may not even see the room
    assert start(observer).status_code == 403   # sees it, may not post
    mid = start(member).json["id"]

    def join(user):
        return c.post(f"/api/v1/meetings/{mid}/token", headers=bearer(make.token(user)))

    assert join(outsider).status_code == 404
    assert c.get(f"/api/v1/meetings/{mid}", headers=bearer(make.token(outsider))).status_code == 404
    roles = {}
    for who, user in (("owner", owner), ("member", member), ("observer", observer)):
        r = join(user)
        assert r.status_code == 200, r.json
        grant = tokens.verify(app.config["SECRET_KEY"], r.json["token"])
        assert grant.meeting == mid and grant.account == user.id and grant.name == user.name
        assert grant.expires - time.time() <= tokens.DEFAULT_TTL + 1
        assert r.json["url"] == app.config["MEDIA_URLS"][0]
        roles[who] = grant.role
    assert roles == {"owner": "host", "member": "member", "observer": "observer"}


def test_room_page_button_starts_a_meeting_and_the_page_has_the_pre_join_screen(app, make, auth, client):
    owner = make.user()
    room = make.room(owner, visibility="national")
    auth.login(owner)
    page = client.get(f"/rooms/{room.id}").data.decode()
    assert "Start a meeting now" in page
    r = client.post(f"/rooms/{room.id}/meetings")
    assert r.status_code == 302
    mid = int(re.search(r"/meetings/(\d+)$", r.headers["Location"]).group(1))
    page = client.get(f"/rooms/{room.id}").data.decode()
    assert "Meetings in progress" in page and f"/meetings/{mid}" in page
    r = client.get(f"/meetings/{mid}")
    html = r.data.decode()
    assert r.status_code == 200
    assert "Join meeting" in html and 'id="join-muted"' in html and 'id="camera-select"' in html
    assert "js/meeting.js" in html and "<script>" not in html and "style=" not in html
    assert f'data-me-id="{owner.id}"' in html
    # the page may open a WebSocket to the media worker, and nothing else new
    csp = r.headers["Content-Security-Policy"]
    worker = app.config["MEDIA_URLS"][0].rstrip("/")
    assert f"connect-src 'self' {worker}" in csp and "script-src 'self'" in csp
    # the token endpoint needs the session (and CSRF in production)
    t = client.post(f"/meetings/{mid}/token")
    assert t.status_code == 200 and t.json["role"] == "host"
    # ending the meeting closes it
    assert client.post(f"/meetings/{mid}/end").status_code == 302
    assert client.post(f"/meetings/{mid}/token").status_code == 403
    assert "This meeting has ended" in client.get(f"/meetings/{mid}").data.decode()


def test_meeting_page_is_404_for_someone_outside_a_private_room(app, make, auth, client):
    owner, outsider = make.user(), make.user()
    room = make.room(owner)
    from rooms.meetings import services

    m = services.start_meeting(owner, room.id, title="Private")
    auth.login(outsider)
    assert client.get(f"/meetings/{m.id}").status_code == 404
    assert client.post(f"/meetings/{m.id}/token").status_code == 404
    assert client.post(f"/meetings/{m.id}/end").status_code == 404
    assert "Private" not in client.get(f"/rooms/{room.id}").data.decode()


def test_openapi_lists_the_meeting_endpoints(app, make):
    c = app.test_client()
    doc = c.get("/api/v1/openapi.json", headers=bearer(make.token(make.user()))).json
    assert "post" in doc["paths"]["/rooms/{room_id}/meetings"]
    assert "/meetings/{meeting_id}/token" in doc["paths"]
    assert "Meeting" in doc["components"]["schemas"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_workers():
    """Two real media workers (`python -m media`); the second holds a participant-free meeting."""
    procs, urls = [], []
    for _ in range(2):
        port = _free_port()
        env = {"COLLAB_SECRET_KEY": "test-secret-key-not-for-production", "COLLAB_MEDIA_HOST": "127.0.0.1",
               "COLLAB_MEDIA_PORT": str(port), "PATH": "/usr/bin:/bin"}
        procs.append(subprocess.Popen([sys.executable, "-m", "media", "--skip-self-test"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"ws://127.0.0.1:{port}/")
    deadline = time.time() + 30
    for url in urls:
        while True:
            try:
                urllib.request.urlopen(url.replace("ws://", "http://") + "health", timeout=1).read()
                break
            except OSError:
                assert time.time() < deadline, "media worker did not start"
                time.sleep(0.2)
    yield urls
    for p in procs:
        p.terminate()
        p.wait(10)


def test_web_app_picks_a_worker_per_meeting_and_keeps_it(app, make, two_workers):
    from rooms.meetings import services

    dead = f"ws://127.0.0.1:{_free_port()}/"
    app.config["MEDIA_URLS"] = [dead, *two_workers]
    owner = make.user()
    room = make.room(owner)
    chosen = [services.start_meeting(owner, room.id, title=f"M{i}").media_url for i in range(4)]
    assert dead not in chosen                        # a worker that does not answer gets nothing
    assert sorted(chosen) == sorted(two_workers * 2)  # equal load: meetings alternate between workers
    m = services.start_meeting(owner, room.id, title="stays")
    first = services.join(owner, m.id)["url"]
    assert all(services.join(owner, m.id)["url"] == first for _ in range(3))  # a meeting stays on its worker
    # a worker removed from the configuration: its meetings move to one that is configured
    app.config["MEDIA_URLS"] = [u for u in two_workers if u != first]
    assert services.join(owner, m.id)["url"] == app.config["MEDIA_URLS"][0]


def test_embedded_media_worker_is_restarted_after_a_crash(tmp_path):
    """`flask serve`'s supervisor: a crashed worker comes back, and the supervisor does not blame the port
    when the port is free (a worker that keeps failing is tested in tests/test_faults_media.py)."""
    import os
    import signal as sig

    from media import supervisor

    port = _free_port()
    env = dict(os.environ, COLLAB_SECRET_KEY="k", COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_DATA_DIR=str(tmp_path))
    w = supervisor.EmbeddedWorker(env)
    w.start()
    first = w.proc.pid
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            break
        except OSError:
            assert time.time() < deadline
            time.sleep(0.3)
    os.kill(first, sig.SIGKILL)
    w.proc.wait(10)
    deadline = time.time() + 30
    while w.proc.pid == first:
        w.poll()
        assert time.time() < deadline
        time.sleep(0.1)
    assert not w.gave_up
    st = supervisor.state(tmp_path)
    assert st["restarts"] == 1 and st["last_exit"] == -sig.SIGKILL
    assert not st["port_taken"] and "COLLAB_MEDIA_PORT" not in st["message"]
    assert supervisor.unavailable(tmp_path) is None   # one crash being restarted: meetings stay open
    w.stop()
    assert supervisor.state(tmp_path)["state"] == "stopped"
