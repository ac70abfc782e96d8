"""The attendance register of a meeting and who may be in it. Each change is published as the
meeting's new state (state.py) after the commit.

What counts as attendance (README.md "What the record says" says the same for people):
- **Remote**: a person attends from the moment they join the call (`call_joined`: the media
  token the Join button, a reconnect or an API client asks for, services.join) until they leave
  it (`call_left`: the Leave button; `leave`: the page closed; `here` with `in_call` false), their
  page stops reporting (`here` every 25 s; after STALE_AFTER the span ends at the last report: a
  closed laptop, a lost network) or the meeting ends (`close_at_end`). Opening the meeting page
  or following its panels (`join`, the `meeting_join` event) is not attending.
- Back within MERGE_GAP (two minutes) of leaving, it is the same span: the span is reopened when
  it is written, so a reconnect, or the churn of a flaky network, never shows as a span of its own,
  and the state, the minutes thread and the PDF read the same rows (state.attendance).
- **In the room**: ticked or named by the chair (`mark_in_room`); **the meeting-room device**:
  a laptop a chair registers, with its head-count.
- Before its time window (RECORD_BEFORE before a scheduled start) and after its end, a meeting
  records nobody: the call can be tried, the chair's register refuses with a message.
The chair removes a participant, locks the meeting and mutes everyone here too.
"""
from __future__ import annotations

from datetime import datetime, timedelta
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
RECORD_BEFORE = timedelta(minutes=30)   # as schedule.EARLY_JOIN: the meeting is listed "in progress" from then
NOT_YET = "This meeting has not started: attendance is recorded from 30 minutes before its start."


def recording(meeting: Meeting, now: datetime) -> bool:
    """Whether the meeting records attendance at `now`: from RECORD_BEFORE before its scheduled
    start (a meeting started on the spot: from then) until it ends."""
    if meeting.ended:
        return False
    plan = access.plan_for(meeting)
    return not (plan is not None and plan.starts_at is not None and plan.starts_at - RECORD_BEFORE > now)


def in_call(meeting: Meeting) -> bool:
    """Whether anyone is in the meeting's call now (an open "remote" span: services.join opened it)."""
    return db.session.scalar(select(Attendance.id).where(Attendance.meeting_id == meeting.id,
                                                         Attendance.mode == "remote",
                                                         Attendance.left_at.is_(None)).limit(1)) is not None


def _latest(meeting_id: int, user_id: int, mode: str) -> Attendance | None:
    return db.session.scalar(select(Attendance).where(
        Attendance.meeting_id == meeting_id, Attendance.user_id == user_id, Attendance.mode == mode)
        .order_by(Attendance.joined_at.desc(), Attendance.id.desc()).limit(1))


def _span(meeting: Meeting, user: User, mode: str, now: datetime, *, name: str, heads: int = 0) -> bool:
    """Inside a write: `user` is present in `mode` ("remote" or "device") at `now`: their open span
    goes on, a span that ended less than MERGE_GAP ago is reopened, else a new one begins (the
    one before gets its end written). True when the register as shown changed."""
    last = _latest(meeting.id, user.id, mode)
    if last is not None:
        end = state.span_end(last, now)
        if end is None:
            last.seen_at = max(last.seen_at, now)
            return False
        if now - end < state.MERGE_GAP:
            last.left_at, last.seen_at = None, now
            return True
        if last.left_at is None:
            last.left_at = end
    db.session.add(Attendance(meeting_id=meeting.id, user_id=user.id, name=name, mode=mode, head_count=heads,
                              joined_at=now, seen_at=now))
    return True


def _end_spans(meeting: Meeting, user_id: int, modes: tuple[str, ...], now: datetime) -> bool:
    """Inside a write: end `user_id`'s open rows of `modes` (at `now`, or at the last report of a page
    that had stopped reporting). True when a span shown as going on ended."""
    changed = False
    for a in db.session.scalars(select(Attendance).where(
            Attendance.meeting_id == meeting.id, Attendance.user_id == user_id, Attendance.mode.in_(modes),
            Attendance.left_at.is_(None))):
        end = state.span_end(a, now)
        changed = changed or (end is None and a.mode != "page")
        a.left_at = end or now
    return changed


def join(actor: User, meeting_id: object, *, device: bool = False, head_count: object = None,
         at: datetime | None = None) -> dict[str, Any]:
    """Someone opens the meeting page (`meeting_join`): they follow it (the state, then every change).
    That is not attending (see the module's docstring); it is remembered as a "page" row, which no
    view of the attendance shows, so a locked meeting lets them back. A chair registers a laptop
    as the meeting-room device, "Meeting room", with its head-count, while the meeting records
    attendance. In a meeting that has ended, or of an archived room (read-only), nothing is
    recorded: the state is only read."""
    meeting = access.get_meeting(actor, meeting_id)
    if device:
        access.check_writable(actor, meeting)
    if meeting.ended or not policy.may_act_in_meeting(actor, meeting):
        return state.for_reader(actor, meeting, pseudonyms.names_for(actor, meeting, "join"))
    if access.removed(meeting.id, actor.id):
        raise Forbidden(access.REMOVED)
    if device and not access.is_chair(actor, meeting):
        raise Forbidden("Only a chair can register this laptop as the meeting room.")
    now = at or utcnow()
    if device and not recording(meeting, now):
        raise Forbidden(NOT_YET)
    heads = _heads(head_count, meeting) if device else 0
    plan = access.plan_for(meeting)
    known = db.session.scalar(select(Attendance.id).where(Attendance.meeting_id == meeting.id,
                                                          Attendance.user_id == actor.id).limit(1))
    if plan is not None and plan.locked and known is None and not access.is_chair(actor, meeting):
        raise Forbidden(access.LOCKED)
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    names = pseudonyms.names_for(actor, meeting, "join", in_write=True)
    if device:
        changed = _span(meeting, actor, "device", now, name="Meeting room", heads=heads)
        row = _latest(meeting.id, actor.id, "device")
        if head_count is not None and row is not None and row.head_count != heads:
            row.head_count, changed = heads, True
        if changed:
            state.publish(meeting)
    else:
        page = _latest(meeting.id, actor.id, "page")
        if page is None:
            db.session.add(Attendance(meeting_id=meeting.id, user_id=actor.id, name=actor.name, mode="page",
                                      head_count=0, joined_at=now, seen_at=now))
        else:
            page.seen_at = max(page.seen_at, now)
    snap = state.for_reader(actor, meeting, names)
    db.session.commit()
    return snap


def call_joined(actor: User, meeting: Meeting, *, at: datetime | None = None) -> None:
    """Inside the caller's write (services.join, when it gives `actor` a media token): they are in
    the call from now, or still (a reconnect), unless the meeting records nobody now (`recording`)."""
    now = at or utcnow()
    if not recording(meeting, now) or not policy.may_act_in_meeting(actor, meeting):
        return
    if _span(meeting, actor, "remote", now, name=actor.name):
        state.publish(meeting)


def call_left(actor: User, meeting_id: object, *, at: datetime | None = None) -> None:
    """`actor` left the call (the Leave button) and may stay on the page: their span ends now."""
    meeting = access.get_meeting(actor, meeting_id)
    if meeting.ended or not policy.may_act_in_meeting(actor, meeting):
        return
    db.begin_write()
    if _end_spans(meeting, actor.id, ("remote",), at or utcnow()):
        state.publish(meeting)
    db.session.commit()


def close_at_end(meeting: Meeting, now: datetime) -> None:
    """Inside the write that ends the meeting (services.end_meeting): every span still going on ends
    now (a page that had stopped reporting: at its last report), so the minutes read a closed register."""
    for a in db.session.scalars(select(Attendance).where(
            Attendance.meeting_id == meeting.id, Attendance.mode != "in_room", Attendance.left_at.is_(None))):
        a.left_at = state.span_end(a, now) or now


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


def here(actor: User, meeting_id: object, *, in_call: object = None, at: datetime | None = None) -> None:
    """The page is still open (sent every 25 s). `in_call`: whether its call is joined now. True: the
    span goes on (or is reopened within MERGE_GAP, or begins, as at Join); false: it ends; not given
    (a page that does not say): an open span goes on, none begins. A page that stops reporting has
    left at its last report (state.span_end)."""
    meeting = access.get_meeting(actor, meeting_id)
    if in_call is not None and not isinstance(in_call, bool):
        raise Invalid("in_call must be true or false.", "in_call")
    if meeting.ended or not policy.may_act_in_meeting(actor, meeting):   # archived: nothing is recorded
        return
    now = at or utcnow()
    db.begin_write()
    changed = False
    for a in list(db.session.scalars(select(Attendance).where(
            Attendance.meeting_id == meeting.id, Attendance.user_id == actor.id, Attendance.left_at.is_(None),
            Attendance.mode.in_(("page", "device"))))):
        if a.mode == "device":
            changed = _span(meeting, actor, "device", now, name=a.name, heads=a.head_count) or changed
        else:
            a.seen_at = max(a.seen_at, now)
    if in_call is False:
        changed = _end_spans(meeting, actor.id, ("remote",), now) or changed
    elif in_call is True:
        if recording(meeting, now) and not access.removed(meeting.id, actor.id):
            changed = _span(meeting, actor, "remote", now, name=actor.name) or changed
    else:
        last = _latest(meeting.id, actor.id, "remote")
        if last is not None and last.left_at is None:
            end = state.span_end(last, now)
            if end is None or now - end < state.MERGE_GAP:
                changed = changed or end is not None
                last.seen_at = max(last.seen_at, now)
            else:
                last.left_at = end
    if changed:
        state.publish(meeting)
    db.session.commit()


def leave(actor: User, meeting_id: object, *, at: datetime | None = None) -> None:
    """The page closed (or stopped following the meeting): its call, if joined, and its device end."""
    meeting = access.get_meeting(actor, meeting_id)
    if not policy.may_act_in_meeting(actor, meeting):   # archived: nothing is recorded
        return
    db.begin_write()
    if _end_spans(meeting, actor.id, ("remote", "device", "page"), at or utcnow()):
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
    if not recording(meeting, utcnow()):
        raise Forbidden(NOT_YET)
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
    if not rows:   # never in the call: remembered as removed, not listed as attending
        db.session.add(Attendance(meeting_id=meeting.id, user_id=uid, name=target.name, mode="page",
                                  head_count=0, joined_at=now, seen_at=now, left_at=now, removed=True))
    for a in rows:
        a.removed = True
        a.left_at = a.left_at or state.span_end(a, now) or now
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
