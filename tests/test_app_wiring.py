"""One way to wire the app (collab/__init__.py): every blueprint, route module and Socket.IO
handler is wired by the factory, so a second app made in the same process is the same as the
first. Each check runs in a fresh Python process, so no test module imported earlier can hide a
missing import (before, tests imported rooms/meetings/realtime.py themselves "before the first
app starts Socket.IO": the factory imported it only after `socketio.init_app`, and later apps
had no meeting events)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import json, sys
    from tests.conftest import make_test_app
    from collab.extensions import socketio
    from pathlib import Path

    tmp = Path(sys.argv[1])
    apps, events = [], []
    for name in ("first", "second"):
        (tmp / name).mkdir()
        app = make_test_app(tmp / name, "sqlite:///" + str(tmp / name / "collab.db"))
        apps.append(app)
        events.append(sorted(socketio.server.handlers.get("/", {})))
    print(json.dumps({
        "events": events,
        "rules": [sorted(r.endpoint for r in a.url_map.iter_rules()) for a in apps],
        "commands": [sorted(a.cli.list_commands(None)) for a in apps],
    }))
""")


def _wired(tmp_path) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_app_in_the_same_process_answers_every_socket_event_and_route(tmp_path):
    from rooms.meetings import realtime as meeting_realtime

    w = _wired(tmp_path)
    first, second = w["events"]
    assert set(meeting_realtime.EVENTS) <= set(first), sorted(set(meeting_realtime.EVENTS) - set(first))
    assert second == first
    assert {"subscribe", "post", "connect", "disconnect"} <= set(second)
    assert w["rules"][1] == w["rules"][0]
    endpoints = set(w["rules"][0])
    # a route of each module that adds routes to another's blueprint, and the meeting pages
    assert {"api.cancel_meeting", "api.start_meeting", "api.meeting_state", "meetings.finish", "meetings.end",
            "meetings.deck_upload", "api.api_notifications", "api.poll_create", "api.poll_vote",
            "polls.new", "polls.vote"} <= endpoints
    assert any(e.startswith("rooms.") and "moderat" in e for e in endpoints), "the moderation pages"
    # the CLI: `flask --app wsgi media` and `flask --app wsgi meetings` are the app's commands
    assert w["commands"][1] == w["commands"][0]
    assert {"media", "meetings", "polls", "db", "serve"} <= set(w["commands"][0])


def test_flask_media_runs_the_media_worker_command(runner):
    r = runner.invoke(args=["media", "--help"])
    assert r.exit_code == 0 and "--self-test" in r.output and "--processes" in r.output
    r = runner.invoke(args=["meetings", "--help"])
    assert r.exit_code == 0 and "remind" in r.output and "jobs" in r.output
