"""Who may do what in a meeting: the one module the meeting services ask.

A meeting belongs to a room and inherits its rules, so every decision here ends
in rooms/policy.py (may_see_meeting, may_join_meeting, may_act_in_meeting,
can_moderate, can_post); what this module adds is what only a meeting knows:
its named chairs, whom the chair removed, and whether the chair locked it.

- `get_meeting`: the meeting, or 404 to anyone who may not see it;
- `role`: the person's part in it: "host" (a moderator of the room), "chair"
  (a named chair, or whoever set it up when it names none), "participant"
  (may post in the room), "observer" (follows, sends nothing);
- `check_writable` (an archived room's meetings are read-only), `get_writable`,
  `get_running`, `require_chair`, `require_participant`, `check_may_join`;
- `may_end`, `require_end`: the one rule for ending or cancelling a meeting and
  posting its minutes (the room's moderators, the chairs, and whoever started
  it), which rooms/meetings/services.py `end_meeting` asks for every route that
  ends one.

It reads the tables only (rooms/meetings/models.py) and imports no other meeting
module, so every meeting module may import it.
"""
from __future__ import annotations

from sqlalchemy import select

from auth.models import User
from collab import validate
from collab.errors import Forbidden, NotFound
from collab.extensions import db
from rooms import policy
from rooms.meetings.models import Attendance, Meeting, MeetingPerson, MeetingPlan

ROLES = ("host", "chair", "participant", "observer")
REMOVED = "The chair removed you from this meeting."
LOCKED = "The chair has locked this meeting: nobody new can join."


# -- the meeting and its people -------------------------------------------------------------

def get_meeting(actor: User | None, meeting_id: object) -> Meeting:
    """The meeting, or NotFound (the same answer whether it does not exist or may not be seen)."""
    mid = validate.int_id(meeting_id, "meeting_id")
    meeting = db.session.get(Meeting, mid)
    if meeting is None or not policy.may_see_meeting(actor, meeting):
        raise NotFound("Meeting not found.")
    return meeting


def plan_for(meeting: Meeting) -> MeetingPlan | None:
    """The schedule and live-state row (a meeting started on the spot has none until it is used)."""
    return db.session.get(MeetingPlan, meeting.id)


def people(meeting_id: int, role: str) -> list[User]:
    """The named chairs (`role` "chair") or invitees ("invitee"), in the order they were named."""
    return [p.user for p in db.session.scalars(
        select(MeetingPerson).where(MeetingPerson.meeting_id == meeting_id, MeetingPerson.role == role)
        .order_by(MeetingPerson.id))]


def chair_ids(meeting: Meeting) -> set[int]:
    return {p.id for p in people(meeting.id, "chair")}


def is_chair(user: User | None, meeting: Meeting) -> bool:
    """Named chairs who may still post in the room, the room's moderators (so one can take over),
    and whoever set the meeting up when it has no named chair."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if policy.can_moderate(user, meeting.room):
        return True
    chairs = chair_ids(meeting)
    if user.id in chairs:
        return policy.can_post(user, meeting.room)
    return not chairs and meeting.created_by_id == user.id


def role(actor: User, meeting: Meeting) -> str:
    """One of ROLES: what `actor` is in this meeting (see the module's docstring)."""
    if policy.can_moderate(actor, meeting.room):
        return "host"
    if is_chair(actor, meeting):
        return "chair"
    if policy.can_post(actor, meeting.room):
        return "participant"
    return "observer"


def media_role(actor: User, meeting: Meeting) -> str:
    """The role in the media worker's vocabulary (media/tokens.py ROLES): "host" for the room's
    moderators, "member" for whoever may send audio and video (may post in the room, or was brought in
    from the broadcast by a chair: `is_speaker`), "observer"."""
    if policy.can_moderate(actor, meeting.room):
        return "host"
    return "member" if policy.can_post(actor, meeting.room) or is_speaker(actor, meeting) else "observer"


def is_speaker(actor: User, meeting: Meeting) -> bool:
    """A viewer of the broadcast whom a chair brought into this meeting (rooms/meetings/broadcast.py)."""
    return bool(db.session.scalar(select(MeetingPerson.id).where(
        MeetingPerson.meeting_id == meeting.id, MeetingPerson.user_id == actor.id,
        MeetingPerson.role == "speaker").limit(1)))


def removed(meeting_id: int, user_id: int) -> bool:
    """Whether the chair removed this account from the meeting."""
    return bool(db.session.scalar(select(Attendance.id).where(
        Attendance.meeting_id == meeting_id, Attendance.user_id == user_id, Attendance.removed.is_(True)).limit(1)))


# -- checks ----------------------------------------------------------------------------------

def check_writable(actor: User, meeting: Meeting) -> None:
    """Every change to a meeting's record asks this first: an archived room is read-only, its
    meetings too (rooms.policy.may_act_in_meeting)."""
    if not policy.may_act_in_meeting(actor, meeting):
        raise Forbidden("This room is archived, so its meetings are read-only: nothing can be changed.")


def get_writable(actor: User, meeting_id: object) -> Meeting:
    """The meeting, to change its record (404 unless seen, 403 in an archived room)."""
    meeting = get_meeting(actor, meeting_id)
    check_writable(actor, meeting)
    return meeting


def get_running(actor: User, meeting_id: object) -> Meeting:
    """The meeting, to change its live state: writable and not ended."""
    meeting = get_writable(actor, meeting_id)
    if meeting.ended:
        raise Forbidden("This meeting has ended.")
    return meeting


def require_chair(actor: User, meeting_id: object) -> Meeting:
    """The running meeting, for the chair's tools (is_chair)."""
    meeting = get_running(actor, meeting_id)
    if not is_chair(actor, meeting):
        raise Forbidden("Only the chair can do that.")
    return meeting


def require_participant(actor: User, meeting: Meeting) -> None:
    """Raising a hand, voting, chatting: people who may post in the room and were not removed."""
    if not policy.can_post(actor, meeting.room):
        raise Forbidden("Observers follow the meeting but cannot raise a hand, vote or chat.")
    if removed(meeting.id, actor.id):
        raise Forbidden(REMOVED)


def check_may_join(actor: User, meeting: Meeting) -> None:
    """Before a media token: the meeting's audio and video are for those rooms.policy.may_join_meeting
    lets in; a removed participant stays out; a locked meeting admits only those already in and the chairs."""
    if meeting.ended:
        raise Forbidden("This meeting has ended.")
    if meeting.room.archived:
        raise Forbidden("This room is archived, so its meetings are closed.")
    if not policy.may_join_meeting(actor, meeting):
        raise Forbidden("You may not join this meeting.")
    if removed(meeting.id, actor.id):
        raise Forbidden(REMOVED)
    plan = plan_for(meeting)
    if plan is not None and plan.locked and not is_chair(actor, meeting) and not db.session.scalar(
            select(Attendance.id).where(Attendance.meeting_id == meeting.id, Attendance.user_id == actor.id)
            .limit(1)):
        raise Forbidden(LOCKED)


def may_end(actor: User | None, meeting: Meeting) -> bool:
    """Who may end (or cancel) a meeting and post its minutes (`/finish` does both): the room's
    moderators and the chairs (is_chair), and whoever started it, even after naming someone else
    to chair it. Not in an archived room."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    if not policy.may_act_in_meeting(actor, meeting):
        return False
    return is_chair(actor, meeting) or meeting.created_by_id == actor.id


def require_end(actor: User, meeting_id: object) -> Meeting:
    """The meeting, for services.end_meeting: 404 unless seen, 403 unless `may_end`."""
    meeting = get_writable(actor, meeting_id)
    if not may_end(actor, meeting):
        raise Forbidden("Only the room's moderators, the meeting's chairs or whoever started it can end it.")
    return meeting
