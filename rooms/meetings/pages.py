"""Meeting pages (HTML), on the `meetings` blueprint: start a meeting from a room, the meeting
page and its media token and end; schedule, edit and cancel a meeting, "My meetings", the
`.ics` invitation; pre-read decks (upload, slide images, download); the minutes (post to the
room, PDF); and the live state as JSON for a page without the socket. Each route calls one
service; each refuses anonymous callers and gives 404 to anyone who may not read the
meeting's room. The app factory (collab/__init__.py) registers the blueprint."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required

from collab import timezones
from collab.db import utcnow
from collab.errors import ServiceError
from collab.forms import attempt, field, flash_ok
from collab.http import allow_media, confidential
from collab.limits import upload_limit
from rooms import policy
from rooms import services as room_services
from rooms.markdown import render
from rooms.meetings import (
    access,
    attendance,
    conversion,
    decks,
    minutes,
    pseudonyms,
    recordings,
    schedule,
    services,
    state,
)

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
    m = access.get_meeting(current_user, meeting_id)
    replays = recordings.recordings_of(m) if m.ended and policy.may_read_recordings(current_user, m) else []
    resp = current_app.make_response(render_template(
        "meetings/meeting.html", meeting=m, room=m.room, role=access.media_role(current_user, m),
        can_end=not m.ended and access.may_end(current_user, m), replays=replays,
        media_down=None if m.ended else services.media_unavailable()))
    return allow_media(resp, current_app.config["MEDIA_URLS"])


@bp.post("/meetings/<int:meeting_id>/token")
@login_required
def token(meeting_id: int):
    """A fresh token for the media worker (CSRF-protected: send the X-CSRFToken header)."""
    try:
        return jsonify(services.join(current_user, meeting_id))
    except ServiceError as err:
        return jsonify({"error": {"code": err.code, "message": err.message}}), err.status


@bp.post("/meetings/<int:meeting_id>/call/leave")
@login_required
def call_leave(meeting_id: int):
    """The Leave button: the caller's attendance span ends; the page may stay (CSRF-protected: send the
    X-CSRFToken header). The same as the `meeting_call_leave` event."""
    try:
        attendance.call_left(current_user, meeting_id)
    except ServiceError as err:
        return jsonify({"error": {"code": err.code, "message": err.message}}), err.status
    return jsonify({"ok": True})


@bp.post("/meetings/<int:meeting_id>/end")
@login_required
def end(meeting_id: int):
    m = services.end_meeting(current_user, meeting_id)
    flash_ok("The meeting has ended.")
    return redirect(url_for("rooms.room", room_id=m.room_id))


# -- hybrid meetings: schedule, decks, minutes ----------------------------------------------------

@bp.app_template_global("meeting_extras")
def _meeting_extras(meeting):
    """For the meeting page: its schedule, pre-reads and what the viewer may do. Chairs and
    invitees as pseudonyms.person dicts ("Participant n" unless the viewer sees names)."""
    plan = access.plan_for(meeting)
    names = pseudonyms.names_for(current_user, meeting, "page")
    chairs = [pseudonyms.person(meeting, u, names) for u in access.people(meeting.id, "chair")]
    return {"plan": plan, "chair": access.is_chair(current_user, meeting),
            "writable": policy.may_act_in_meeting(current_user, meeting),
            "status": schedule.status(meeting, plan),
            "chairs": chairs or [p for p in [pseudonyms.person(meeting, meeting.created_by, names)] if p],
            "invitees": [pseudonyms.person(meeting, u, names) for u in schedule.invitees(meeting)],
            "agenda_html": _agenda(plan), "soffice": conversion.soffice() is not None,
            "heads_bound": attendance.heads_bound(meeting),
            "files": policy.may_download_deck(current_user, meeting)}


@bp.app_template_global("room_schedule")
def _room_schedule(room):
    if not current_user.is_authenticated:
        return []
    return schedule.room_meetings(current_user, room)


def _agenda(plan):
    return render(plan.agenda) if plan and plan.agenda else ""


def _local_input(dt: datetime | None) -> str:
    """A stored (UTC) time as the form shows it: local, in the person's time zone."""
    return timezones.local_input(dt, timezones.current_zone_name())


def _form_time(name: str) -> str | None:
    """What was typed (local date and time, as <input type=datetime-local> sends it), or None."""
    return field(name).strip() or None


# -- scheduling -----------------------------------------------------------------------------

@bp.route("/rooms/<int:room_id>/meetings/schedule", methods=["GET", "POST"])
@login_required
def schedule_page(room_id: int):
    room = room_services.get_room(current_user, room_id)
    members = [m.user for m in room_services.room_members(current_user, room) if m.user.active]
    errors: dict[str, str] = {}
    if request.method == "POST":
        chosen = request.form.getlist("invitees") if field("audience") == "some" else []
        if field("audience") == "some" and not chosen:
            errors["invitees"] = "Choose at least one person to invite, or invite everyone in the room."
        else:
            meeting = attempt(lambda: schedule.schedule_meeting(
                current_user, room.id, title=field("title"), agenda=field("agenda"),
                starts_at=_form_time("starts_at"), ends_at=_form_time("ends_at"),
                chairs=request.form.getlist("chairs") or None, invitees_=chosen,
                time_zone=timezones.current_zone_name()), errors,
                {"starts_at": "starts_at", "ends_at": "ends_at"})
            if meeting is not None:
                flash_ok("The meeting is scheduled and the invitees have been notified. Attach the pre-reads below.")
                return redirect(url_for("meetings.meeting", meeting_id=meeting.id))
    # A week from now, on the hour, in the person's own time (the form takes local time).
    start = timezones.to_local(utcnow() + timedelta(days=7), timezones.current_zone_name()).replace(
        minute=0, second=0, microsecond=0, tzinfo=None)
    return render_template("meetings/schedule.html", room=room, members=members, errors=errors, meeting=None,
                           form=request.form if request.method == "POST" else None,
                           default_start=f"{start:%Y-%m-%dT%H:%M}",
                           default_end=f"{start + timedelta(hours=2):%Y-%m-%dT%H:%M}")


@bp.route("/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
@login_required
def edit_page(meeting_id: int):
    meeting = access.get_meeting(current_user, meeting_id)
    if not access.is_chair(current_user, meeting):
        abort(403)
    plan = access.plan_for(meeting)
    errors: dict[str, str] = {}
    if request.method == "POST":
        done = attempt(lambda: schedule.edit_meeting(current_user, meeting.id, title=field("title"),
                                                     agenda=field("agenda"), starts_at=_form_time("starts_at"),
                                                     ends_at=_form_time("ends_at"),
                                                     time_zone=timezones.current_zone_name()), errors)
        if done is not None:
            flash_ok("The meeting is updated and the invitees have been told.")
            return redirect(url_for("meetings.meeting", meeting_id=meeting.id))
    return render_template("meetings/schedule.html", room=meeting.room, meeting=meeting, plan=plan, errors=errors,
                           members=[], form=request.form if request.method == "POST" else None,
                           default_start=_local_input(plan.starts_at if plan else meeting.created_at),
                           default_end=_local_input(plan.ends_at if plan else None))


@bp.post("/meetings/<int:meeting_id>/cancel")
@login_required
def cancel(meeting_id: int):
    m = schedule.cancel_meeting(current_user, meeting_id)
    flash_ok("The meeting is cancelled and the invitees have been told.")
    return redirect(url_for("rooms.room", room_id=m.room_id))


@bp.get("/meetings")
@login_required
def mine():
    upcoming, past = schedule.my_meetings(current_user)
    return render_template("meetings/my_meetings.html", upcoming=upcoming, past=past)


@bp.get("/meetings/<int:meeting_id>.ics")
@login_required
def ics(meeting_id: int):
    body = schedule.ics(current_user, meeting_id)
    return Response(body, mimetype="text/calendar",
                    headers={"Content-Disposition": f'attachment; filename="meeting-{meeting_id}.ics"'})


# -- decks --------------------------------------------------------------------------------------

@bp.post("/meetings/<int:meeting_id>/decks")
@login_required
@upload_limit
def deck_upload(meeting_id: int):
    f = request.files.get("file")
    try:
        deck = decks.upload(current_user, meeting_id, f.stream if f and f.filename else None,
                            f.filename if f else "")
        flash_ok(f"“{deck.filename}” is attached. Slides are being prepared; the progress shows below.")
    except ServiceError as err:
        if err.status in (403, 404):  # may not see / may not act: the error page, with its status
            raise
        flash(f"The file was not attached: {err.message}", "error")
    return redirect(url_for("meetings.meeting", meeting_id=meeting_id) + "#decks")


@bp.post("/meetings/<int:meeting_id>/decks/<int:deck_id>/delete")
@login_required
def deck_delete(meeting_id: int, deck_id: int):
    decks.remove(current_user, meeting_id, deck_id)
    flash_ok("The file is removed from the meeting.")
    return redirect(url_for("meetings.meeting", meeting_id=meeting_id) + "#decks")


@bp.get("/meetings/<int:meeting_id>/decks/<int:deck_id>/pages/<int:page>.png")
@login_required
def deck_page(meeting_id: int, deck_id: int, page: int):
    path = decks.page_path(current_user, meeting_id, deck_id, page)
    return confidential(send_file(path, mimetype="image/png"))


@bp.get("/meetings/<int:meeting_id>/decks/<int:deck_id>/titles.json")
@login_required
def deck_titles(meeting_id: int, deck_id: int):
    return confidential(jsonify({"titles": decks.slide_titles(current_user, meeting_id, deck_id)}))


@bp.get("/meetings/<int:meeting_id>/decks/<int:deck_id>/file")
@login_required
def deck_file(meeting_id: int, deck_id: int):
    deck, path = decks.file_path(current_user, meeting_id, deck_id)
    return confidential(send_file(path, as_attachment=True, download_name=deck.filename,
                                  mimetype="application/octet-stream"))


# -- minutes ---------------------------------------------------------------------------------------

@bp.post("/meetings/<int:meeting_id>/minutes")
@login_required
def post_minutes(meeting_id: int):
    thread = minutes.post_minutes(current_user, meeting_id)
    flash_ok("The minutes are posted in the room. You can edit them there.")
    return redirect(url_for("rooms.thread", thread_id=thread.id))


@bp.post("/meetings/<int:meeting_id>/finish")
@login_required
def finish(meeting_id: int):
    thread = minutes.end_with_minutes(current_user, meeting_id)
    flash_ok("The meeting has ended and its minutes are posted in the room. You can edit them there.")
    return redirect(url_for("rooms.thread", thread_id=thread.id))


@bp.get("/meetings/<int:meeting_id>/minutes.pdf")
@login_required
def minutes_pdf(meeting_id: int):
    name, data = minutes.pdf(current_user, meeting_id)
    return confidential(send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                                  download_name=name))


@bp.get("/meetings/<int:meeting_id>/state")
@login_required
def state_json(meeting_id: int):
    """The meeting's live state (what `meeting_join` answers), for a page without the socket."""
    return jsonify(state.get_state(current_user, meeting_id))
