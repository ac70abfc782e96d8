"""Meeting endpoints of the JSON API; every one calls one service.

`POST /api/v1/rooms/<id>/meetings` schedules a meeting when it is given `agenda`,
`starts_at`, `ends_at`, `chairs` or `invitees`, and starts one on the spot otherwise."""
from __future__ import annotations

from flask import Response, request, url_for

from collab.api import api_user, bp, json_body, ok
from collab.limits import upload_limit
from rooms.meetings import access, broadcast, decks, minutes, recordings, schedule, services, state, votes, whep


def _full(meeting) -> dict:
    """The meeting as the caller may see it (names only where rooms.policy.sees_names allows)."""
    return dict(services.meeting_view(api_user(), meeting), url=url_for("meetings.meeting", meeting_id=meeting.id))


@bp.post("/rooms/<int:room_id>/meetings")
def start_meeting(room_id: int):
    data = json_body()
    if any(data.get(k) not in (None, "") for k in ("agenda", "starts_at", "ends_at", "chairs", "invitees")):
        meeting = schedule.schedule_meeting(api_user(), room_id, title=data.get("title"), agenda=data.get("agenda"),
                                            starts_at=data.get("starts_at"), ends_at=data.get("ends_at"),
                                            chairs=data.get("chairs"), invitees_=data.get("invitees"))
        return ok(dict(schedule.schedule_view(api_user(), meeting),
                       url=url_for("meetings.meeting", meeting_id=meeting.id)), 201)
    meeting = services.start_meeting(api_user(), room_id, title=data.get("title"))
    return ok(_full(meeting), 201)


@bp.get("/meetings/<int:meeting_id>")
def get_meeting(meeting_id: int):
    return ok(_full(access.get_meeting(api_user(), meeting_id)))


@bp.post("/meetings/<int:meeting_id>/token")
def meeting_token(meeting_id: int):
    """For API clients (e.g. a room system): the media worker's URL and a join token."""
    return ok(services.join(api_user(), meeting_id))


@bp.get("/meetings")
def my_meetings():
    actor = api_user()
    upcoming, past = schedule.my_meetings(actor)
    return ok({"upcoming": [schedule.schedule_view(actor, m) for m, _ in upcoming],
               "past": [schedule.schedule_view(actor, m) for m, _ in past]})


@bp.get("/meetings/<int:meeting_id>.ics")
def meeting_ics(meeting_id: int):
    return Response(schedule.ics(api_user(), meeting_id), mimetype="text/calendar")


@bp.patch("/meetings/<int:meeting_id>")
def edit_meeting(meeting_id: int):
    data = json_body()
    m = schedule.edit_meeting(api_user(), meeting_id, title=data.get("title"), agenda=data.get("agenda"),
                              starts_at=data.get("starts_at"), ends_at=data.get("ends_at"))
    return ok(schedule.schedule_view(api_user(), m))


@bp.post("/meetings/<int:meeting_id>/cancel")
def cancel_meeting(meeting_id: int):
    return ok(schedule.schedule_view(api_user(), schedule.cancel_meeting(api_user(), meeting_id)))


@bp.get("/meetings/<int:meeting_id>/state")
def meeting_state(meeting_id: int):
    return ok(state.get_state(api_user(), meeting_id))


@bp.post("/meetings/<int:meeting_id>/decks")
@upload_limit
def upload_deck(meeting_id: int):
    f = request.files.get("file")
    deck = decks.upload(api_user(), meeting_id, f.stream if f and f.filename else None, f.filename if f else "")
    return ok(state.deck_dict(deck), 201)


@bp.post("/meetings/<int:meeting_id>/key-messages")
def draft_key_message(meeting_id: int):
    snap = votes.draft(api_user(), meeting_id, text=json_body().get("text"))
    return ok(next(k for k in snap["key_messages"] if k["id"] == snap["key_message_id"]), 201)


@bp.post("/key-messages/<int:key_message_id>/votes")
def vote(key_message_id: int):
    data = json_body()
    votes.cast(api_user(), key_message_id, choice=data.get("choice"), comment=data.get("comment"))
    return ok({"key_message_id": key_message_id, "choice": data.get("choice")})


@bp.post("/meetings/<int:meeting_id>/minutes")
def post_minutes(meeting_id: int):
    thread = minutes.post_minutes(api_user(), meeting_id)
    return ok({"thread_id": thread.id}, 201)


@bp.get("/meetings/<int:meeting_id>/broadcast")
def broadcast_state(meeting_id: int):
    """Whether the meeting is broadcast now, and where to watch it (readers of the room)."""
    meeting = access.get_meeting(api_user(), meeting_id)
    return ok(broadcast.view(meeting, state.live_broadcast(meeting.id)))


@bp.post("/meetings/<int:meeting_id>/broadcast")
def start_broadcast(meeting_id: int):
    """A chair starts the web broadcast (again: the same one) → {"viewer_url", "whep_url", "live", …}."""
    return ok(broadcast.start(api_user(), meeting_id))


@bp.delete("/meetings/<int:meeting_id>/broadcast")
def stop_broadcast(meeting_id: int):
    """A chair stops it: every viewer is let go at once."""
    return ok(broadcast.stop(api_user(), meeting_id))


@bp.get("/meetings/<int:meeting_id>/recordings")
def meeting_recordings(meeting_id: int):
    """The meeting's recordings → {"recordings": [{"id", "started_at", "ended_at", "url", "status", …}]}
    (as the room's attachments: 404 to those who may not read them)."""
    return ok({"recordings": recordings.list_for(api_user(), meeting_id)})


@bp.post("/meetings/<int:meeting_id>/recording")
def start_recording(meeting_id: int):
    """A chair starts recording (where the room allows it); everyone in the meeting is told."""
    return ok(recordings.start(api_user(), meeting_id), 201)


@bp.delete("/meetings/<int:meeting_id>/recording")
def stop_recording(meeting_id: int):
    """A chair stops it; the file to replay is prepared in the background (its progress is in the list)."""
    return ok(recordings.stop(api_user(), meeting_id) or {"ok": True})


@bp.post("/meetings/<int:meeting_id>/broadcast/token")
def broadcast_token(meeting_id: int):
    """For a player of the broadcast (readers of the room, while it is on): the media worker's URL and a
    viewer token (receives the stage and the speakers' audio, sends nothing)."""
    return ok(broadcast.viewer_token(api_user(), meeting_id))


@bp.post("/meetings/<int:meeting_id>/whep")
def whep_offer(meeting_id: int):
    """WHEP: a player's SDP offer for the broadcast → 201 with the answer and the session's Location."""
    access.get_meeting(api_user(), meeting_id)   # 404 first to those who may not read the room
    if request.mimetype != "application/sdp":
        return Response("Send the SDP offer with Content-Type: application/sdp.\n", 415, mimetype="text/plain")
    out = whep.offer(api_user(), meeting_id, request.get_data(cache=False, as_text=True)[:whep.MAX_OFFER + 1])
    resp = Response(out["sdp"], 201, mimetype="application/sdp")
    resp.headers["Location"] = url_for("api.whep_stop", meeting_id=meeting_id, session=out["session"])
    return resp


@bp.delete("/meetings/<int:meeting_id>/whep/<session>")
def whep_stop(meeting_id: int, session: str):
    whep.stop(api_user(), meeting_id, session)
    return Response(status=200)


@bp.patch("/meetings/<int:meeting_id>/whep/<session>")
def whep_trickle(meeting_id: int, session: str):
    """Trickle ICE is not supported: the offer must carry the player's candidates."""
    access.get_meeting(api_user(), meeting_id)
    return Response("Trickle ICE is not supported: send your candidates in the offer.\n", 405,
                    mimetype="text/plain", headers={"Allow": "POST, DELETE"})
