"""Search across real processes: the outbox survives a writer killed between
commit and indexing; several writer processes lose nothing; the production
server (gunicorn + gevent) sweeps up what a killed process left."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.liveserver import NO_MEDIA, make_server
from tests.test_search_support import combo_fixtures, only, search_ids, settle, wait_until

combo, backend, app_config = combo_fixtures()
ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import sys, time
from wsgi import app
from auth.models import User
from collab.extensions import db
from rooms import services
from rooms import posts as room_posts
uid, tid, word, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with app.app_context():
    user = db.session.get(User, uid)
    for i in range(n):
        room_posts.create_post(user, tid, body=f"{word} number {i} {word}x{i}")
    print("committed", flush=True)
    if sys.argv[5] == "hang":
        time.sleep(120)
    from search import state
    from search.indexer import outbox_size
    deadline = time.time() + 60
    while time.time() < deadline and not (state().indexer.idle()):
        time.sleep(0.05)
"""


def _env(app, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "FLASK_"))}
    env.update(COLLAB_DATA_DIR=app.config["DATA_DIR"], COLLAB_DATABASE_URL=app.config["DATABASE_URL"],
               COLLAB_SEARCH_BACKEND=app.config["SEARCH_BACKEND"], COLLAB_SECRET_KEY=app.config["SECRET_KEY"],
               PYTHONUNBUFFERED="1", **extra)
    return env


def _writer(app, uid, tid, word, n, mode, **env):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(uid), str(tid), word, str(n), mode], cwd=ROOT,
                            env=_env(app, **env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)


def _outbox_posts() -> set[int]:
    from collab.extensions import db
    from search.models import SearchOutbox

    db.session.rollback()  # a fresh snapshot: other processes wrote
    ids = set(db.session.scalars(select(SearchOutbox.post_id)))
    db.session.rollback()
    return ids


def test_outbox_survives_a_killed_writer(app, make):
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Crash test", body="before the crash")
    settle(app)
    # A real process commits three posts, and is SIGKILLed before anything indexes them.
    child = _writer(app, u.id, t.id, "albatross", 3, "hang", COLLAB_SEARCH_INDEXING="off")
    try:
        assert child.stdout.readline().strip() == "committed"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    waiting = _outbox_posts()
    assert len(waiting) == 3
    assert search_ids(u, "albatross") == []
    # A fresh process's sweep applies them.
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "search", "sweep"], cwd=ROOT,
                         env=_env(app), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Applied 3 outbox rows" in out.stdout
    got, _ = wait_until(lambda: set(search_ids(u, "albatross")) == waiting, timeout=2.0)
    assert _outbox_posts() == set()


def test_concurrent_writer_processes_lose_nothing(app, make):
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Busy", body="many writers")
    settle(app)
    kids = [_writer(app, u.id, t.id, word, 12, "exit") for word in ("puffin", "gannet")]
    for k in kids:
        assert k.wait(timeout=120) == 0
    wait_until(lambda: len(search_ids(u, "puffin")) == 12 and len(search_ids(u, "gannet")) == 12, timeout=5.0)
    from search import service

    assert service.search(u, "puffin OR gannet").total == 24
    assert _outbox_posts() == set()


@pytest.mark.slow
@only([("sqlite", "whoosh")])  # the embedded install is the one whose server sweeps an index file
def test_production_server_sweeps_what_a_killed_process_left(app, combo, tmp_path):
    db_url = None if combo[0] == "sqlite" else app.config["DATABASE_URL"]
    server = make_server(tmp_path / "live", database_url=db_url,
                         extra_env={"COLLAB_SEARCH_BACKEND": combo[1], "COLLAB_SEARCH_SWEEP_SECONDS": "0.5", **NO_MEDIA})
    server.flask("users", "create", "--email", "sweeper@example.org", "--name", "Sweeper", "--admin",
                 input=PASSWORD + "\n")
    token = server.flask("tokens", "create", "--email", "sweeper@example.org").stdout.strip().splitlines()[-1]
    server.start()
    try:
        def api(method, path, body=None):
            req = urllib.request.Request(server.url + "/api/v1" + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())

        room = api("POST", "/rooms", {"name": "Live", "visibility": "national"})
        thread = api("POST", f"/rooms/{room['id']}/threads", {"title": "Cormorant roost", "body": "first"})
        wait_until(lambda: api("GET", "/search?q=cormorant")["total"] == 1, timeout=5.0, step=0.05)
        # A separate process writes and is killed before it indexes anything.
        env = dict(server.env, COLLAB_SEARCH_INDEXING="off", PYTHONUNBUFFERED="1")
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(thread["author"]["id"]), str(thread["id"]),
                                  "shearwater", "2", "hang"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            assert child.stdout.readline().strip() == "committed"
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        # The server's background sweep applies it, within its interval.
        found, took = wait_until(lambda: api("GET", "/search?q=shearwater")["total"] == 2, timeout=5.0, step=0.05)
    finally:
        server.stop()
