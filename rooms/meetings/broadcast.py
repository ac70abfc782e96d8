"""A meeting's web broadcast (issue 16): people who may read the room but cannot (or would rather not)
take part watch the stage — the presented slide, the speaker's camera or a shared screen, the speakers'
audio and captions — on a simple viewer page, send the chairs a question, and ask to speak.

- A chair starts and stops it (`start`, `stop`); while it is on, readers of the room (rooms.policy
  may_watch_broadcast) get a viewer token (`viewer_token`): role "viewer" in the media worker, which sends
  them the stage only and counts them instead of showing them (media/meeting.py). Stopping it lets every
  viewer go at once and voids their tokens (the "unwatch" of rooms/revocation.py); losing access to the
  room reaches viewers through the same revocation path as participants (their media grant is recorded).
- A viewer's question goes into the meeting's Q&A session when it has one the viewer may ask in, and
  otherwise into the chairs' queue (`ViewerRequest`), as does a request to speak. Only chairs read the
  queue (rooms.policy may_read_viewer_requests); everyone in the meeting is told only how many wait.
- A chair brings a viewer in (`bring_in`): the viewer becomes a meeting person of role "speaker", so the
  meeting page's token lets them send audio and video in this meeting (access.media_role), and their
  viewer page is told to offer "Join the meeting".
"""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from sqlalchemy import func, select

from auth import audit
from auth.models import User
from collab import events, logs, validate
from collab.db import utcnow
from collab.errors import Conflict, Forbidden, NotFound
from collab.extensions import db
from media import tokens
from rooms import policy, revocation
from rooms.meetings import access, pseudonyms, services, state
from rooms.meetings.broadcast_models import Broadcast, ViewerRequest
from rooms.meetings.models import MeetingPerson
from rooms.qa import services as qa_services
from rooms.serialize import iso

MAX_QUESTION = 1000
ENDED_MESSAGE = "The broadcast has ended."
OPEN_LIMIT = 5   # a viewer's questions waiting at once (a queue one person cannot flood)


# -- reading ----------------------------------------------------------------------------------------

def links(meeting) -> dict[str, Any]:
    """The viewer page and the WHEP endpoint (rooms/meetings/whep.py) of a meeting's broadcast."""
    return {"viewer_url": url_for("broadcast.watch", meeting_id=meeting.id, _external=True),
            "whep_url": url_for("api.whep_offer", meeting_id=meeting.id, _external=True)}


def view(meeting, b: Broadcast | None) -> dict[str, Any]:
    return dict(links(meeting), live=b is not None and b.live, started_at=iso(b.started_at) if b else None)


def get_watchable(actor: User, meeting_id: object):
    """The meeting, for its viewer page and a viewer's requests: 404 unless the room is readable, 403
    (saying why) while nothing is broadcast."""
    meeting = access.get_meeting(actor, meeting_id)
    if meeting.ended:
        raise Forbidden("This meeting has ended.")
    if not policy.may_watch_broadcast(actor, meeting, live=state.live_broadcast(meeting.id) is not None):
        raise Forbidden("This meeting is not being broadcast now.")
    if access.removed(meeting.id, actor.id):
        raise Forbidden(access.REMOVED)
    return meeting


def queue(actor: User, meeting_id: object) -> list[dict[str, Any]]:
    """The chairs' queue: open questions and requests to speak, oldest first."""
    meeting = access.get_meeting(actor, meeting_id)
    if not policy.may_read_viewer_requests(actor, meeting, chair=access.is_chair(actor, meeting)):
        raise Forbidden("Only the chair sees the viewers' questions and requests.")
    names = pseudonyms.names_for(actor, meeting, "page")
    rows = db.session.scalars(select(ViewerRequest).where(ViewerRequest.meeting_id == meeting.id,
                                                          ViewerRequest.status == "open")
                              .order_by(ViewerRequest.id))
    return [{"id": r.id, "kind": r.kind, "body": r.body, "created_at": iso(r.created_at),
             "from": pseudonyms.person(meeting, r.user, names)} for r in rows]


def _open_count(meeting_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(ViewerRequest).where(
        ViewerRequest.meeting_id == meeting_id, ViewerRequest.status == "open")) or 0


def _tell_queue(meeting) -> None:
    """Everyone following the meeting learns how many wait (no text, no names); chairs fetch the queue."""
    state.notify_all(meeting, "meeting.viewer_queue", {"open": _open_count(meeting.id)})


# -- the chair ----------------------------------------------------------------------------------------

def start(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    db.begin_write()
    b = state.live_broadcast(meeting.id)
    if b is None:
        b = Broadcast(meeting_id=meeting.id, started_by_id=actor.id, started_at=utcnow())
        db.session.add(b)
        db.session.flush()
        audit.record("meeting.broadcast_started", actor=actor, target_type="meeting", target_id=meeting.id,
                     room_id=meeting.room_id)
        state.publish(meeting)
    db.session.commit()
    logs.event("meeting.broadcast_started", meeting_id=meeting.id, user_id=actor.id)
    return view(meeting, b)


def stop(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    db.begin_write()
    b = state.live_broadcast(meeting.id)
    if b is None:
        db.session.rollback()
        return view(meeting, None)
    b.ended_at = utcnow()
    audit.record("meeting.broadcast_stopped", actor=actor, target_type="meeting", target_id=meeting.id,
                 room_id=meeting.room_id)
    state.publish(meeting)
    db.session.commit()
    logs.event("meeting.broadcast_stopped", meeting_id=meeting.id, user_id=actor.id)
    revocation.unwatch_media(current_app._get_current_object(), meeting.id, meeting.media_url,
                             message=ENDED_MESSAGE)
    return view(meeting, None)


def _request_in_write(actor: User, meeting_id: object, request_id: object):
    meeting = access.require_chair(actor, meeting_id)
    rid = validate.int_id(request_id, "request_id")
    db.begin_write()
    r = db.session.get(ViewerRequest, rid)
    if r is None or r.meeting_id != meeting.id:
        db.session.rollback()
        raise NotFound("That request is not in this meeting's queue.")
    if r.status != "open":
        db.session.rollback()
        raise Conflict("Another chair has already dealt with that request.")
    return meeting, r


def bring_in(actor: User, meeting_id: object, request_id: object) -> None:
    """The viewer who asked may now take part in this meeting with audio and video."""
    meeting, r = _request_in_write(actor, meeting_id, request_id)
    r.status, r.handled_by_id, r.handled_at = "brought_in", actor.id, utcnow()
    if not db.session.scalar(select(MeetingPerson.id).where(MeetingPerson.meeting_id == meeting.id,
                                                            MeetingPerson.user_id == r.user_id,
                                                            MeetingPerson.role == "speaker")):
        db.session.add(MeetingPerson(meeting_id=meeting.id, user_id=r.user_id, role="speaker"))
    audit.record("meeting.viewer_brought_in", actor=actor, target_type="user", target_id=r.user_id,
                 room_id=meeting.room_id, detail={"meeting_id": meeting.id})
    events.queue(db.session, "meeting.brought_in", {
        "meeting_id": meeting.id, "url": url_for("meetings.meeting", meeting_id=meeting.id),
        "message": "The chair has invited you to speak. Join the meeting to use your microphone and camera."},
        None, meeting_id=meeting.id, to_user=r.user_id)
    _tell_queue(meeting)
    db.session.commit()


def dismiss(actor: User, meeting_id: object, request_id: object) -> None:
    meeting, r = _request_in_write(actor, meeting_id, request_id)
    r.status, r.handled_by_id, r.handled_at = "dismissed", actor.id, utcnow()
    _tell_queue(meeting)
    db.session.commit()


# -- the viewer ---------------------------------------------------------------------------------------

def viewer_token(actor: User, meeting_id: object) -> dict[str, Any]:
    """What the viewer page needs to receive the broadcast: the worker's URL and a short-lived token of
    role "viewer". The grant is recorded so that losing access to the room reaches this session too."""
    meeting = get_watchable(actor, meeting_id)
    services.check_media()
    db.begin_write()
    services.record_grant(meeting.id, actor.id)
    db.session.commit()
    ttl = tokens.DEFAULT_TTL
    shown = actor.name if not pseudonyms.applies(meeting) else "Viewer"
    token = tokens.mint(current_app.config["SECRET_KEY"], meeting=meeting.id, account=actor.id, name=shown,
                        role="viewer", ttl=ttl)
    return {"url": meeting.media_url, "token": token, "role": "viewer", "expires_in": ttl}


def ask(actor: User, meeting_id: object, *, body: object) -> dict[str, Any]:
    """A viewer's question: into the meeting's Q&A session when the viewer may ask there, otherwise
    into the chairs' queue. Says where it went."""
    meeting = get_watchable(actor, meeting_id)
    text = validate.text(body, "body", max_len=MAX_QUESTION, multiline=True, label="Question")
    session = qa_services.session_for_meeting(actor, meeting.id)
    if session is not None and policy.can_ask_question(actor, session):
        q = qa_services.ask(actor, session.id, body=text)
        return {"to": "qa", "question_id": q.id, "status": q.status}
    _add_request(actor, meeting, "question", text)
    return {"to": "chair", "status": "open"}


def ask_to_speak(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = get_watchable(actor, meeting_id)
    _add_request(actor, meeting, "speak", None)
    return {"to": "chair", "status": "open"}


def _add_request(actor: User, meeting, kind: str, body: str | None) -> None:
    db.begin_write()
    mine = list(db.session.scalars(select(ViewerRequest).where(
        ViewerRequest.meeting_id == meeting.id, ViewerRequest.user_id == actor.id, ViewerRequest.status == "open")))
    if kind == "speak" and any(r.kind == "speak" for r in mine):
        db.session.rollback()
        raise Conflict("You have already asked to speak: the chair has your request.")
    if len(mine) >= OPEN_LIMIT:
        db.session.rollback()
        raise Conflict(f"You have {OPEN_LIMIT} questions waiting: please wait for the chair to take them.")
    db.session.add(ViewerRequest(meeting_id=meeting.id, user_id=actor.id, kind=kind, body=body,
                                 status="open", created_at=utcnow()))
    db.session.flush()
    _tell_queue(meeting)
    db.session.commit()
