"""The media worker cannot start (issue 17): `flask serve`'s supervisor (media/supervisor.py) keeps retrying
with exponential back-off instead of giving up after a few tries, blames COLLAB_MEDIA_PORT only when the port
really is taken, and records its state in the data folder, where the web app reads it: while the worker is
in a crash loop the meeting page says "Meetings are unavailable right now", and neither a token nor a new
meeting is handed out for a worker that is not there. Once the port is free the worker starts by itself and
meetings are open again."""
from __future__ import annotations

import os
import socket
import time

import pytest

from collab import health
from media import supervisor
from tests.conftest import bearer
from tests.live_support import login_client

pytestmark = pytest.mark.slow


def _poll_until(w: supervisor.EmbeddedWorker, pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        w.poll()
        time.sleep(0.05)


# The supervisor and its state file know no database; the web app's refusals read that file the same way on either,
# so the half-minute of failed starts runs once, on SQLite.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_crash_loop_keeps_retrying_with_back_off_and_closes_meetings_meanwhile(app, make):
    data_dir = app.config["DATA_DIR"]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = dict(os.environ, COLLAB_SECRET_KEY="k", COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_DATA_DIR=data_dir)
    # back-off capped at 2 s instead of 60 s, so that ten failures fit in a test; the doubling is the same
    w = supervisor.EmbeddedWorker(env, max_delay=2.0)
    owner = make.user()
    room = make.room(owner)
    meeting_id = app.test_client().post(f"/api/v1/rooms/{room.id}/meetings", json={"title": "Before"},
                                        headers=bearer(make.token(owner))).json["id"]
    try:
        w.start()
        delays = []

        def failed_again() -> bool:
            st = supervisor.state(data_dir)
            if st.get("state") == "backing_off" and (not delays or st["quick_failures"] > delays[-1][0]):
                delays.append((st["quick_failures"], st["next_start_at"] - st["last_exit_at"]))
            return len(delays) >= 10

        # more failures than the old supervisor's give-up point (8): it is still trying
        _poll_until(w, failed_again, 300, "the supervisor stopped retrying a worker that cannot start")
        assert not w.gave_up
        waits = [round(d, 1) for _, d in delays]
        assert waits[:3] == [0.5, 1.0, 2.0] and set(waits[3:]) == {2.0}, waits   # doubling, then the cap
        st = supervisor.state(data_dir)
        assert st["port_taken"] is True
        assert f"COLLAB_MEDIA_PORT {port} on 127.0.0.1 is taken by another program" in st["message"]
        assert st["backing_off_since"] <= st["last_exit_at"] and st["restarts"] >= 10

        # the web app reads that state: the page says so, and hands out no token and no new meeting
        browser = login_client(app, owner)
        page = browser.get(f"/meetings/{meeting_id}")
        assert page.status_code == 200
        assert "Meetings are unavailable right now" in page.get_data(as_text=True)
        tok = browser.post(f"/meetings/{meeting_id}/token", headers={"Accept": "application/json"})
        assert tok.status_code == 503 and "Meetings are unavailable right now" in tok.json["error"]["message"]
        assert "token" not in tok.json
        api = app.test_client()
        r = api.post(f"/api/v1/meetings/{meeting_id}/token", headers=bearer(make.token(owner)))
        assert r.status_code == 503 and r.json["error"]["code"] == "unavailable"
        r = api.post(f"/api/v1/rooms/{room.id}/meetings", json={"title": "During"},
                     headers=bearer(make.token(owner)))
        assert r.status_code == 503 and "Meetings are unavailable right now" in r.json["error"]["message"]
        # and operators see it: /readyz (from loopback: with detail) and the System page's checks
        ready = api.get("/readyz").json
        assert ready["checks"]["media_supervisor"]["ok"] is False
        assert "Meetings are unavailable right now" in ready["checks"]["media_supervisor"]["detail"]
        assert ready["checks"]["media_supervisor"]["state"] == "backing_off"

        # the port is freed: the next try starts the worker, and meetings open again by themselves
        taken.close()
        _poll_until(w, lambda: supervisor.state(data_dir).get("state") == "running", 120,
                    "the worker did not start once its port was free")
        assert supervisor.unavailable(data_dir) is None
        assert health.run(app)["checks"]["media_supervisor"]["ok"] is True
        assert "Meetings are unavailable" not in browser.get(f"/meetings/{meeting_id}").get_data(as_text=True)
        r = api.post(f"/api/v1/meetings/{meeting_id}/token", headers=bearer(make.token(owner)))
        assert r.status_code == 200 and r.json["token"]
    finally:
        taken.close()
        w.stop()


def test_a_state_file_left_by_a_killed_server_is_ignored(tmp_path):
    """A supervisor that is not running any more (its server was killed) reports nothing: meetings are not
    closed by a stale file."""
    import json
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    (tmp_path / supervisor.STATE_FILE).write_text(json.dumps(
        {"state": "backing_off", "quick_failures": 9, "supervisor_pid": int(gone.stdout)}))
    assert supervisor.state(tmp_path) == {"state": "unknown"}
    assert supervisor.unavailable(tmp_path) is None
