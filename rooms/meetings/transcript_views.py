"""Transcript pages and the worker's report endpoint (issue 16), on the `transcript` blueprint:

- `POST /media/captions`: final captions from a media worker (media/captions/report.py). No session and
  no CSRF token: it is authenticated by its HMAC signature alone (the key derived from SECRET_KEY), and
  refused 403 without one; a browser cannot make a valid one.
- `GET /meetings/<id>/transcript`: the transcript for readers of the room, with a correction form per
  segment for the chairs; `POST /meetings/<id>/transcript/<segment id>` saves one correction.
- `GET /meetings/<id>/transcript.vtt`: the WebVTT file (also `GET /api/v1/meetings/<id>/transcript`).
- `POST /account/captions`: the meeting page's Captions toggle, remembered for the account.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from auth import preferences
from collab.errors import ServiceError
from collab.extensions import csrf
from collab.forms import attempt, field, flash_ok
from collab.http import confidential
from media.captions import report
from rooms.meetings import transcript

log = logging.getLogger(__name__)

bp = Blueprint("transcript", __name__, cli_group=None)


@bp.post("/media/captions")
@csrf.exempt
def worker_report():
    try:
        message = report.verify(current_app.config["SECRET_KEY"], request.get_data(cache=False)[:report.MAX_BODY + 1])
    except report.Refused as err:
        log.warning("refused a captions report: %s", err.reason)
        return jsonify({"error": err.reason}), err.status
    return jsonify({"ok": True, "saved": transcript.save_report(message)})


@bp.get("/meetings/<int:meeting_id>/transcript")
@login_required
def page(meeting_id: int):
    meeting, segments = transcript.segments(current_user, meeting_id, "page")
    return render_template("meetings/transcript.html", meeting=meeting, room=meeting.room, segments=segments,
                           can_correct=transcript.may_correct(current_user, meeting), errors={})


@bp.post("/meetings/<int:meeting_id>/transcript/<int:segment_id>")
@login_required
def correct(meeting_id: int, segment_id: int):
    errors: dict = {}
    transcript.get_readable(current_user, meeting_id)   # 404 first to those who may not read it
    if attempt(lambda: transcript.correct(current_user, segment_id, field("text")), errors,
               {"text": f"text-{segment_id}"}) is not None:
        flash_ok("The correction has been saved.")
        return redirect(url_for("transcript.page", meeting_id=meeting_id) + f"#segment-{segment_id}")
    meeting, segments = transcript.segments(current_user, meeting_id, "page")
    return render_template("meetings/transcript.html", meeting=meeting, room=meeting.room, segments=segments,
                           can_correct=transcript.may_correct(current_user, meeting), errors=errors,
                           failed=segment_id), 400


@bp.get("/meetings/<int:meeting_id>/transcript.vtt")
@login_required
def vtt(meeting_id: int):
    return confidential(Response(transcript.webvtt(current_user, meeting_id), mimetype="text/vtt"))


@bp.post("/account/captions")
@login_required
def captions_preference():
    data = request.get_json(silent=True)
    try:
        preferences.set_captions(current_user, data.get("captions") if isinstance(data, dict) else None)
    except ServiceError as err:
        return jsonify({"error": err.message}), 400
    return jsonify({"captions": data["captions"]})
