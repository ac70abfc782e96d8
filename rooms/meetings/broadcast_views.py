"""The broadcast's pages and the JSON the viewer page and the chair's panel call (issue 16), on the
`broadcast` blueprint; each route calls one function of rooms/meetings/broadcast.py, and each refuses
anonymous callers and answers 404 to anyone who may not read the meeting's room.

- `GET /meetings/<id>/watch`: the viewer page (play, volume, captions, text size, a question box, "Ask to
  speak"); it waits for the broadcast when it is not on yet.
- `POST /meetings/<id>/watch/token`, `…/watch/question` {body}, `…/watch/speak`: the viewer's calls.
- `POST /meetings/<id>/broadcast`, `…/broadcast/stop`: the chair starts and stops it;
  `GET …/broadcast/queue` and `POST …/broadcast/requests/<rid>/bring-in|dismiss`: the chair's queue.
The POSTs are CSRF-protected (the X-CSRFToken header).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user, login_required

from collab.errors import ServiceError
from collab.http import allow_media
from rooms.meetings import access, broadcast, state

bp = Blueprint("broadcast", __name__, cli_group=None)


def _json(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except ServiceError as err:
        return jsonify({"error": {"code": err.code, "message": err.message}}), err.status
    return jsonify(result if result is not None else {"ok": True})


@bp.get("/meetings/<int:meeting_id>/watch")
@login_required
def watch(meeting_id: int):
    meeting = access.get_meeting(current_user, meeting_id)
    resp = current_app.make_response(render_template(
        "meetings/watch.html", meeting=meeting, room=meeting.room, live=state.live_broadcast(meeting.id) is not None))
    return allow_media(resp, current_app.config["MEDIA_URLS"])


@bp.post("/meetings/<int:meeting_id>/watch/token")
@login_required
def token(meeting_id: int):
    return _json(broadcast.viewer_token, current_user, meeting_id)


@bp.post("/meetings/<int:meeting_id>/watch/question")
@login_required
def question(meeting_id: int):
    body = (request.get_json(silent=True) or {}).get("body") if request.is_json else request.form.get("body")
    return _json(broadcast.ask, current_user, meeting_id, body=body)


@bp.post("/meetings/<int:meeting_id>/watch/speak")
@login_required
def speak(meeting_id: int):
    return _json(broadcast.ask_to_speak, current_user, meeting_id)


@bp.post("/meetings/<int:meeting_id>/broadcast")
@login_required
def start(meeting_id: int):
    return _json(broadcast.start, current_user, meeting_id)


@bp.post("/meetings/<int:meeting_id>/broadcast/stop")
@login_required
def stop(meeting_id: int):
    return _json(broadcast.stop, current_user, meeting_id)


@bp.get("/meetings/<int:meeting_id>/broadcast/queue")
@login_required
def queue(meeting_id: int):
    return _json(lambda: {"requests": broadcast.queue(current_user, meeting_id)})


@bp.post("/meetings/<int:meeting_id>/broadcast/requests/<int:request_id>/bring-in")
@login_required
def bring_in(meeting_id: int, request_id: int):
    return _json(broadcast.bring_in, current_user, meeting_id, request_id)


@bp.post("/meetings/<int:meeting_id>/broadcast/requests/<int:request_id>/dismiss")
@login_required
def dismiss(meeting_id: int, request_id: int):
    return _json(broadcast.dismiss, current_user, meeting_id, request_id)
