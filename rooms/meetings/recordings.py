"""Recording a meeting (issue 16): a chair starts and stops it, everyone in the meeting sees and hears
that it does, and the room's readers replay it afterwards.

- `start` / `stop`: the chairs (rooms.policy may_record: the room's owners allowed it, its label is not
  above COLLAB_RECORDING_MAX_LABEL, it is not non-attributed). A row is written, audited and published in
  the meeting's state (every page shows "Recording" and announces the change), then each media worker of
  the meeting is sent a signed "record" / "record_stop" (media/recorder.py writes the streams its
  participants publish, as they are forwarded, to <COLLAB_RECORDINGS_DIR>/<meeting>/<recording>/). If no
  worker takes it, the recording is ended at once and the chair is told — never a recording indicator
  with nothing being recorded.
- A meeting that ends stops its recording (`close_at_end`, in end_meeting's transaction).
- After it stops, one file is composed in the background for replay and sharing
  (rooms/meetings/recording_processing.py), with progress in the meeting's list of recordings.
- Reading (`list_for`, `get_readable`, the files): rooms.policy may_read_recordings — as the room's
  attachments; 404 to everyone else. Retention deletes them with the room's other content
  (rooms/retention.py), the data export lists those a person spoke in (rooms/account_data.py), and the
  minutes link to them (rooms/meetings/minutes.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from flask import current_app, url_for
from sqlalchemy import select

from auth import audit
from auth.models import User
from collab import logs, validate
from collab.db import utcnow
from collab.errors import Conflict, Forbidden, NotFound, Unavailable
from collab.extensions import db
from rooms import policy
from rooms.meetings import access, attendance, media_control, recording_processing, state
from rooms.meetings.models import Meeting
from rooms.meetings.recording_models import Recording, RecordingMark, live_recording
from rooms.serialize import iso

NOT_RECORDING = "The media server did not start recording (it may be restarting). Nothing was recorded."


folder, composed_path = recording_processing.folder, recording_processing.composed_path


def view(rec: Recording) -> dict[str, Any]:
    return {"id": rec.id, "started_at": iso(rec.started_at), "ended_at": iso(rec.ended_at), "status": rec.status,
            "progress": rec.progress, "message": rec.message, "duration": round(rec.duration, 1), "size": rec.size,
            "url": url_for("recordings.replay", meeting_id=rec.meeting_id, recording_id=rec.id, _external=True),
            "file_url": url_for("recordings.file", meeting_id=rec.meeting_id, recording_id=rec.id, _external=True)
            if rec.status == "ready" else None}


# -- reading ------------------------------------------------------------------------------------------

def get_meeting_readable(actor: User | None, meeting_id: object) -> Meeting:
    meeting = access.get_meeting(actor, meeting_id)
    if not policy.may_read_recordings(actor, meeting):
        raise NotFound("Meeting not found.")
    return meeting


def recordings_of(meeting: Meeting) -> list[Recording]:
    return list(db.session.scalars(select(Recording).where(Recording.meeting_id == meeting.id,
                                                           Recording.status != "gone")
                                   .order_by(Recording.started_at, Recording.id)))


def list_for(actor: User | None, meeting_id: object) -> list[dict[str, Any]]:
    return [view(r) for r in recordings_of(get_meeting_readable(actor, meeting_id))]


def get_readable(actor: User | None, meeting_id: object, recording_id: object) -> tuple[Meeting, Recording]:
    meeting = get_meeting_readable(actor, meeting_id)
    rec = db.session.get(Recording, validate.int_id(recording_id, "recording_id"))
    if rec is None or rec.meeting_id != meeting.id or rec.status == "gone":
        raise NotFound("Recording not found.")
    return meeting, rec


def file_path(actor: User | None, meeting_id: object, recording_id: object) -> Path:
    _, rec = get_readable(actor, meeting_id, recording_id)
    path = composed_path(rec)
    if rec.status != "ready" or not path.is_file():
        raise NotFound("This recording is not ready to play yet.")
    return path


def slide_marks(rec: Recording) -> list[RecordingMark]:
    return list(db.session.scalars(select(RecordingMark).where(RecordingMark.recording_id == rec.id)
                                   .order_by(RecordingMark.at, RecordingMark.id)))


# -- the chair ------------------------------------------------------------------------------------------

def _require_recorder(actor: User, meeting_id: object) -> Meeting:
    meeting = access.require_chair(actor, meeting_id)
    refusal = policy.recording_refusal(meeting.room)
    if refusal is not None:
        raise Forbidden(refusal)
    if not policy.may_record(actor, meeting, chair=True):
        raise Forbidden("Only the chair can record this meeting.")
    return meeting


def start(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = _require_recorder(actor, meeting_id)
    if not meeting.media_url or not attendance.in_call(meeting):
        raise Conflict("Nobody is in the meeting's call yet: start recording once people have joined it.")
    db.begin_write()
    rec = live_recording(meeting.id)
    if rec is not None:
        db.session.rollback()
        return view(rec)
    rec = Recording(meeting_id=meeting.id, started_by_id=actor.id, started_at=utcnow(), status="recording")
    db.session.add(rec)
    db.session.flush()
    plan = access.plan_for(meeting)
    if plan is not None and plan.deck_id is not None:   # the slide on screen when it starts
        db.session.add(RecordingMark(recording_id=rec.id, at=rec.started_at, deck_id=plan.deck_id, page=plan.page))
    audit.record("meeting.recording_started", actor=actor, target_type="meeting", target_id=meeting.id,
                 room_id=meeting.room_id, detail={"recording_id": rec.id})
    state.publish(meeting)
    db.session.commit()
    if not _tell_workers(meeting, "record", rec.id):
        _end(rec.id, meeting, status="failed", message=NOT_RECORDING)
        db.session.commit()
        raise Unavailable(NOT_RECORDING)
    logs.event("meeting.recording_started", meeting_id=meeting.id, user_id=actor.id)
    return view(rec)


def stop(actor: User, meeting_id: object) -> dict[str, Any] | None:
    meeting = access.require_chair(actor, meeting_id)
    if not policy.may_record(actor, meeting, chair=True):
        raise Forbidden("Only the chair can stop recording.")
    rec = live_recording(meeting.id)
    if rec is None:
        return None
    _tell_workers(meeting, "record_stop", rec.id)   # first: the files are complete when it answers
    rec = _end(rec.id, meeting, status="stopped")
    audit.record("meeting.recording_stopped", actor=actor, target_type="meeting", target_id=meeting.id,
                 room_id=meeting.room_id, detail={"recording_id": rec.id})
    db.session.commit()
    logs.event("meeting.recording_stopped", meeting_id=meeting.id, user_id=actor.id)
    _compose_later(rec.id)
    return view(rec)


def _end(recording_id: int, meeting: Meeting, *, status: str, message: str = "") -> Recording:
    """In a write the caller commits: end the row and publish the meeting's state."""
    db.begin_write()
    rec = db.session.get(Recording, recording_id, populate_existing=True)
    if rec.ended_at is None:
        rec.ended_at = utcnow()
        rec.status, rec.message = status, message
        state.publish(meeting)
    return rec


def _tell_workers(meeting: Meeting, op: str, recording_id: int) -> bool:
    """Ask the meeting's worker (and any other configured one: a token names a meeting, not a worker);
    True if at least one took it."""
    secret = current_app.config["SECRET_KEY"]
    send = media_control.record if op == "record" else media_control.record_stop
    took = [send(url, secret, meeting_id=meeting.id, recording_id=recording_id)
            for url in media_control.workers(meeting.media_url, current_app.config.get("MEDIA_URLS") or [])]
    return any(took)


def close_at_end(meeting: Meeting, now) -> int | None:
    """In end_meeting's transaction: the meeting's recording stops with it (the workers' "end" closes its
    files). The recording's id, for `after_end`."""
    rec = live_recording(meeting.id)
    if rec is None:
        return None
    rec.ended_at, rec.status = now, "stopped"
    return rec.id


def after_end(recording_id: int | None) -> None:
    if recording_id is not None:
        _compose_later(recording_id)


def _compose_later(recording_id: int) -> None:
    recording_processing.start(current_app._get_current_object(), recording_id)


# -- retention ------------------------------------------------------------------------------------------

def delete_files(rec: Recording) -> None:
    """Retention (rooms/retention.py) and a deleted room: the recording's folder goes; the row stays as
    "gone" so the audit trail and the minutes still say there was one."""
    shutil.rmtree(folder(rec), ignore_errors=True)
    rec.status, rec.size, rec.progress = "gone", 0, 0
