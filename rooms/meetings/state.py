"""The live state of a meeting, kept in the database: the deck and slide shown and
who drives it, raised hands, the attendance register, the lock, the chat, and
(through votes.py) the key messages. Every change bumps `MeetingPlan.version`
and queues a `meeting.state` event carrying the whole state, which
rooms/meetings/realtime.py sends to everyone in the meeting after the commit. A
participant who reloads or reconnects asks for the state and has it at once.

Who may do what:
- anyone who may read the room may follow the meeting (see slides, hands, votes);
- people who may post in it may raise a hand, vote and chat (observers watch);
- the chairs (access.is_chair: named chairs and the room's moderators, so a
  second chair can take over) run it; the chair or the named presenter drives
  the slides.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import policy, revocation
from rooms.meetings import access, pseudonyms
from rooms.meetings.models import (
    Attendance,
    ChatMessage,
    Deck,
    Hand,
    KeyMessage,
    Meeting,
    MeetingAction,
    MeetingPlan,
    Vote,
)
from rooms.serialize import iso

STALE_AFTER = timedelta(seconds=75)   # a remote attendee whose page stopped reporting this long ago has left
CHAT_KEEP = 200                        # chat messages sent with the state
MAX_CHAT = 2000
MAX_NAME = 120
MAX_HEADS = 500


# -- reading --------------------------------------------------------------------------

def tally(km: KeyMessage) -> dict[str, Any]:
    votes = list(db.session.scalars(select(Vote).where(Vote.key_message_id == km.id).order_by(Vote.id)))
    remote = {c: sum(1 for v in votes if v.choice == c) for c in ("agree", "disagree", "abstain")}
    room = {"agree": km.room_agree, "disagree": km.room_disagree, "abstain": km.room_abstain}
    return {"remote": remote, "room": room, "total": {c: remote[c] + room[c] for c in remote},
            "comments": [v.comment for v in votes if v.comment]}


def key_message_dict(km: KeyMessage) -> dict[str, Any]:
    return {"id": km.id, "text": km.text, "status": km.status, "outcome": km.outcome, "tally": tally(km),
            "opened_at": iso(km.opened_at), "closed_at": iso(km.closed_at)}


def deck_dict(d: Deck) -> dict[str, Any]:
    return {"id": d.id, "filename": d.filename, "kind": d.kind, "status": d.status, "pages": d.pages,
            "done": d.done, "message": d.message, "size": d.size}


def attendance(meeting: Meeting, names: bool = False) -> dict[str, list[dict[str, Any]]]:
    now = utcnow()
    out: dict[str, list[dict[str, Any]]] = {"remote": [], "in_room": [], "device": []}
    for a in db.session.scalars(select(Attendance).where(Attendance.meeting_id == meeting.id)
                                .order_by(Attendance.joined_at, Attendance.id)):
        left = a.left_at or (a.seen_at if a.mode != "in_room" and now - a.seen_at > STALE_AFTER else None)
        person = pseudonyms.who(meeting, a.user_id, a.name, names)
        if a.mode == "device":   # "Meeting room": the laptop, not a person; who registered it is not said
            person = dict(person, name=a.name) if names or not pseudonyms.applies(meeting) else \
                {"user_id": None, "name": a.name, "number": None}
        out[a.mode].append({"id": a.id, **person, "head_count": a.head_count,
                            "joined_at": iso(a.joined_at), "left_at": iso(left), "present": left is None,
                            "removed": a.removed})
    return out


def hands(meeting: Meeting, names: bool = False) -> list[dict[str, Any]]:
    """Raised hands, first raised first (ties by id, the order they reached the database)."""
    return [{"id": h.id, **pseudonyms.who(meeting, h.user_id, h.name, names), "in_room": h.in_room,
             "raised_at": iso(h.raised_at), "floor": h.floor_at is not None}
            for h in db.session.scalars(select(Hand).where(Hand.meeting_id == meeting.id, Hand.lowered_at.is_(None))
                                        .order_by(Hand.raised_at, Hand.id))]


def chat_dict(meeting: Meeting, c: ChatMessage, names: bool = False) -> dict[str, Any]:
    return {"id": c.id, **pseudonyms.who(meeting, c.user_id, c.name, names), "body": c.body, "at": iso(c.created_at)}


def snapshot(meeting: Meeting, names: bool = False) -> dict[str, Any]:
    """The whole state. `names`: for a reader who sees who is who (pseudonyms.names_for); the
    state sent to the meeting channel of a non-attributed room is made without."""
    plan = access.plan_for(meeting)
    decks = list(db.session.scalars(select(Deck).where(Deck.meeting_id == meeting.id).order_by(Deck.id)))
    kms = list(db.session.scalars(select(KeyMessage).where(KeyMessage.meeting_id == meeting.id)
                                  .order_by(KeyMessage.id)))
    chat = list(db.session.scalars(select(ChatMessage).where(ChatMessage.meeting_id == meeting.id)
                                   .order_by(ChatMessage.id.desc()).limit(CHAT_KEEP)))
    actions = list(db.session.scalars(select(MeetingAction).where(MeetingAction.meeting_id == meeting.id)
                                      .order_by(MeetingAction.id)))
    return {
        "meeting_id": meeting.id,
        "version": plan.version if plan else 0,
        "ended": meeting.ended,
        "locked": bool(plan and plan.locked),
        "deck_id": plan.deck_id if plan else None,
        "page": plan.page if plan else 1,
        "non_attributed": pseudonyms.applies(meeting),
        # by id, not the relationship: it is not refreshed when presenter_id changes in this session
        "presenter": pseudonyms.person(meeting, db.session.get(User, plan.presenter_id), names)
        if plan and plan.presenter_id else None,
        "chairs": [pseudonyms.person(meeting, u, names) for u in access.people(meeting.id, "chair")],
        "decks": [deck_dict(d) for d in decks],
        "hands": hands(meeting, names),
        "attendance": attendance(meeting, names),
        "key_messages": [key_message_dict(k) for k in kms],
        "actions": [{"id": a.id, "text": a.text, "owner": a.owner} for a in actions],
        "chat": [chat_dict(meeting, c, names) for c in reversed(chat)],
        "minutes_thread_id": plan.minutes_thread_id if plan else None,
    }


def get_state(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = access.get_meeting(actor, meeting_id)
    names = pseudonyms.names_for(actor, meeting, "state")
    return dict(snapshot(meeting, names), me=me(actor, meeting, names))


def me(actor: User, meeting: Meeting, names: bool = False) -> dict[str, Any]:
    """What this account may do, its own votes, its number in a non-attributed room's meeting and
    whether it sees names (the state itself is the same for everyone on the same channel)."""
    kms = select(KeyMessage.id).where(KeyMessage.meeting_id == meeting.id)
    votes = {v.key_message_id: {"choice": v.choice, "comment": v.comment}
             for v in db.session.scalars(select(Vote).where(Vote.user_id == actor.id, Vote.key_message_id.in_(kms)))}
    plan = access.plan_for(meeting)
    writable = policy.may_act_in_meeting(actor, meeting)
    chair = access.is_chair(actor, meeting) and writable
    return {"id": actor.id, "name": actor.name, "chair": chair,
            "presenter": chair or bool(plan and plan.presenter_id == actor.id),
            "participant": policy.can_post(actor, meeting.room) and not access.removed(meeting.id, actor.id),
            "files": policy.may_download_deck(actor, meeting),   # deck files and slide images (guests: not always)
            "number": pseudonyms.number(meeting, actor.id), "sees_names": names,
            "writable": writable,
            "votes": {str(k): v for k, v in votes.items()}}


# -- publishing ---------------------------------------------------------------------

def ensure_plan(meeting: Meeting) -> MeetingPlan:
    """The plan row of a meeting, made for a meeting started on the spot (inside a write): it
    holds the live state's version, slide, presenter and lock."""
    plan = db.session.get(MeetingPlan, meeting.id)
    if plan is None:
        plan = MeetingPlan(meeting_id=meeting.id, agenda="", starts_at=meeting.created_at, all_members=True,
                           locked=False, page=1, version=0, ics_sequence=0, updated_at=utcnow())
        db.session.add(plan)
        db.session.flush()
    return plan


def publish(meeting: Meeting, **extra: Any) -> dict[str, Any]:
    """Inside a write, before the commit: bump the version and queue the new state."""
    plan = ensure_plan(meeting)
    plan.version += 1
    plan.updated_at = utcnow()
    db.session.flush()
    snap = snapshot(meeting)
    events.queue(db.session, "meeting.state", snap, None, meeting_id=meeting.id, **extra)
    if pseudonyms.applies(meeting):   # those who see names follow on a channel of their own
        events.queue(db.session, "meeting.state", snapshot(meeting, names=True), None, meeting_id=meeting.id,
                     names=True, **extra)
    return snap


def notify_user(meeting: Meeting, user_id: int, name: str, payload: dict[str, Any]) -> None:
    events.queue(db.session, name, dict(payload, meeting_id=meeting.id), None, meeting_id=meeting.id,
                 to_user=user_id)


def notify_all(meeting: Meeting, name: str, payload: dict[str, Any],
               named: dict[str, Any] | None = None) -> None:
    """To everyone following the meeting. `named`: the payload for those who see names, when it
    differs (a non-attributed room's meeting channel gets `payload`)."""
    events.queue(db.session, name, dict(payload, meeting_id=meeting.id), None, meeting_id=meeting.id)
    if pseudonyms.applies(meeting):
        events.queue(db.session, name, dict(named or payload, meeting_id=meeting.id), None,
                     meeting_id=meeting.id, names=True)


# -- slides ---------------------------------------------------------------------------

def set_slide(actor: User, meeting_id: object, *, deck_id: object, page: object) -> dict[str, Any]:
    meeting = access.get_running(actor, meeting_id)
    plan = access.plan_for(meeting)
    if not (access.is_chair(actor, meeting) or (plan is not None and plan.presenter_id == actor.id)):
        raise Forbidden("Only the chair or the presenter can move the slides.")
    did = validate.int_id(deck_id, "deck_id")
    deck = db.session.get(Deck, did)
    if deck is None or deck.meeting_id != meeting.id:
        raise Invalid("That deck is not one of this meeting's.", "deck_id")
    if deck.status != "ready":
        raise Invalid("That deck has no slides to show yet.", "deck_id")
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= deck.pages:
        raise Invalid(f"page must be a number from 1 to {deck.pages}.", "page")
    db.begin_write()
    plan = ensure_plan(meeting)
    plan.deck_id, plan.page = deck.id, page
    snap = publish(meeting)
    db.session.commit()
    return snap


def person_id(meeting: Meeting, user_id: object, participant: object, field: str = "user_id") -> int | None:
    """The account a chair's tool names: by account id, or (where names are not shown, in a
    non-attributed room) by its number in the meeting, `participant`."""
    if participant not in (None, ""):
        n = validate.int_id(participant, "participant")
        uid = pseudonyms.user_of(meeting, n)
        if uid is None:
            raise Invalid("Nobody has that number in this meeting.", "participant")
        return uid
    return validate.int_id(user_id, field, required=False)


def set_presenter(actor: User, meeting_id: object, *, user_id: object = None,
                  participant: object = None) -> dict[str, Any]:
    """The chair names who drives the slides (None: the chairs only). A chair may name themself to take over."""
    meeting = access.require_chair(actor, meeting_id)
    uid = person_id(meeting, user_id, participant)
    if uid is not None:
        user = db.session.get(User, uid)
        if user is None or not user.active or not policy.can_post(user, meeting.room):
            raise Invalid("The presenter must be able to post in this room.", "user_id")
    db.begin_write()
    pseudonyms.assign(meeting, [uid])
    plan = ensure_plan(meeting)
    plan.presenter_id = uid
    snap = publish(meeting)
    db.session.commit()
    return snap


# -- attendance -------------------------------------------------------------------------

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
        return dict(snapshot(meeting, names), me=me(actor, meeting, names))
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
    fresh = mine is None or mine.left_at is not None or now - mine.seen_at > STALE_AFTER
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
        publish(meeting)
    snap = snapshot(meeting, names)
    db.session.commit()
    return dict(snap, me=me(actor, meeting, names))


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
        publish(meeting)
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
    snap = publish(meeting)
    db.session.commit()
    return snap


def mark_in_room(actor: User, meeting_id: object, *, user_id: object = None, name: object = None,
                 present: object = True, participant: object = None) -> dict[str, Any]:
    """The chair ticks an invitee as in the room (or un-ticks), or adds someone by name."""
    meeting = access.require_chair(actor, meeting_id)
    uid = person_id(meeting, user_id, participant)
    if uid is None:
        label = validate.display_name(name, "name", max_len=MAX_NAME)
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
    snap = publish(meeting)
    db.session.commit()
    return snap


def remove_participant(actor: User, meeting_id: object, *, user_id: object = None,
                       participant: object = None) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    uid = person_id(meeting, user_id, participant)
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
    notify_user(meeting, uid, "meeting.removed", {"message": revocation.MEETING_MESSAGES["meeting_removed"]})
    snap = publish(meeting)
    db.session.commit()   # meeting.removed takes them out of the channel and the media (rooms/revocation.py)
    return snap


def set_locked(actor: User, meeting_id: object, *, locked: object) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    if not isinstance(locked, bool):
        raise Invalid("locked must be true or false.", "locked")
    db.begin_write()
    ensure_plan(meeting).locked = locked
    snap = publish(meeting)
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
        notify_all(meeting, "meeting.mute", {"by": shown, "except_number": pseudonyms.number(meeting, actor.id),
                                             "message": f"{shown} (the chair) muted everyone."}, named=named)
    else:
        notify_all(meeting, "meeting.mute", named)
    db.session.commit()


# -- hands ---------------------------------------------------------------------------------------

def raise_hand(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = access.get_running(actor, meeting_id)
    access.require_participant(actor, meeting)
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    up = db.session.scalar(select(Hand).where(Hand.meeting_id == meeting.id, Hand.user_id == actor.id,
                                              Hand.lowered_at.is_(None)).limit(1))
    if up is None:
        db.session.add(Hand(meeting_id=meeting.id, user_id=actor.id, name=actor.name, in_room=False,
                            raised_at=utcnow()))
    snap = publish(meeting)
    db.session.commit()
    return snap


def add_room_hand(actor: User, meeting_id: object, *, name: object) -> dict[str, Any]:
    """The chair puts someone in the room in the queue, by name."""
    meeting = access.require_chair(actor, meeting_id)
    label = validate.display_name(name, "name", max_len=MAX_NAME)
    db.begin_write()
    db.session.add(Hand(meeting_id=meeting.id, user_id=None, name=label, in_room=True, raised_at=utcnow()))
    snap = publish(meeting)
    db.session.commit()
    return snap


def lower_hand(actor: User, meeting_id: object, *, hand_id: object = None) -> dict[str, Any]:
    """Lower your own hand, or (the chair) anyone's."""
    meeting = access.get_running(actor, meeting_id)
    hid = validate.int_id(hand_id, "hand_id", required=False)
    db.begin_write()
    if hid is None:
        rows = list(db.session.scalars(select(Hand).where(Hand.meeting_id == meeting.id, Hand.user_id == actor.id,
                                                          Hand.lowered_at.is_(None))))
    else:
        h = db.session.get(Hand, hid)
        if h is None or h.meeting_id != meeting.id:
            raise NotFound("That hand is not raised in this meeting.")
        if h.user_id != actor.id and not access.is_chair(actor, meeting):
            raise Forbidden("Only the chair can lower someone else's hand.")
        rows = [h]
    for h in rows:
        h.lowered_at = h.lowered_at or utcnow()
    snap = publish(meeting)
    db.session.commit()
    return snap


def give_floor(actor: User, meeting_id: object, *, hand_id: object) -> dict[str, Any]:
    """The chair gives the floor to a raised hand: it is marked, and a remote person's page asks them to unmute."""
    meeting = access.require_chair(actor, meeting_id)
    hid = validate.int_id(hand_id, "hand_id")
    h = db.session.get(Hand, hid)
    if h is None or h.meeting_id != meeting.id or h.lowered_at is not None:
        raise NotFound("That hand is not raised in this meeting.")
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    h = db.session.get(Hand, hid)
    for other in db.session.scalars(select(Hand).where(Hand.meeting_id == meeting.id, Hand.floor_at.is_not(None),
                                                       Hand.lowered_at.is_(None), Hand.id != h.id)):
        other.lowered_at = utcnow()   # whoever had the floor before is done
    h.floor_at = utcnow()
    if h.user_id:
        by = pseudonyms.display(meeting, actor, names=policy.sees_names(db.session.get(User, h.user_id),
                                                                       meeting.room))
        notify_user(meeting, h.user_id, "meeting.floor",
                    {"message": f"{by} gives you the floor. Please unmute your microphone and speak."})
    snap = publish(meeting)
    db.session.commit()
    return snap


# -- chat ---------------------------------------------------------------------------------------

def chat(actor: User, meeting_id: object, *, body: object) -> dict[str, Any]:
    meeting = access.get_running(actor, meeting_id)
    access.require_participant(actor, meeting)
    text = validate.text(body, "body", max_len=MAX_CHAT, multiline=True, label="Message")
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    msg = ChatMessage(meeting_id=meeting.id, user_id=actor.id, name=actor.name, body=text, created_at=utcnow())
    db.session.add(msg)
    db.session.flush()
    out = chat_dict(meeting, msg)
    notify_all(meeting, "meeting.chat", {"message": out}, named={"message": chat_dict(meeting, msg, names=True)})
    db.session.commit()
    return out


# -- actions (for the minutes) ----------------------------------------------------------------------

def add_action(actor: User, meeting_id: object, *, text: object, owner: object = "") -> dict[str, Any]:
    meeting = access.get_writable(actor, meeting_id)
    if not access.is_chair(actor, meeting):
        raise Forbidden("Only the chair can record actions.")
    text_v = validate.text(text, "text", max_len=500, label="Action")
    owner_v = validate.text(owner or "", "owner", max_len=MAX_NAME, required=False) or ""
    db.begin_write()
    db.session.add(MeetingAction(meeting_id=meeting.id, text=text_v, owner=owner_v, created_at=utcnow()))
    snap = publish(meeting)
    db.session.commit()
    return snap

