"""Socket.IO events of hybrid meetings, on the same connection, authentication and
checks as the live rooms (rooms/live/handlers.py: `handler` re-reads the account,
rate-limits and validates each event; the services ask rooms.policy).

client -> server (each answered through the ack, `{"ok": true, ...}` or
`{"ok": false, "error": {...}}`); every one carries `meeting_id`:
  meeting_join {device?, head_count?} -> the whole state and `me`; the
      connection then receives `meeting.state` of this meeting. Following the
      meeting is not attending it: attendance begins when the page joins the
      call (its media token, services.join; rooms/meetings/attendance.py)
  meeting_state -> the state again; meeting_here {in_call?} (every 25 s: the page
      is open, and whether its call is joined); meeting_call_leave (the Leave
      button: the call is left, the page stays); meeting_leave (the page closes)
  meeting_slide {deck_id, page}; meeting_presenter {user_id|participant|null}
  meeting_hand {up: bool}; meeting_hand_add {name}; meeting_hand_lower {hand_id}
  meeting_floor {hand_id}; meeting_mute_all; meeting_mute {user_id | participant} (one
      person: their page gets `meeting.mute_you` and mutes itself); meeting_remove {user_id | participant}
  meeting_lock {locked}; meeting_attend {user_id | participant | name, present}
  meeting_head_count {head_count}; meeting_chat {body}; meeting_action {text, owner}
  km_draft {text}; km_edit {key_message_id, text}; km_open {key_message_id, hide_tally?}
  km_vote {key_message_id, choice, comment} -> {my_vote, tally}
  km_room {key_message_id, agree, disagree, abstain}
  km_close {key_message_id, outcome} (outcome required: no default);
  meeting_minutes (post or update the minutes thread)

server -> client: `meeting.state` (the whole state, with `version`), `meeting.chat`,
`meeting.mute` and `meeting.ended` {reason, message, minutes_thread_id} (the chair ended or
cancelled it: the page closes its call for good) to the meeting; `meeting.floor`,
`meeting.mute_you` {message}, `meeting.removed` and `meeting.tally` to one account. A vote opened with `hide_tally` has
`tally: null` in `meeting.state` until it closes; who may see it (rooms.policy.sees_tally: the
chairs, and whoever has voted on it) has it in `me.tallies` and in the key message of their own
answers (meeting_join, meeting_state), in the km_vote ack, and in `meeting.tally`
{version, tallies: {id: tally}} sent to them with each new state.

A meeting of a non-attributed room has two channels: `meeting-<id>` gets the state
and chat with "Participant n" (rooms/meetings/pseudonyms.py), and
`meeting-<id>-names` gets them with names; `meeting_join` puts a connection in the
one its account may follow (rooms.policy.sees_names, the reveal audited).
Anything that takes someone out of a meeting's live feed leaves both
(`meeting_keys`).

Losing access (removed from the room, the room made private, the account ended, or the
chair's "remove" for one meeting) takes the connection out of the meeting's channel through
rooms/revocation.py, which asks `_live_meetings` here, before the commit, which meetings of a
room are not over and where their media is.
"""
from __future__ import annotations

from typing import Any

from flask import has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from collab import events
from collab.extensions import db, socketio
from rooms import revocation
from rooms.meetings import attendance, decks, hands, minutes, state, votes  # noqa: F401  (decks: imported for the app)
from rooms.live.connections import NS, Conn, meeting_key, meeting_keys, names_key, user_key
from rooms.live.handlers import _int_field, handler
from rooms.meetings.models import Attendance, MediaGrant, Meeting

MEETING_LIMIT = "120 per 10 seconds"
HERE_LIMIT = "10 per minute"


# -- after the commit: send ----------------------------------------------------------------

@events.listen
def _on_event(ev: events.Event) -> None:
    mid = ev.meta.get("meeting_id")
    if mid is None or not ev.name.startswith("meeting.") or not socketio.server or not has_app_context():
        return
    to_user = ev.meta.get("to_user")
    if to_user:  # meeting.removed also takes them out of the channel: rooms/revocation.py
        socketio.emit(ev.name, ev.payload, to=user_key(to_user), namespace=NS)
        return
    socketio.emit(ev.name, ev.payload, to=names_key(mid) if ev.meta.get("names") else meeting_key(mid),
                  namespace=NS)


# -- losing access: which meetings (asked before a commit, rooms/revocation.py) --------------------

@revocation.meeting_finder
def _live_meetings(session: Session, *, room_id: int | None = None, user_ids: set[int] | None = None,
                   meeting_id: int | None = None) -> list[revocation.LiveMeeting]:
    """Meetings not over: of a room, attended by any of `user_ids`, or one; with the people who may be in
    them (attendance, and everyone given a media token)."""
    q = select(Meeting.id, Meeting.room_id, Meeting.media_url).where(Meeting.ended_at.is_(None))
    if room_id is not None:
        q = q.where(Meeting.room_id == room_id)
    if meeting_id is not None:
        q = q.where(Meeting.id == meeting_id)
    if user_ids is not None:
        q = q.where(Meeting.id.in_(select(Attendance.meeting_id).where(Attendance.user_id.in_(user_ids))
                                   .union(select(MediaGrant.meeting_id).where(MediaGrant.user_id.in_(user_ids)))))
    rows = session.execute(q).all()
    if not rows:
        return []
    people: dict[int, set[int]] = {}
    ids = [r.id for r in rows]
    for mid, uid in session.execute(
            select(Attendance.meeting_id, Attendance.user_id)
            .where(Attendance.meeting_id.in_(ids), Attendance.user_id.is_not(None))
            .union(select(MediaGrant.meeting_id, MediaGrant.user_id).where(MediaGrant.meeting_id.in_(ids)))):
        people.setdefault(mid, set()).add(uid)
    return [revocation.LiveMeeting(id=r.id, room_id=r.room_id, media_url=r.media_url or "",
                                   attendees=frozenset(people.get(r.id, ()))) for r in rows]


# -- events ----------------------------------------------------------------------------------

def _mid(data: dict) -> int:
    return _int_field(data, "meeting_id")


@handler("meeting_join", rate=MEETING_LIMIT)
def on_join(conn: Conn, user, data: dict) -> dict:
    snap = attendance.join(user, _mid(data), device=data.get("device") is True, head_count=data.get("head_count"))
    mid = snap["meeting_id"]
    names = snap["non_attributed"] and snap["me"]["sees_names"]
    conn.meetings[mid] = db.session.scalar(select(Meeting.room_id).where(Meeting.id == mid))  # losing the room
    socketio.server.leave_room(conn.sid, meeting_key(mid) if names else names_key(mid), namespace=NS)
    socketio.server.enter_room(conn.sid, names_key(mid) if names else meeting_key(mid), namespace=NS)
    return {"state": snap}


@handler("meeting_state", rate=MEETING_LIMIT)
def on_state(conn: Conn, user, data: dict) -> dict:
    return {"state": state.get_state(user, _mid(data))}


@handler("meeting_here", rate=HERE_LIMIT)
def on_here(conn: Conn, user, data: dict) -> dict:
    attendance.here(user, _mid(data), in_call=data.get("in_call"))
    return {}


@handler("meeting_call_leave", rate=MEETING_LIMIT)
def on_call_leave(conn: Conn, user, data: dict) -> dict:
    attendance.call_left(user, _mid(data))
    return {}


@handler("meeting_leave", rate=MEETING_LIMIT)
def on_leave(conn: Conn, user, data: dict) -> dict:
    mid = _mid(data)
    attendance.leave(user, mid)
    conn.meetings.pop(mid, None)
    for key in meeting_keys(mid):
        socketio.server.leave_room(conn.sid, key, namespace=NS)
    return {}


def _simple(event: str, fn, *fields: str):
    """An event that calls one service with the named fields and answers with its version."""
    def run(conn: Conn, user, data: dict) -> dict[str, Any]:
        kwargs = {f: data.get(f) for f in fields}
        result = fn(user, _mid(data), **kwargs)
        if isinstance(result, dict) and "version" in result:
            out = {"version": result["version"]}
            for extra in ("key_message_id", "my_vote"):
                if extra in result:
                    out[extra] = result[extra]
            return out
        return {"result": result} if result is not None else {}
    run.__name__ = f"on_{event}"
    handler(event, rate=MEETING_LIMIT)(run)


def _km(event: str, fn, *fields: str):
    def run(conn: Conn, user, data: dict) -> dict[str, Any]:
        result = fn(user, data.get("key_message_id"), **{f: data.get(f) for f in fields})
        out = {"version": result["version"]}
        for extra in ("my_vote", "tally"):
            if extra in result:
                out[extra] = result[extra]
        return out
    run.__name__ = f"on_{event}"
    handler(event, rate=MEETING_LIMIT)(run)


@handler("meeting_hand", rate=MEETING_LIMIT)
def on_hand(conn: Conn, user, data: dict) -> dict:
    fn = hands.raise_hand if data.get("up", True) is not False else hands.lower_hand
    return {"version": fn(user, _mid(data))["version"]}


@handler("meeting_mute_all", rate=MEETING_LIMIT)
def on_mute_all(conn: Conn, user, data: dict) -> dict:
    attendance.mute_all(user, _mid(data))
    return {}


@handler("meeting_minutes", rate=MEETING_LIMIT)
def on_minutes(conn: Conn, user, data: dict) -> dict:
    thread = minutes.post_minutes(user, _mid(data))
    return {"thread_id": thread.id}


_simple("meeting_slide", state.set_slide, "deck_id", "page")
_simple("meeting_presenter", state.set_presenter, "user_id", "participant")
_simple("meeting_hand_add", hands.add_room_hand, "name")
_simple("meeting_hand_lower", hands.lower_hand, "hand_id")
_simple("meeting_floor", hands.give_floor, "hand_id")
_simple("meeting_mute", hands.mute_person, "user_id", "participant")
_simple("meeting_remove", attendance.remove_participant, "user_id", "participant")
_simple("meeting_lock", attendance.set_locked, "locked")
_simple("meeting_attend", attendance.mark_in_room, "user_id", "name", "present", "participant")
_simple("meeting_head_count", attendance.set_head_count, "head_count")
_simple("meeting_chat", state.chat, "body")
_simple("meeting_action", state.add_action, "text", "owner")
_simple("km_draft", votes.draft, "text")
_km("km_edit", votes.edit, "text")
_km("km_open", votes.open_vote, "hide_tally")
_km("km_vote", votes.cast, "choice", "comment")
_km("km_room", votes.room_counts, "agree", "disagree", "abstain")
_km("km_close", votes.close, "outcome")

EVENTS = ("meeting_join", "meeting_state", "meeting_here", "meeting_call_leave", "meeting_leave", "meeting_slide",
          "meeting_presenter",
          "meeting_hand", "meeting_hand_add", "meeting_hand_lower", "meeting_floor", "meeting_mute_all",
          "meeting_mute", "meeting_remove", "meeting_lock", "meeting_attend", "meeting_head_count", "meeting_chat",
          "meeting_action", "meeting_minutes", "km_draft", "km_edit", "km_open", "km_vote", "km_room", "km_close")
