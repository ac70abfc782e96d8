"""Losing access: the one path from the commit that takes a right away to every live channel.

Every way of losing the right to read a room ends here, after the commit:

- removed from a room (`member.removed`, when the person cannot read the room otherwise);
- a room's settings changed (`room.updated`: made private, archived, visibility): everyone
  connected to it is asked again;
- the account lost everything (`account.changed`: deactivated or suspended, signed out
  everywhere, one session ended, two-step sign-in required and not set up, a token revoked);
- removed from one meeting by its chair (`meeting.removed`): that meeting only.

Before the commit, while the database can still be asked, `_before_commit` gathers what the
after-commit step needs: may the person still read the room, which of the room's meetings are
not over (and on which media worker), and which attendees a settings change leaves outside.
After the commit no database is asked (the session is closed there): `revoke_room`,
`revoke_meeting`, `end_sessions` and `recheck_room` send a note (collab/live_queue.py) that
every server process acts on with ITS OWN connections (`LiveState.conns`), and ask the media
workers, in the background, to drop the person's audio and video at once
(rooms/meetings/media_control.py).

Each process finds a person's connections in its own memory, never in Redis: presence kept in
Redis may have been lost (a restarted Redis) and names people in non-attributed rooms only by
pseudonym. Redis only carries the note between processes.

Meetings belong to rooms, not the other way round: the meetings package tells this module
which meetings are live through `meeting_finder`.
"""
from __future__ import annotations

import functools

import logging
from contextlib import nullcontext
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from auth.models import User
from collab import events, live_queue
from collab.extensions import db, socketio
from collab.tasks import spawn
from rooms import policy
from rooms.live.connections import NS, Conn, meeting_keys, state
from rooms.live.presence import forget_room
from rooms.meetings import media_control
from rooms.models import Room

log = logging.getLogger(__name__)

ROOM_MESSAGES = {
    "removed": "You were removed from this room: you no longer have access to it.",
    "room_changed": "This room's settings changed: you no longer have access to it.",
    "archived": "This room was archived, so its meetings are closed.",
}
MEETING_MESSAGES = {
    "meeting_removed": "You were removed from this meeting by the chair.",
}
SESSION_MESSAGES = {
    "deactivated": "Your account has been deactivated.",
    "signed_out": "You have been signed out. Sign in again to continue.",
    "session_ended": "This session was ended. Sign in again to continue.",
    "mfa_required": "Two-step sign-in is now required for your account: reload to set it up.",
    "token_revoked": "The access token of this connection was revoked.",
    "account_changed": "An administrator changed your account's kind, organisation or role: sign in again.",
}
# Reasons that take every room from the account (its media sessions are dropped too); the others end
# some connections only (another browser session, one token), and the account keeps its rooms.
ACCOUNT_WIDE = ("deactivated", "mfa_required", "account_changed")


# -- what the meetings package tells us ----------------------------------------------------------

@dataclass(frozen=True)
class LiveMeeting:
    """A meeting that is not over: where its media is, and who has attended it."""

    id: int
    room_id: int
    media_url: str
    attendees: frozenset[int]


MeetingFinder = Callable[..., list[LiveMeeting]]
_finders: list[MeetingFinder] = []


def meeting_finder(fn: MeetingFinder) -> MeetingFinder:
    """Register `fn(session, *, room_id=None, user_ids=None, meeting_id=None)`: the live meetings of a
    room, those any of `user_ids` attended, or one meeting. Called before commits only."""
    if fn not in _finders:
        _finders.append(fn)
    return fn


def _live_meetings(session: Session, **query: Any) -> list[LiveMeeting]:
    return [m for fn in _finders for m in fn(session, **query)]


# -- before the commit: gather ---------------------------------------------------------------

@sa_event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    lost_accounts = []
    for ev in events.pending(session):
        if ev.name == "member.removed" and ev.room_id is not None and "still_reads" not in ev.meta:
            user = session.get(User, ev.payload["user"]["id"])
            room = session.get(Room, ev.room_id)
            ev.meta["still_reads"] = bool(user and room and policy.can_read_room(user, room))
            if not ev.meta["still_reads"]:
                ev.meta["meetings"] = [(m.id, m.media_url) for m in _live_meetings(session, room_id=ev.room_id)]
        elif ev.name == "room.updated" and ev.room_id is not None and "lost_media" not in ev.meta:
            room = session.get(Room, ev.room_id)
            lost = []
            live = _live_meetings(session, room_id=ev.room_id)
            if room is not None and room.archived:   # archived: read-only, its meetings' calls are over
                ev.meta["closed_media"] = [(m.id, m.media_url) for m in live]
            for m in live:
                for uid in sorted(m.attendees):
                    user = session.get(User, uid)
                    if room is None or user is None or not policy.can_read_room(user, room):
                        lost.append((uid, m.id, m.media_url))
            ev.meta["lost_media"] = lost
        elif (ev.name == "account.changed" and ev.payload.get("reason") in ACCOUNT_WIDE
              and "meetings" not in ev.meta):
            lost_accounts.append(ev)
        elif ev.name == "meeting.removed" and ev.meta.get("to_user") and "media_url" not in ev.meta:
            found = _live_meetings(session, meeting_id=ev.meta["meeting_id"])
            ev.meta["media_url"] = found[0].media_url if found else ""
            ev.meta["room_id"] = found[0].room_id if found else None
    if lost_accounts:  # one query for all (a site policy change may end many accounts' access at once)
        meetings = _live_meetings(session, user_ids={ev.payload["user_id"] for ev in lost_accounts})
        for ev in lost_accounts:
            ev.meta["meetings"] = [(m.id, m.media_url) for m in meetings if ev.payload["user_id"] in m.attendees]


# -- after the commit: the one path (no database from here on) ------------------------------------

@events.listen
def _after_commit(ev: events.Event) -> None:
    if not has_app_context() or not socketio.server:
        return
    app = current_app._get_current_object()
    if ev.name == "member.removed" and ev.room_id is not None and not ev.meta.get("still_reads", False):
        revoke_room(app, ev.payload["user"]["id"], ev.room_id, reason="removed", meetings=ev.meta.get("meetings", ()))
    elif ev.name == "room.updated" and ev.room_id is not None:
        recheck_room(app, ev.room_id, lost_media=ev.meta.get("lost_media", ()))
        for mid, url in ev.meta.get("closed_media", ()):
            end_media(app, mid, url, reason="archived", message=ROOM_MESSAGES["archived"])
    elif ev.name == "account.changed":
        p = ev.payload
        end_sessions(app, p["user_id"], reason=p["reason"], stoken=p.get("stoken"), token_id=p.get("token_id"),
                     meetings=ev.meta.get("meetings", ()))
    elif ev.name == "meeting.removed" and ev.meta.get("to_user"):
        revoke_meeting(app, ev.meta["to_user"], ev.meta["meeting_id"], reason="meeting_removed",
                       media_url=ev.meta.get("media_url", ""))


def revoke_room(app: Flask, user_id: int, room_id: int, *, reason: str,
                meetings: Iterable[tuple[int, str]] = ()) -> None:
    """`user_id` may no longer read room `room_id`: on every process, their connections leave the room,
    its threads and its meetings' channels and are told `access.revoked`; the media workers of the
    room's live `meetings` ((id, media_url), gathered before the commit) drop them."""
    meetings = list(meetings)
    live_queue.send(app, {"op": "room", "user": user_id, "room": room_id, "reason": reason,
                          "meetings": [mid for mid, _url in meetings]})
    _drop_media(app, user_id, meetings, reason, ROOM_MESSAGES.get(reason, ROOM_MESSAGES["room_changed"]))


def revoke_meeting(app: Flask, user_id: int, meeting_id: int, *, reason: str, media_url: str = "") -> None:
    """`user_id` may no longer take part in one meeting: its channel, and its media."""
    live_queue.send(app, {"op": "meeting", "user": user_id, "meeting": meeting_id, "reason": reason})
    _drop_media(app, user_id, [(meeting_id, media_url)], "removed", MEETING_MESSAGES.get(reason, reason))


def end_sessions(app: Flask, user_id: int, *, reason: str, stoken: str | None = None, token_id: int | None = None,
                 meetings: Iterable[tuple[int, str]] = ()) -> None:
    """Close an account's connections on every process: all of them (deactivated, mfa_required), the
    cookie ones of every session but `stoken` (signed_out), those of session `stoken` (session_ended),
    or those opened with one token (token_revoked). Account-wide reasons drop its media too."""
    live_queue.send(app, {"op": "session", "user": user_id, "reason": reason, "stoken": stoken,
                          "token_id": token_id})
    if reason in ACCOUNT_WIDE:
        _drop_media(app, user_id, list(meetings), reason, SESSION_MESSAGES[reason])


def recheck_room(app: Flask, room_id: int, *, lost_media: Iterable[tuple[int, int, str]] = ()) -> None:
    """A room's settings changed: every process asks again, in the background, whether each of its
    connections following the room may still read it; attendees who may not lose the media too."""
    live_queue.send(app, {"op": "recheck", "room": room_id})
    for uid, mid, url in lost_media:
        _drop_media(app, uid, [(mid, url)], "room_changed", ROOM_MESSAGES["room_changed"])


def _drop_media(app: Flask, user_id: int, meetings: list[tuple[int, str]], reason: str, message: str) -> None:
    drop_media(app, user_id, meetings, reason=reason, message=message)


def drop_media(app: Flask, user_id: int, meetings: Iterable[tuple[int, str]], *, reason: str, message: str) -> None:
    """In the background: close `user_id`'s media sessions in each (meeting id, media_url) and void
    their older tokens. Every configured worker is told, not only the meeting's own: a token names a
    meeting, not a worker. Needs no database (call it after the commit)."""
    secret, urls = app.config["SECRET_KEY"], app.config["MEDIA_URLS"]
    for mid, url in meetings:
        for worker in media_control.workers(url, urls):
            spawn(app, functools.partial(media_control.drop, worker, secret, meeting_id=mid, account_id=user_id,
                                         reason=reason, message=message))


def end_media(app: Flask, meeting_id: int, url: str | None, *, reason: str, message: str) -> None:
    """In the background: close every media session of a meeting and void every token minted for it."""
    secret = app.config["SECRET_KEY"]
    for worker in media_control.workers(url, app.config["MEDIA_URLS"]):
        spawn(app, functools.partial(media_control.end, worker, secret, meeting_id=meeting_id, reason=reason,
                                     message=message))


def unwatch_media(app: Flask, meeting_id: int, url: str | None, *, message: str) -> None:
    """In the background: a meeting's broadcast stopped; its viewers' media sessions close and their
    tokens are void (its participants stay)."""
    secret = app.config["SECRET_KEY"]
    for worker in media_control.workers(url, app.config["MEDIA_URLS"]):
        spawn(app, functools.partial(media_control.unwatch, worker, secret, meeting_id=meeting_id, message=message))


# -- every process: act on its own connections ----------------------------------------------------

@live_queue.on_note
def _on_note(app: Flask, note: dict[str, Any]) -> None:
    op = note.get("op")
    st = state(app)
    if op == "recheck":
        with st.lock:
            follows = any(_follows(c, note["room"]) for c in st.conns.values())
        if follows:
            spawn(app, _recheck_local, app, note["room"])
        return
    with st.lock:
        mine = [c for c in st.conns.values() if c.user_id == note.get("user")]
    if not mine:
        return
    # A note of this process arrives inside the committing request's context: pushing another would end its
    # database session mid-commit. Notes heard from other processes arrive with none.
    with nullcontext() if has_app_context() else app.app_context():
        for conn in mine:
            if op == "room":
                cut_room(conn, note["room"], reason=note.get("reason", "removed"), meetings=note.get("meetings", ()))
            elif op == "meeting":
                cut_meeting(conn, note["meeting"])
            elif op == "session" and _ends(conn, note):
                close(conn, note["reason"])


def _follows(conn: Conn, room_id: int) -> bool:
    return room_id in conn.rooms or room_id in conn.meetings.values()


def _ends(conn: Conn, note: dict[str, Any]) -> bool:
    """Does a session note end this connection?"""
    reason = note["reason"]
    if reason == "signed_out":
        return conn.via == "cookie" and conn.stoken != note.get("stoken")
    if reason == "session_ended":
        return conn.via == "cookie" and conn.stoken == note.get("stoken")
    if reason == "token_revoked":
        return conn.via == "token" and conn.token_id == note.get("token_id")
    return True   # deactivated, mfa_required, and anything unknown: all of them


def cut_room(conn: Conn, room_id: int, *, reason: str, meetings: Iterable[int] = ()) -> None:
    """Take one connection of this process out of a room, its threads and its meetings, and say so."""
    forget_room(conn, room_id, meetings=True, also=meetings)
    socketio.server.emit("access.revoked", {"room_id": room_id, "reason": reason,
                                            "message": ROOM_MESSAGES.get(reason, ROOM_MESSAGES["room_changed"])},
                         to=conn.sid, namespace=NS, ignore_queue=True)


def cut_meeting(conn: Conn, meeting_id: int) -> None:
    for key in meeting_keys(meeting_id):
        socketio.server.leave_room(conn.sid, key, namespace=NS)
    conn.meetings.pop(meeting_id, None)


def close(conn: Conn, reason: str) -> None:
    server = socketio.server
    server.emit("session.ended", {"reason": reason, "message": SESSION_MESSAGES.get(reason, reason)},
                to=conn.sid, namespace=NS, ignore_queue=True)
    server.disconnect(conn.sid, namespace=NS, ignore_queue=True)


def _recheck_local(app: Flask, room_id: int) -> None:
    """In a background task (its own session): this process's connections following the room, asked again."""
    st = state(app)
    with st.lock:
        conns = [c for c in st.conns.values() if _follows(c, room_id)]
    room = db.session.get(Room, room_id)
    allowed: dict[int, bool] = {}
    for conn in conns:
        if conn.user_id not in allowed:
            user = db.session.get(User, conn.user_id)
            allowed[conn.user_id] = bool(room and user and policy.can_read_room(user, room))
        if not allowed[conn.user_id]:
            cut_room(conn, room_id, reason="room_changed")
