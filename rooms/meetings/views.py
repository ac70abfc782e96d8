"""Meeting pages: start a meeting from a room, the meeting page, the join token,
and the `flask --app wsgi media` command that runs a media worker."""
from __future__ import annotations

import sys

import click
from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required

import rooms.meetings.api  # noqa: F401  (registers the meetings endpoints on the API blueprint)
from collab.errors import ServiceError
from collab.forms import field, flash_ok
from collab.http import CSP
from rooms.meetings import services

bp = Blueprint("meetings", __name__, cli_group=None)


@bp.app_template_global("open_meetings")
def _open_meetings(room_id: int):
    """For room pages: meetings in progress that the signed-in user may join."""
    if not current_user.is_authenticated:
        return []
    return services.open_meetings(current_user, room_id)


@bp.post("/rooms/<int:room_id>/meetings")
@login_required
def start(room_id: int):
    meeting = services.start_meeting(current_user, room_id, title=field("title") or None)
    flash_ok("Your meeting has started. Check your camera and microphone, then join.")
    return redirect(url_for("meetings.meeting", meeting_id=meeting.id))


@bp.get("/meetings/<int:meeting_id>")
@login_required
def meeting(meeting_id: int):
    m = services.get_meeting(current_user, meeting_id)
    role = services.meeting_role(current_user, m)
    resp = current_app.make_response(render_template(
        "meetings/meeting.html", meeting=m, room=m.room, role=role,
        can_end=not m.ended and (m.created_by_id == current_user.id or role == "host")))
    # The page talks to the media worker's WebSocket, which is on another origin (port).
    origins = " ".join(sorted({_origin(u) for u in current_app.config["MEDIA_URLS"]}))
    resp.headers["Content-Security-Policy"] = CSP.replace("connect-src 'self'", f"connect-src 'self' {origins}")
    return resp


def _origin(ws_url: str) -> str:
    from urllib.parse import urlsplit

    p = urlsplit(ws_url)
    return f"{p.scheme}://{p.netloc}"


@bp.post("/meetings/<int:meeting_id>/token")
@login_required
def token(meeting_id: int):
    """A fresh token for the media worker (CSRF-protected: send the X-CSRFToken header)."""
    try:
        return jsonify(services.join(current_user, meeting_id))
    except ServiceError as err:
        return jsonify({"error": {"code": err.code, "message": err.message}}), err.status


@bp.post("/meetings/<int:meeting_id>/end")
@login_required
def end(meeting_id: int):
    m = services.end_meeting(current_user, meeting_id)
    flash_ok("The meeting has ended.")
    return redirect(url_for("rooms.room", room_id=m.room_id))


@bp.cli.command("media")
@click.option("--host", default=None, help="Signalling address (default COLLAB_MEDIA_HOST or COLLAB_HOST).")
@click.option("--port", default=None, type=int, help="Signalling port (default COLLAB_MEDIA_PORT or COLLAB_PORT + 1).")
@click.option("--processes", default=None, type=int, help="Worker processes (default COLLAB_MEDIA_PROCESSES).")
@click.option("--self-test", is_flag=True, help="Only check the aiortc internals the worker relies on.")
def media_command(host, port, processes, self_test) -> None:
    """Run a media worker for meetings (the same as `python -m media`)."""
    from media.__main__ import main

    args = []
    if host:
        args += ["--host", host]
    if port:
        args += ["--port", str(port)]
    if processes:
        args += ["--processes", str(processes)]
    if self_test:
        args.append("--self-test")
    sys.exit(main(args))


import rooms.meetings.hybrid_views  # noqa: F401  (issue 6: scheduling, decks, minutes; adds routes to bp)
