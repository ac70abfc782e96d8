"""Composing a stopped recording into one file, in the background (issue 16).

The media worker wrote one WebM file per published stream, muxed without decoding (media/recorder.py).
Replaying and sharing need one file: the voices mixed, the speaker's camera (or a shared screen) with the
slide shown at that moment. That is the one place a recording is decoded and encoded again
(rooms/meetings/recording_compose.py), so it runs in a child process at low priority (`nice`), never in a
request, one at a time per web process, with a time limit; its progress is kept on the row (the
recordings list and the replay page show it).

Like a deck's conversion (rooms/meetings/conversion.py, whose process naming it shares) a composition is
claimed with one conditional UPDATE, so several web processes never compose the same recording twice, and
`resume_stuck` (the meetings' jobs loop, rooms/meetings/jobs.py) takes up a recording left "stopped" or
half-composed by a server that stopped, failing it after MAX_ATTEMPTS.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select, update

from collab.db import utcnow
from collab.extensions import db, socketio
from rooms.meetings import conversion
from rooms.meetings.recording_models import COMPOSING, Recording, RecordingMark

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DEAD_AFTER = timedelta(minutes=5)     # a "composing" row not touched for this long is taken up again
QUIET_AFTER = timedelta(seconds=30)   # a "stopped" row nobody claimed for this long is composed by the jobs loop
MIN_LIMIT = 600                       # seconds a composition may take at least (then 3 × the recording)
_slots = threading.BoundedSemaphore(1)
_mine: set[int] = set()


def root() -> Path:
    return Path(current_app.config["RECORDINGS_DIR"])


def folder(rec: Recording) -> Path:
    return root() / str(rec.meeting_id) / str(rec.id)


def composed_path(rec: Recording) -> Path:
    return folder(rec) / "composed.webm"


def epoch(at: datetime) -> float:
    return at.replace(tzinfo=timezone.utc).timestamp()


def start(app: Flask, recording_id: int):
    _mine.add(recording_id)
    return socketio.start_background_task(_compose_in_context, app, recording_id)


def _compose_in_context(app: Flask, recording_id: int) -> None:
    with app.app_context():
        try:
            with _slots:
                compose(recording_id)
        except Exception:
            log.exception("recording %s: composing failed", recording_id)
            _update(recording_id, status="failed", message="The recording could not be prepared (an error on the "
                                                            "server).")
        finally:
            _mine.discard(recording_id)
            db.session.remove()


def _update(recording_id: int, **values) -> None:
    db.begin_write()
    rec = db.session.get(Recording, recording_id, populate_existing=True)
    if rec is not None:
        for k, v in values.items():
            setattr(rec, k, v)
        rec.updated_at = utcnow()
    db.session.commit()


def _claim(recording_id: int) -> bool:
    db.begin_write()
    taken = db.session.execute(
        update(Recording).where(Recording.id == recording_id, Recording.status == "stopped")
        .values(status="composing", worker=conversion.worker_id(), attempts=Recording.attempts + 1, progress=0,
                message="", updated_at=utcnow())).rowcount
    db.session.commit()
    return bool(taken)


def slides_of(rec: Recording) -> list[tuple[float, str]]:
    """(epoch seconds, slide image) of each slide shown while it recorded, whose image still exists."""
    out = []
    for m in db.session.scalars(select(RecordingMark).where(RecordingMark.recording_id == rec.id)
                                .order_by(RecordingMark.at, RecordingMark.id)):
        path = conversion.deck_dir(m.deck_id) / f"{m.page}.png" if m.deck_id else None
        if path is not None and path.is_file():
            out.append((epoch(m.at), str(path)))
    return out


def compose(recording_id: int) -> str:
    """Compose one stopped recording now (in this thread, the work in a child process); its final status."""
    if not _claim(recording_id):
        rec = db.session.get(Recording, recording_id)
        return rec.status if rec is not None else "gone"
    rec = db.session.get(Recording, recording_id, populate_existing=True)
    job = {"directory": str(folder(rec)), "started_at": epoch(rec.started_at), "ended_at": epoch(rec.ended_at),
           "out_path": str(composed_path(rec)), "slides": slides_of(rec)}
    duration = job["ended_at"] - job["started_at"]
    folder(rec).mkdir(parents=True, exist_ok=True)   # a recording nobody published into has no folder yet
    db.session.rollback()
    result, error = _run_child(recording_id, job, limit=max(MIN_LIMIT, 3 * duration))
    if result is None:
        _update(recording_id, status="failed", progress=0, message=error)
        return "failed"
    _update(recording_id, status="ready", progress=100, size=result["size"], duration=result["duration"])
    return "ready"


def _run_child(recording_id: int, job: dict, *, limit: float) -> tuple[dict | None, str]:
    """Run the composer at low priority; progress lines update the row. (result, "") or (None, why)."""
    cmd = ["nice", "-n", "10", sys.executable, "-m", "rooms.meetings.recording_compose", json.dumps(job)]
    # one pipe for both (its log lines too): a child that logs a lot can never fill a pipe nobody reads
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            cwd=str(Path(__file__).resolve().parents[2]), env=dict(os.environ))
    timer = threading.Timer(limit, conversion._kill_group, (proc,))
    timer.start()
    result, shown, said = None, -1, deque(maxlen=40)
    try:
        for line in proc.stdout:
            kind, _, value = line.strip().partition(" ")
            if kind == "progress":
                pct = int(float(value) * 100)
                if pct >= shown + 5 or pct == 100:
                    shown = pct
                    _update(recording_id, progress=min(pct, 99))
            elif kind == "done":
                result = json.loads(value)
            else:
                said.append(line.rstrip())
        proc.wait()
    finally:
        timer.cancel()
    if proc.returncode == 0 and result is not None:
        return result, ""
    log.warning("recording %s: composer exited %s: %s", recording_id, proc.returncode, "\n".join(said))
    why = next((ln for ln in reversed(said) if ln.startswith("ValueError: ")), "")
    return None, (why.removeprefix("ValueError: ") or "The recording could not be prepared.")[:500]


def resume_stuck(app: Flask | None = None, *, now: datetime | None = None, background: bool = True) -> list[int]:
    """Recordings a stopped server left "stopped" (never claimed) or "composing" (its process is gone):
    composed again, or failed after MAX_ATTEMPTS. Returns the ids taken up."""
    now = now or utcnow()
    rows = db.session.execute(select(Recording.id, Recording.status, Recording.worker, Recording.updated_at,
                                     Recording.attempts).where(Recording.status.in_(COMPOSING))).all()
    db.session.rollback()
    again = []
    for rid, status, worker, seen, attempts in rows:
        if rid in _mine:
            continue
        if status == "composing":
            alive = conversion.worker_alive(worker) if worker else None
            if alive is True or (alive is None and seen is not None and now - seen < DEAD_AFTER):
                continue
        elif seen is not None and now - seen < QUIET_AFTER:
            continue
        give_up = attempts >= MAX_ATTEMPTS
        db.begin_write()
        taken = db.session.execute(update(Recording).where(Recording.id == rid, Recording.status == status,
                                                           Recording.attempts == attempts)
                                   .values(status="failed" if give_up else "stopped", updated_at=now,
                                           message="Preparing the recording was interrupted too often."
                                           if give_up else "")).rowcount
        db.session.commit()
        if not taken or give_up:
            continue
        again.append(rid)
        if background:
            start(app or current_app._get_current_object(), rid)
        else:
            compose(rid)
    return again
