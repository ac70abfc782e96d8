"""A meeting's recordings on the web (issue 16), on the `recordings` blueprint; each route calls one
function of rooms/meetings/recordings.py (or its timeline), refuses anonymous callers and answers 404 to
anyone who may not read the recordings (rooms.policy may_read_recordings).

- `GET /meetings/<id>/recordings/<rid>`: the replay page (the composed file, the slide shown at each
  moment, captions, a keyboard-operable index of what happened; progress while it is being prepared).
- `GET …/<rid>/file` (the WebM, with byte ranges for seeking), `…/<rid>/timeline.json`, `…/<rid>/captions.vtt`.
- `POST /meetings/<id>/recording` and `…/recording/stop`: the chair starts and stops it (CSRF-protected,
  the X-CSRFToken header), answering JSON.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, send_file
from flask_login import current_user, login_required

from collab.errors import ServiceError
from collab.http import confidential
from rooms.meetings import recording_timeline, recordings, transcript

bp = Blueprint("recordings", __name__, cli_group=None)


def _json(fn, *args):
    try:
        result = fn(*args)
    except ServiceError as err:
        return jsonify({"error": {"code": err.code, "message": err.message}}), err.status
    return jsonify(result if result is not None else {"ok": True})


@bp.get("/meetings/<int:meeting_id>/recordings/<int:recording_id>")
@login_required
def replay(meeting_id: int, recording_id: int):
    meeting, rec = recordings.get_readable(current_user, meeting_id, recording_id)
    return confidential(Response(render_template(
        "meetings/recording.html", meeting=meeting, room=meeting.room, rec=rec,
        others=[r for r in recordings.recordings_of(meeting) if r.id != rec.id]), mimetype="text/html"))


@bp.get("/meetings/<int:meeting_id>/recordings/<int:recording_id>/file")
@login_required
def file(meeting_id: int, recording_id: int):
    path = recordings.file_path(current_user, meeting_id, recording_id)
    return confidential(send_file(path, mimetype="video/webm", conditional=True,
                                  download_name=f"meeting-{meeting_id}-recording-{recording_id}.webm"))


@bp.get("/meetings/<int:meeting_id>/recordings/<int:recording_id>/timeline.json")
@login_required
def timeline(meeting_id: int, recording_id: int):
    meeting, rec = recordings.get_readable(current_user, meeting_id, recording_id)
    return confidential(jsonify(recording_timeline.index(current_user, meeting, rec)))


@bp.get("/meetings/<int:meeting_id>/recordings/<int:recording_id>/captions.vtt")
@login_required
def captions(meeting_id: int, recording_id: int):
    _, rec = recordings.get_readable(current_user, meeting_id, recording_id)
    vtt = transcript.webvtt(current_user, meeting_id, start=rec.started_at, end=rec.ended_at)
    return confidential(Response(vtt, mimetype="text/vtt"))


@bp.post("/meetings/<int:meeting_id>/recording")
@login_required
def start(meeting_id: int):
    return _json(recordings.start, current_user, meeting_id)


@bp.post("/meetings/<int:meeting_id>/recording/stop")
@login_required
def stop(meeting_id: int):
    return _json(recordings.stop, current_user, meeting_id)
