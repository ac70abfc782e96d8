"""Meeting operations. A meeting belongs to a room and inherits its rules:

- whoever may post in the room may start a meeting;
- whoever may read the room may join; room moderators join as hosts, those who
  may post as members, read-only observers as observers (they see and hear but
  do not send);
- the web app mints the short-lived token the browser presents to the media
  worker, and picks that worker when the meeting starts;
- when a meeting ends or someone loses their place in it, the web app tells the
  workers after the commit (`revoke_media`): their sessions close at once and
  the tokens minted before are refused (media/control.py).
"""
from __future__ import annotations

import json
import logging
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from auth.models import User
from collab import logs, metrics, validate
from collab.db import utcnow
from collab.errors import Forbidden, Unavailable
from collab.extensions import db
from media import supervisor, tokens
from rooms import policy, revocation
from rooms import services as room_services
from rooms.meetings import access, attendance, media_control, pseudonyms, recordings, state
from rooms.meetings.models import MediaGrant, Meeting, MeetingPlan
from rooms.models import Room
from rooms.serialize import iso

log = logging.getLogger(__name__)

OPEN_HOURS = 12  # a meeting started less than this long ago (and not ended) is listed as in progress
STATUS_TIMEOUT = 0.5
ENDED_MESSAGE = "The chair ended the meeting."
CANCELLED_MESSAGE = "The chair cancelled the meeting."
REMOVED_MESSAGE = revocation.MEETING_MESSAGES["meeting_removed"]


def meeting_dict(m: Meeting, names: bool = False) -> dict[str, Any]:
    """The meeting as JSON. `names`: the reader sees who is who (pseudonyms.names_for); without
    it, a meeting of a non-attributed room shows its organiser as "Participant n" (room events,
    which go to every reader, never name anyone there)."""
    return {"id": m.id, "room_id": m.room_id, "title": m.title,
            "created_by": pseudonyms.person(m, m.created_by, names),
            "created_at": iso(m.created_at), "ended_at": iso(m.ended_at)}


def meeting_view(actor: User | None, m: Meeting, what: str = "api") -> dict[str, Any]:
    """meeting_dict as `actor` may see it (an audited reveal for a moderator of a non-attributed room)."""
    return meeting_dict(m, names=pseudonyms.names_for(actor, m, what))


# -- reading ---------------------------------------------------------------------

def open_meetings(actor: User | None, room_id: int) -> list[Meeting]:
    """Meetings of a room in progress, newest first (empty if the room is not visible)."""
    room = db.session.get(Room, room_id)
    if room is None or not policy.can_read_room(actor, room):
        return []
    since = utcnow() - timedelta(hours=OPEN_HOURS)
    start = func.coalesce(MeetingPlan.starts_at, Meeting.created_at)
    return list(db.session.scalars(
        select(Meeting).outerjoin(MeetingPlan, MeetingPlan.meeting_id == Meeting.id)
        .where(Meeting.room_id == room_id, Meeting.ended_at.is_(None), start >= since,
               start <= utcnow() + timedelta(minutes=30))
        .order_by(Meeting.created_at.desc()).limit(5)))


# -- writing ---------------------------------------------------------------------

def media_unavailable() -> str | None:
    """Why meetings cannot be joined now, for people, or None: the embedded media worker's supervisor
    (media/supervisor.py, another process) reports a crash loop or a failed self-test. A worker being
    restarted after a single crash is not reported: pages in a meeting rejoin within seconds."""
    return supervisor.unavailable(current_app.config["DATA_DIR"])


def check_media() -> None:
    why = media_unavailable()
    if why:
        raise Unavailable(why)


def start_meeting(actor: User, room_id: object, *, title: object = None) -> Meeting:
    room = room_services.get_room(actor, room_id)
    if not policy.can_post(actor, room):
        raise Forbidden("Only people who may post in this room can start a meeting in it.")
    check_media()   # no meeting, and no token, for a worker that is not there
    title_v = validate.text(title, "title", max_len=200, required=False) or f"Meeting in {room.name}"[:200]
    url = pick_worker()
    db.begin_write()
    meeting = Meeting(room_id=room.id, title=title_v, created_by_id=actor.id, media_url=url)
    db.session.add(meeting)
    db.session.flush()
    pseudonyms.assign(meeting, [actor.id])
    room_services.record_event(room.id, "meeting.started", {"meeting": meeting_dict(meeting)})
    db.session.commit()
    metrics.MEETINGS_STARTED.inc()
    logs.event("meeting.started", meeting_id=meeting.id, room_id=room.id, user_id=actor.id)
    return meeting


def end_meeting(actor: User, meeting_id: object, *, cancel: bool = False, at: datetime | None = None) -> Meeting:
    """The one way a meeting ends, whichever route asks (`/meetings/<id>/end`, `/finish` before the
    minutes, `/cancel` and their API twins): who may is access.require_end. `cancel`: a scheduled
    meeting called off (marked cancelled, its invitation's sequence bumped; already over: 403).
    The live state, if anyone opened it, says it ended; everyone on the meeting's page is sent
    `meeting.ended`; the media workers close the call after the commit. The attendance register
    closes (attendance.close_at_end). `at`: the time (now)."""
    meeting = access.require_end(actor, meeting_id)
    if meeting.ended:
        if cancel:
            raise Forbidden("This meeting has already ended or was cancelled.")
        return meeting
    db.begin_write()
    now = at or utcnow()
    attendance.close_at_end(meeting, now)
    recording_id = recordings.close_at_end(meeting, now)
    meeting.ended_at = now
    if cancel:
        plan = state.ensure_plan(meeting)
        plan.cancelled_at = now
        plan.ics_sequence += 1
    room_services.record_event(meeting.room_id, "meeting.ended", {"meeting": meeting_dict(meeting)})
    plan = access.plan_for(meeting)
    if plan is not None:   # without a plan nobody has opened its live state
        state.publish(meeting)
    # Everyone on the meeting's page: the call is over for good (the page closes it and lets go of
    # the camera and microphone, whether or not the media worker's own "bye" reaches it).
    state.notify_all(meeting, "meeting.ended", {
        "reason": "cancelled" if cancel else "ended", "message": CANCELLED_MESSAGE if cancel else ENDED_MESSAGE,
        "minutes_thread_id": plan.minutes_thread_id if plan is not None else None})
    db.session.commit()
    metrics.MEETINGS_ENDED.inc()
    logs.event("meeting.ended", meeting_id=meeting.id, room_id=meeting.room_id, user_id=actor.id,
               cancelled=bool(cancel))
    revoke_media(meeting, reason="ended", message=CANCELLED_MESSAGE if cancel else ENDED_MESSAGE)
    recordings.after_end(recording_id)
    return meeting


def revoke_media(meeting: Meeting, *, reason: str, message: str, account_id: int | None = None) -> None:
    """After the commit that ended `meeting` (or took `account_id`'s place in it): the media workers
    close those sessions now (the page shows `message`) and refuse the tokens minted so far, through
    the one revocation path (rooms/revocation.py). Needs no database: call it after the commit."""
    app = current_app._get_current_object()
    if account_id is None:
        revocation.end_media(app, meeting.id, meeting.media_url, reason=reason, message=message)
    else:
        revocation.drop_media(app, account_id, [(meeting.id, meeting.media_url)], reason=reason, message=message)


def join(actor: User, meeting_id: object, *, at: datetime | None = None) -> dict[str, Any]:
    """What a browser needs to join: the worker's WebSocket URL and a fresh signed token. Joining the
    call is attending (attendance.call_joined; a reconnect that asks again continues the same span).
    `at`: the time (now)."""
    meeting = access.get_meeting(actor, meeting_id)
    access.check_may_join(actor, meeting)
    check_media()
    urls = current_app.config["MEDIA_URLS"]
    if meeting.media_url not in urls:  # the workers were reconfigured since the meeting started
        url = pick_worker()  # asks the workers over HTTP: never while holding the write lock
        db.begin_write()
        meeting.media_url = url
        db.session.commit()
    db.begin_write()
    record_grant(meeting.id, actor.id)   # losing access later must find this media session too
    if pseudonyms.applies(meeting) and pseudonyms.number(meeting, actor.id) is None:
        pseudonyms.assign(meeting, [actor.id])   # the name on this person's video tile is their number
    attendance.call_joined(actor, meeting, at=at)
    db.session.commit()
    role = access.media_role(actor, meeting)
    ttl = tokens.DEFAULT_TTL
    shown = actor.name if not pseudonyms.applies(meeting) else pseudonyms.label(meeting, actor.id)
    token = tokens.mint(current_app.config["SECRET_KEY"], meeting=meeting.id, account=actor.id, name=shown,
                        role=role, ttl=ttl)
    return {"meeting": meeting_dict(meeting), "url": meeting.media_url, "token": token, "role": role,
            "expires_in": ttl}


def record_grant(meeting_id: int, user_id: int) -> None:
    grant = db.session.scalar(select(MediaGrant).where(MediaGrant.meeting_id == meeting_id,
                                                       MediaGrant.user_id == user_id))
    if grant is None:
        db.session.add(MediaGrant(meeting_id=meeting_id, user_id=user_id, minted_at=utcnow()))
    else:
        grant.minted_at = utcnow()


# -- choosing a worker --------------------------------------------------------------

def status_url(ws_url: str) -> str:
    """The worker's `/status`, signed with the app's key (the worker answers nobody else)."""
    return media_control.status_url(ws_url, current_app.config["SECRET_KEY"])


def worker_load(ws_url: str) -> int | None:
    """Participants on a worker now, or None if it does not answer."""
    try:
        with urllib.request.urlopen(status_url(ws_url), timeout=STATUS_TIMEOUT) as resp:
            return int(json.loads(resp.read())["participants"])
    except Exception:  # noqa: BLE001 - any failure means "not a candidate now"
        return None


def pick_worker() -> str:
    """The configured worker with the fewest participants now (ties: fewest open meetings)."""
    urls: list[str] = current_app.config["MEDIA_URLS"]
    if len(urls) == 1:
        return urls[0]
    since = utcnow() - timedelta(hours=OPEN_HOURS)
    counts = dict(db.session.execute(
        select(Meeting.media_url, func.count()).where(Meeting.ended_at.is_(None), Meeting.created_at >= since)
        .group_by(Meeting.media_url)).all())
    loads = {u: worker_load(u) for u in urls}
    answering = [u for u in urls if loads[u] is not None] or urls
    return min(answering, key=lambda u: (loads[u] or 0, counts.get(u, 0), urls.index(u)))
