"""Who is who in a meeting of a non-attributed room.

The scheme is per meeting. Everyone a meeting records (its organiser, chairs and
invitees when it is scheduled, then whoever fetches a media token, joins, raises a
hand, chats, votes, presents, or is ticked or removed by the chair) gets a number
the first time a write records them in that meeting, and shows as
"Participant <n>" in everything about the meeting: the announcement and notices,
the page, the live state and chat, the API, the minutes (thread and PDF) and the
name on their video tile. A number is stable for the meeting's life and never
reused; it belongs to the meeting, so "Participant 2" of a meeting says nothing
about "Participant 2" of a thread (threads number their own way,
rooms/pseudonyms.py) or of another meeting. People the chair adds by name (in the
room, without an account) show as "Someone in the room": the chair typed a name,
the others need not read it.

Who sees names is rooms.policy.sees_names (the room's moderators and managers).
`names_for` answers it for one reader and, when that shows names in a
non-attributed room, writes an audit entry ("meeting.names_shown") for that read
(the page, an API answer, the state, the minutes PDF, a meeting join); the live
updates a moderator then receives follow from the join that was recorded. Whatever
goes to everyone (the room's events, the minutes thread, the state sent to the
meeting channel) is written with `names=False`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from auth import audit
from auth.models import User
from collab.db import transaction_memo
from collab.extensions import db
from rooms import policy
from rooms.meetings.models import Meeting, MeetingPseudonym

IN_ROOM = "Someone in the room"
UNKNOWN = "A participant"
_MEMO = "meeting_pseudonyms"


def applies(meeting: Meeting) -> bool:
    return bool(meeting.room.non_attributed)


def assign(meeting: Meeting, user_ids: Iterable[int | None]) -> None:
    """Inside the caller's write transaction: give a number to each of `user_ids` that has none
    in this meeting yet, in the order given. Nothing to do outside non-attributed rooms."""
    if not applies(meeting):
        return
    wanted = [u for u in dict.fromkeys(user_ids) if u is not None]
    if not wanted:
        return
    # Lock the meeting row first (PostgreSQL), so two people never take the same number.
    db.session.execute(select(Meeting.id).where(Meeting.id == meeting.id).with_for_update())
    have = dict(db.session.execute(select(MeetingPseudonym.user_id, MeetingPseudonym.number)
                                   .where(MeetingPseudonym.meeting_id == meeting.id)).all())
    top = db.session.scalar(select(func.max(MeetingPseudonym.number))
                            .where(MeetingPseudonym.meeting_id == meeting.id)) or 0
    added = False
    for uid in wanted:
        if uid not in have:
            top += 1
            have[uid] = top
            db.session.add(MeetingPseudonym(meeting_id=meeting.id, user_id=uid, number=top))
            added = True
    if added:
        db.session.flush()


def numbers(meeting_id: int) -> dict[int, int]:
    """user id -> number in one meeting (one query per meeting per transaction)."""
    memo = transaction_memo(db.session(), _MEMO)
    if meeting_id not in memo:
        memo[meeting_id] = dict(db.session.execute(
            select(MeetingPseudonym.user_id, MeetingPseudonym.number)
            .where(MeetingPseudonym.meeting_id == meeting_id)).all())
    return memo[meeting_id]




def number(meeting: Meeting, user_id: int | None) -> int | None:
    if user_id is None or not applies(meeting):
        return None
    return numbers(meeting.id).get(user_id)


def user_of(meeting: Meeting, n: object) -> int | None:
    """The account behind "Participant n" of this meeting (None: nobody has that number)."""
    if isinstance(n, bool) or not isinstance(n, int):
        return None
    return next((uid for uid, k in numbers(meeting.id).items() if k == n), None)


def label(meeting: Meeting, user_id: int | None) -> str:
    n = number(meeting, user_id)
    return f"Participant {n}" if n else UNKNOWN


def person(meeting: Meeting, user: User | None, names: bool) -> dict[str, Any] | None:
    """A person as the meeting's JSON shows them: {"id", "name"} to those who see names,
    {"name": "Participant n", "number": n, "pseudonym": true} to the others."""
    if user is None:
        return None
    if not applies(meeting):
        return {"id": user.id, "name": user.name}
    if names:
        return {"id": user.id, "name": user.name, "number": number(meeting, user.id)}
    return {"name": label(meeting, user.id), "number": number(meeting, user.id), "pseudonym": True}


def who(meeting: Meeting, user_id: int | None, name: str, names: bool) -> dict[str, Any]:
    """The `user_id`, `name` and `number` of a row that recorded someone (attendance, hand, chat).
    Rows without an account (people the chair named in the room) keep the typed name only for
    those who see names."""
    if names or not applies(meeting):
        return {"user_id": user_id, "name": name, "number": number(meeting, user_id)}
    if user_id is None:
        return {"user_id": None, "name": IN_ROOM, "number": None}
    return {"user_id": None, "name": label(meeting, user_id), "number": number(meeting, user_id)}


def display(meeting: Meeting, user: User | None, names: bool) -> str:
    """A person's name as text (announcements, minutes, messages)."""
    p = person(meeting, user, names)
    return p["name"] if p else "—"


def names_for(actor: User | None, meeting: Meeting, what: str, *, in_write: bool = False) -> bool:
    """Whether this read of the meeting shows `actor` who is who. In a non-attributed room only
    to those rooms.policy.sees_names allows, and each such read is audited (`what` says which:
    "page", "api", "state", "join", "minutes_pdf"). `in_write`: the caller's write transaction
    takes the audit entry; otherwise it is written at once."""
    if not applies(meeting):
        return True
    if not policy.sees_names(actor, meeting.room):
        return False
    kwargs = dict(actor=actor, target_type="meeting", target_id=meeting.id, room_id=meeting.room_id,
                  detail={"shown": what})
    if in_write:
        audit.record("meeting.names_shown", **kwargs)
    else:
        audit.record_now("meeting.names_shown", **kwargs)
    return True
