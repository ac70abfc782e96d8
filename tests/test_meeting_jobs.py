"""Meeting jobs: decks a stopped server left half-done are resumed or failed, and the server's
jobs loop resumes them and sends reminders without being asked."""
from __future__ import annotations

import io
import time

from collab.extensions import db
from collab import tasks
from rooms.meetings import access, conversion, decks, schedule, state
from rooms.meetings.models import Deck
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    pdf_bytes,
    settle_live,
    setup_meeting,
)

# -- decks left half-done by a stopped server --------------------------------------------------------------

def _set_deck(did: int, **values) -> None:
    from sqlalchemy import update

    db.begin_write()
    db.session.execute(update(Deck).where(Deck.id == did).values(**values))
    db.session.commit()


def test_decks_a_stopped_server_left_converting_are_resumed_or_failed(app, make, runner):
    import os
    import socket
    from datetime import timedelta

    from collab.db import utcnow
    from rooms.meetings import jobs

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    host = socket.gethostname()
    up = [decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(2)), f"d{i}.pdf", background=False).id
          for i in range(5)]
    now = utcnow()
    # 0: "converting" by a process of this host that has gone (the server was restarted), with a work folder left
    _set_deck(up[0], status="converting", worker=f"{host}:999999999:1", updated_at=now, attempts=1, done=1, pages=2)
    (conversion.slides_root() / f".work-{up[0]}-old").mkdir(parents=True)
    # 1: "queued" on another host, reporting recently: maybe still alive there, left alone
    _set_deck(up[1], status="queued", worker="elsewhere:12:34", updated_at=now)
    # 2: on another host but silent for longer than any conversion can take: resumed
    _set_deck(up[2], status="converting", worker="elsewhere:12:34", updated_at=now - conversion.DEAD_AFTER
              - timedelta(seconds=1), attempts=1)
    # 3: interrupted MAX_ATTEMPTS times already: failed with a message, not tried again
    _set_deck(up[3], status="converting", worker=f"{host}:999999999:1", updated_at=now,
              attempts=conversion.MAX_ATTEMPTS)
    # 4: being converted by a process of this host that is alive (the parent of this test)
    ppid = os.getppid()
    _set_deck(up[4], status="converting", worker=f"{host}:{ppid}:{conversion._start_ticks(ppid)}", updated_at=now)
    assert conversion.worker_alive(f"{host}:{ppid}:{conversion._start_ticks(ppid)}") is True
    assert conversion.worker_alive(f"{host}:999999999:1") is False

    out = jobs.run_once(app, background=False)
    assert out["decks"] == 2
    got = {d["filename"]: d for d in state.get_state(ann, meeting.id)["decks"]}
    assert (got["d0.pdf"]["status"], got["d0.pdf"]["pages"]) == ("ready", 2)
    assert got["d1.pdf"]["status"] == "queued"
    assert got["d2.pdf"]["status"] == "ready"
    assert got["d3.pdf"]["status"] == "failed" and "interrupted 3 times" in got["d3.pdf"]["message"]
    assert got["d4.pdf"]["status"] == "converting"
    assert not (conversion.slides_root() / f".work-{up[0]}-old").exists()
    assert db.session.get(Deck, up[0], populate_existing=True).attempts == 2
    # running the jobs again changes nothing; the cron command does the same work
    assert jobs.run_once(app, background=False)["decks"] == 0
    _set_deck(up[1], updated_at=now - conversion.DEAD_AFTER - timedelta(seconds=1))
    r = runner.invoke(args=["meetings", "jobs"])
    assert r.exit_code == 0 and "Resumed 1 deck;" in r.output, r.output
    assert db.session.get(Deck, up[1], populate_existing=True).status == "ready"


def test_the_server_jobs_loop_resumes_decks_and_sends_reminders_without_being_asked(app, make, monkeypatch):
    """What `flask serve` starts in each web process (there under gevent; here in a thread)."""
    import socket
    from datetime import timedelta

    from collab.db import utcnow
    from rooms.meetings import jobs

    monkeypatch.setattr(jobs, "FIRST_RUN", 0.05)
    chair, ann, _bob, room, meeting = setup_meeting(make)
    did = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(1)), "left.pdf", background=False).id
    _set_deck(did, status="converting", worker=f"{socket.gethostname()}:999999999:1", updated_at=utcnow())
    soon = schedule.schedule_meeting(chair, room.id, title="Soon", invitees_=[ann.id],
                                     starts_at=(utcnow() + timedelta(minutes=10)).isoformat())
    app.config["MEETING_JOBS_LOOP"] = True
    assert "meeting jobs" in tasks.start(app)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.rollback()
            deck = db.session.get(Deck, did, populate_existing=True)
            plan = access.plan_for(soon)
            db.session.refresh(plan)
            if deck.status == "ready" and plan.reminded_at is not None:
                break
            time.sleep(0.2)
        assert deck.status == "ready" and plan.reminded_at is not None
    finally:
        tasks.stop(app)   # the loop ends at its next turn
    tasks.settle(app)
