"""The live state of a meeting, kept in the database: the deck and slide shown and
who drives it, raised hands (changed in hands.py), the attendance register and
the lock (changed in attendance.py), the chat, the actions, and (through
votes.py) the key messages. Every change bumps `MeetingPlan.version`
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

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy
from rooms.meetings import access, pseudonyms
from rooms.meetings.broadcast_models import Broadcast
from rooms.meetings.recording_models import live_recording, mark_slide
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

STALE_AFTER = timedelta(seconds=75)   # a call or device whose page stopped reporting this long ago has left
MERGE_GAP = timedelta(seconds=120)     # back in the call within this of leaving: the same span
CHAT_KEEP = 200                        # chat messages sent with the state
MAX_CHAT = 2000
MAX_NAME = 120
SHOWN_MODES = ("remote", "in_room", "device")   # "page" rows are not attendance (models.Attendance)


# -- reading --------------------------------------------------------------------------

def tally(km: KeyMessage) -> dict[str, Any]:
    votes = list(db.session.scalars(select(Vote).where(Vote.key_message_id == km.id).order_by(Vote.id)))
    remote = {c: sum(1 for v in votes if v.choice == c) for c in ("agree", "disagree", "abstain")}
    room = {"agree": km.room_agree, "disagree": km.room_disagree, "abstain": km.room_abstain}
    return {"remote": remote, "room": room, "total": {c: remote[c] + room[c] for c in remote},
            "comments": [v.comment for v in votes if v.comment]}


def tally_hidden(km: KeyMessage, meeting: Meeting) -> bool:
    """Whether this key message's tally is kept out of the state everyone gets: the chair opened
    its vote with `hide_tally` and it is still open in a meeting that goes on. Who gets it all the
    same is rooms.policy.sees_tally (`me`, and the `meeting.tally` event of `publish`)."""
    return bool(km.hide_tally) and km.status == "open" and not meeting.ended


def key_message_dict(km: KeyMessage, hidden: bool = False) -> dict[str, Any]:
    """`hidden`: tally_hidden; the tally is then null (the counts, the room's show of hands and the comments)."""
    return {"id": km.id, "text": km.text, "status": km.status, "outcome": km.outcome,
            "hide_tally": bool(km.hide_tally), "tally": None if hidden else tally(km),
            "opened_at": iso(km.opened_at), "closed_at": iso(km.closed_at)}


def deck_dict(d: Deck) -> dict[str, Any]:
    return {"id": d.id, "filename": d.filename, "kind": d.kind, "status": d.status, "pages": d.pages,
            "done": d.done, "message": d.message, "size": d.size}


def span_end(a: Attendance, now: datetime) -> datetime | None:
    """When a row of the register ended: its leave time; for a call (remote) or the meeting-room
    device whose page stopped reporting for STALE_AFTER, its last report; None while it goes on.
    The one rule every view uses (the state, the minutes thread and the PDF, through `attendance`)."""
    if a.left_at is not None:
        return a.left_at
    if a.mode in ("remote", "device") and now - a.seen_at > STALE_AFTER:
        return a.seen_at
    return None


def attendance(meeting: Meeting, names: bool = False, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """The register: "remote" (one entry per span in the call, in the order they began), "in_room"
    and "device". A person's spans less than MERGE_GAP apart are one span: attendance.py joins them
    when it writes, and this joins rows written before that rule, so every view says the same."""
    now = now or utcnow()
    out: dict[str, list[dict[str, Any]]] = {"remote": [], "in_room": [], "device": []}
    latest: dict[int, dict[str, Any]] = {}   # a remote person's last span so far
    for a in db.session.scalars(select(Attendance).where(Attendance.meeting_id == meeting.id,
                                                         Attendance.mode.in_(SHOWN_MODES))
                                .order_by(Attendance.joined_at, Attendance.id)):
        end = span_end(a, now)
        prev = latest.get(a.user_id) if a.mode == "remote" and a.user_id is not None else None
        if prev is not None and (prev["_end"] is None or a.joined_at - prev["_end"] < MERGE_GAP):
            prev["_end"] = None if end is None or prev["_end"] is None else max(prev["_end"], end)
            prev["removed"] = prev["removed"] or a.removed
            continue
        person = pseudonyms.who(meeting, a.user_id, a.name, names)
        if a.mode == "device":   # "Meeting room": the laptop, not a person; who registered it is not said
            person = dict(person, name=a.name) if names or not pseudonyms.applies(meeting) else \
                {"user_id": None, "name": a.name, "number": None}
        entry = {"id": a.id, **person, "head_count": a.head_count, "_start": a.joined_at, "_end": end,
                 "removed": a.removed}
        out[a.mode].append(entry)
        if a.mode == "remote" and a.user_id is not None:
            latest[a.user_id] = entry
    for rows in out.values():
        for e in rows:
            start, end = e.pop("_start"), e.pop("_end")
            e.update(joined_at=iso(start), left_at=iso(end), present=end is None)
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
        "key_messages": [key_message_dict(k, tally_hidden(k, meeting)) for k in kms],
        "actions": [{"id": a.id, "text": a.text, "owner": a.owner} for a in actions],
        "chat": [chat_dict(meeting, c, names) for c in reversed(chat)],
        "minutes_thread_id": plan.minutes_thread_id if plan else None,
        "broadcast": broadcast_state(meeting),
        "recording": recording_state(meeting),
    }


def live_broadcast(meeting_id: int) -> Broadcast | None:
    """The meeting's broadcast while it is on (rooms/meetings/broadcast.py starts and stops it)."""
    return db.session.scalar(select(Broadcast).where(Broadcast.meeting_id == meeting_id,
                                                     Broadcast.ended_at.is_(None)).limit(1))


def broadcast_state(meeting: Meeting) -> dict[str, Any]:
    """Whether the meeting is broadcast now, for every page following it."""
    b = live_broadcast(meeting.id)
    return {"live": b is not None, "started_at": iso(b.started_at) if b else None}


def recording_state(meeting: Meeting) -> dict[str, Any]:
    """Whether the meeting is being recorded now (every page shows it), and whether it may be
    (rooms.policy.recording_refusal: the chair's button says why not)."""
    r = live_recording(meeting.id)
    refusal = policy.recording_refusal(meeting.room)
    return {"live": r is not None, "started_at": iso(r.started_at) if r else None, "id": r.id if r else None,
            "allowed": refusal is None, "refusal": refusal}


def get_state(actor: User, meeting_id: object) -> dict[str, Any]:
    meeting = access.get_meeting(actor, meeting_id)
    return for_reader(actor, meeting, pseudonyms.names_for(actor, meeting, "state"))


def for_reader(actor: User, meeting: Meeting, names: bool = False) -> dict[str, Any]:
    """The state and `me`, as one reader gets it (the meeting_join and meeting_state answers, GET
    state): a hidden tally this reader may see (`me["tallies"]`) is in its key message."""
    snap = snapshot(meeting, names)
    mine = me(actor, meeting, names)
    for km in snap["key_messages"]:
        if km["tally"] is None and str(km["id"]) in mine["tallies"]:
            km["tally"] = mine["tallies"][str(km["id"])]
    return dict(snap, me=mine)


def me(actor: User, meeting: Meeting, names: bool = False) -> dict[str, Any]:
    """What this account may do, its own votes, the hidden tallies it may see (rooms.policy.sees_tally),
    its number in a non-attributed room's meeting and whether it sees names (the state itself is the
    same for everyone on the same channel)."""
    kms = list(db.session.scalars(select(KeyMessage).where(KeyMessage.meeting_id == meeting.id)))
    votes = {v.key_message_id: {"choice": v.choice, "comment": v.comment}
             for v in db.session.scalars(select(Vote).where(Vote.user_id == actor.id,
                                                            Vote.key_message_id.in_([k.id for k in kms])))}
    plan = access.plan_for(meeting)
    writable = policy.may_act_in_meeting(actor, meeting)
    chair = access.is_chair(actor, meeting) and writable
    tallies = {str(k.id): tally(k) for k in kms
               if tally_hidden(k, meeting) and policy.sees_tally(hidden=True, chair=chair, voted=k.id in votes)}
    return {"id": actor.id, "name": actor.name, "chair": chair,
            "presenter": chair or bool(plan and plan.presenter_id == actor.id),
            "participant": policy.can_post(actor, meeting.room) and not access.removed(meeting.id, actor.id),
            "files": policy.may_download_deck(actor, meeting),   # deck files and slide images (guests: not always)
            "number": pseudonyms.number(meeting, actor.id), "sees_names": names,
            "writable": writable,
            "votes": {str(k): v for k, v in votes.items()},
            "tallies": tallies}


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
    _send_hidden_tallies(meeting, plan.version)
    return snap


def _send_hidden_tallies(meeting: Meeting, version: int) -> None:
    """A vote whose tally is hidden: each account that may see it (rooms.policy.sees_tally: it voted,
    or it chairs) and follows the meeting gets it with every new state, as `meeting.tally`
    `{version, tallies: {key message id: tally}}`, to that account only."""
    hidden = [k for k in db.session.scalars(select(KeyMessage).where(KeyMessage.meeting_id == meeting.id,
                                                                     KeyMessage.status == "open"))
              if tally_hidden(k, meeting)]
    if not hidden:
        return
    voted = {(kid, uid) for kid, uid in db.session.execute(
        select(Vote.key_message_id, Vote.user_id).where(Vote.key_message_id.in_([k.id for k in hidden])))}
    people = set(db.session.scalars(select(Attendance.user_id).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id.is_not(None))))
    people |= {uid for _, uid in voted} | access.chair_ids(meeting)
    if meeting.created_by_id:
        people.add(meeting.created_by_id)
    counts = {k.id: tally(k) for k in hidden}
    for uid in sorted(people):
        user = db.session.get(User, uid)
        if user is None or not user.active or not policy.may_see_meeting(user, meeting):
            continue
        chair = access.is_chair(user, meeting)
        mine = {str(k.id): counts[k.id] for k in hidden
                if policy.sees_tally(hidden=True, chair=chair, voted=(k.id, uid) in voted)}
        if mine:
            notify_user(meeting, uid, "meeting.tally", {"version": version, "tallies": mine})


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
    mark_slide(meeting.id, deck.id, page)
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

