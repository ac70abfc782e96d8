"""The attendance register of a meeting and who may be in it: remote attendees
join (registered with the time) and leave, the meeting-room device reports its
head-count, the chair ticks people in the room, removes a participant, locks
the meeting and mutes everyone. Each change is published as the meeting's new
state (state.py) after the commit.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy, revocation
from rooms.meetings import access, pseudonyms, state
from rooms.meetings.models import Attendance, Hand, Meeting

MAX_HEADS = 500


def join(actor: User, meeting_id: object, *, device: bool = False, head_count: object = None) -> dict[str, Any]:
    """Someone opens the meeting: remote attendees are registered automatically (with the
    time); a chair registers a laptop as the meeting-room device, "Meeting room", with its
    head-count. In a meeting that has ended, or of an archived room (read-only), nothing is
    recorded: the state is only read."""
    meeting = access.get_meeting(actor, meeting_id)
    if device:
        access.check_writable(actor, meeting)
    if meeting.ended or not policy.may_act_in_meeting(actor, meeting):
        names = pseudonyms.names_for(actor, meeting, "join")
        return dict(state.snapshot(meeting, names), me=state.me(actor, meeting, names))
    if access.removed(meeting.id, actor.id):
        raise Forbidden(access.REMOVED)
    if device and not access.is_chair(actor, meeting):
        raise Forbidden("Only a chair can register this laptop as the meeting room.")
    mode = "device" if device else "remote"
    heads = _heads(head_count, meeting) if device else 0
    plan = access.plan_for(meeting)
    mine = db.session.scalar(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id == actor.id, Attendance.mode == mode)
        .order_by(Attendance.id.desc()).limit(1))
    if plan is not None and plan.locked and mine is None and not access.is_chair(actor, meeting):
        raise Forbidden(access.LOCKED)
    # observers follow; they are listed too, so the register is complete
    now = utcnow()
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    names = pseudonyms.names_for(actor, meeting, "join", in_write=True)
    fresh = mine is None or mine.left_at is not None or now - mine.seen_at > state.STALE_AFTER
    if fresh:
        db.session.add(Attendance(meeting_id=meeting.id, user_id=actor.id,
                                  name="Meeting room" if device else actor.name, mode=mode,
                                  head_count=heads, joined_at=now, seen_at=now))
    else:
        mine = db.session.merge(mine)
        mine.seen_at = now
        if device and head_count is not None:
            mine.head_count = heads
    if fresh or device:
        state.publish(meeting)
    snap = state.snapshot(meeting, names)
    db.session.commit()
    return dict(snap, me=state.me(actor, meeting, names))


def heads_bound(meeting: Meeting) -> int:
    """The largest head-count the meeting-room device may report: the room's size, that is the
    number of active accounts that may read the room (its members, for a private room; for an
    organisation or national room everyone it is open to, rooms.policy.room_readers_clause),
    and never more than MAX_HEADS, so a typo cannot put 5,000 people in the minutes."""
    readers = db.session.scalar(select(func.count()).select_from(User)
                                .where(policy.room_readers_clause(meeting.room))) or 0
    return max(1, min(MAX_HEADS, readers))


def _heads(value: object, meeting: Meeting) -> int:
    if value in (None, ""):
        return 0
    bound = heads_bound(meeting)
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Invalid("The head-count must be a whole number.", "head_count") from None
    if isinstance(value, bool) or not 0 <= n <= bound:
        raise Invalid(f"The head-count must be from 0 to {bound}, the number of people who may read this room.",
                      "head_count")
    return n


def here(actor: User, meeting_id: object) -> None:
    """The page is still open (sent every 25 s); a stale attendee shows as left."""
    meeting = access.get_meeting(actor, meeting_id)
    if meeting.ended or not policy.may_act_in_meeting(actor, meeting):   # archived: nothing is recorded
        return
    db.begin_write()
    rows = list(db.session.scalars(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id == actor.id, Attendance.left_at.is_(None),
        Attendance.mode != "in_room")))
    for a in rows:
        a.seen_at = utcnow()
    db.session.commit()


def leave(actor: User, meeting_id: object) -> None:
    meeting = access.get_meeting(actor, meeting_id)
    if not policy.may_act_in_meeting(actor, meeting):   # archived: nothing is recorded
        return
    db.begin_write()
    rows = list(db.session.scalars(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id == actor.id, Attendance.left_at.is_(None),
        Attendance.mode != "in_room")))
    if rows:
        for a in rows:
            a.left_at = utcnow()
        state.publish(meeting)
    db.session.commit()


def set_head_count(actor: User, meeting_id: object, *, head_count: object) -> dict[str, Any]:
    meeting = access.get_running(actor, meeting_id)
    heads = _heads(head_count, meeting)
    row = db.session.scalar(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.mode == "device", Attendance.left_at.is_(None),
        Attendance.user_id == actor.id).order_by(Attendance.id.desc()).limit(1))
    if row is None and not access.is_chair(actor, meeting):
        raise Forbidden("Only the meeting-room device or the chair can set the head-count.")
    db.begin_write()
    if row is None:
        row = db.session.scalar(select(Attendance).where(
            Attendance.meeting_id == meeting.id, Attendance.mode == "device", Attendance.left_at.is_(None))
            .order_by(Attendance.id.desc()).limit(1))
        if row is None:
            raise Invalid("No meeting-room device has joined.", "head_count")
    row.head_count = heads
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def mark_in_room(actor: User, meeting_id: object, *, user_id: object = None, name: object = None,
                 present: object = True, participant: object = None) -> dict[str, Any]:
    """The chair ticks an invitee as in the room (or un-ticks), or adds someone by name."""
    meeting = access.require_chair(actor, meeting_id)
    uid = state.person_id(meeting, user_id, participant)
    if uid is None:
        label = validate.display_name(name, "name", max_len=state.MAX_NAME)
        user = None
    else:
        user = db.session.get(User, uid)
        if user is None or not policy.can_read_room(user, meeting.room):
            raise Invalid("Tick someone who may read this room, or add them by name.", "user_id")
        label = user.name
    db.begin_write()
    pseudonyms.assign(meeting, [uid])
    q = select(Attendance).where(Attendance.meeting_id == meeting.id, Attendance.mode == "in_room")
    q = q.where(Attendance.user_id == uid) if uid is not None else q.where(Attendance.name == label,
                                                                          Attendance.user_id.is_(None))
    row = db.session.scalar(q.limit(1))
    if present is not False:
        if row is None:
            db.session.add(Attendance(meeting_id=meeting.id, user_id=uid, name=label, mode="in_room",
                                      head_count=0, joined_at=utcnow(), seen_at=utcnow()))
        else:
            row.left_at = None
    elif row is not None:
        db.session.delete(row)
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def remove_participant(actor: User, meeting_id: object, *, user_id: object = None,
                       participant: object = None) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    uid = state.person_id(meeting, user_id, participant)
    if uid is None:
        raise Invalid("Choose who to remove.", "user_id")
    if uid == actor.id:
        raise Invalid("You cannot remove yourself; leave the meeting instead.", "user_id")
    target = db.session.get(User, uid)
    if target is None:
        raise Invalid("Nobody with that id is in this meeting.", "user_id")
    if access.is_chair(target, meeting):
        raise Forbidden("A chair cannot be removed from the meeting.")
    now = utcnow()
    db.begin_write()
    pseudonyms.assign(meeting, [uid])
    rows = list(db.session.scalars(select(Attendance).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id == uid, Attendance.mode != "in_room")))
    if not rows:
        db.session.add(Attendance(meeting_id=meeting.id, user_id=uid, name=target.name, mode="remote",
                                  head_count=0, joined_at=now, seen_at=now, left_at=now, removed=True))
    for a in rows:
        a.removed = True
        a.left_at = a.left_at or now
    for h in db.session.scalars(select(Hand).where(Hand.meeting_id == meeting.id, Hand.user_id == uid,
                                                   Hand.lowered_at.is_(None))):
        h.lowered_at = now
    state.notify_user(meeting, uid, "meeting.removed", {"message": revocation.MEETING_MESSAGES["meeting_removed"]})
    snap = state.publish(meeting)
    db.session.commit()   # meeting.removed takes them out of the channel and the media (rooms/revocation.py)
    return snap


def set_locked(actor: User, meeting_id: object, *, locked: object) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    if not isinstance(locked, bool):
        raise Invalid("locked must be true or false.", "locked")
    db.begin_write()
    state.ensure_plan(meeting).locked = locked
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def mute_all(actor: User, meeting_id: object) -> None:
    """Ask every remote participant's page to mute its microphone (the chair's stays on)."""
    meeting = access.require_chair(actor, meeting_id)
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    shown = pseudonyms.display(meeting, actor, names=False)
    named = {"by": actor.name, "except": actor.id, "message": f"{actor.name} muted everyone."}
    if pseudonyms.applies(meeting):   # the chair's own page knows itself by its number
        state.notify_all(meeting, "meeting.mute",
                         {"by": shown, "except_number": pseudonyms.number(meeting, actor.id),
                          "message": f"{shown} (the chair) muted everyone."}, named=named)
    else:
        state.notify_all(meeting, "meeting.mute", named)
    db.session.commit()
