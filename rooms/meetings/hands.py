"""Raised hands and the floor: a participant raises or lowers a hand, the chair
puts someone in the room in the queue, lowers anyone's hand, and gives the floor
(a remote person's page asks them to unmute). Each change is published as the
meeting's new state (state.py) after the commit. The chair can also ask one
person's page to mute its microphone (mute_person; everyone: attendance.mute_all):
only that person's page is told, and only they can unmute it.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import policy
from rooms.meetings import access, pseudonyms, state
from rooms.meetings.models import Hand


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
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def add_room_hand(actor: User, meeting_id: object, *, name: object) -> dict[str, Any]:
    """The chair puts someone in the room in the queue, by name."""
    meeting = access.require_chair(actor, meeting_id)
    label = validate.display_name(name, "name", max_len=state.MAX_NAME)
    db.begin_write()
    db.session.add(Hand(meeting_id=meeting.id, user_id=None, name=label, in_room=True, raised_at=utcnow()))
    snap = state.publish(meeting)
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
    snap = state.publish(meeting)
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
        state.notify_user(meeting, h.user_id, "meeting.floor",
                          {"message": f"{by} gives you the floor. Please unmute your microphone and speak."})
    snap = state.publish(meeting)
    db.session.commit()
    return snap


MUTED_YOU = "The chair muted your microphone. Unmute when you want to speak."


def mute_person(actor: User, meeting_id: object, *, user_id: object = None, participant: object = None) -> None:
    """The chair asks one person's page to mute its microphone (as Jitsi and Teams do): `meeting.mute_you`
    goes to that account only, after the commit; the page mutes itself and says so, and the person may
    unmute when they want to speak. Nobody can unmute someone else. Named by account id, or by
    "Participant n" (`participant`) where names are not shown."""
    meeting = access.require_chair(actor, meeting_id)
    uid = state.person_id(meeting, user_id, participant)
    if uid is None:
        raise Invalid("Choose whose microphone to mute.", "user_id")
    if uid == actor.id:
        raise Invalid("Use your own Mute button to mute your microphone.", "user_id")
    target = db.session.get(User, uid)
    if target is None or not target.active or not policy.may_see_meeting(target, meeting) \
            or access.removed(meeting.id, uid):
        raise Invalid("Nobody with that id is in this meeting.", "user_id")
    db.begin_write()
    state.notify_user(meeting, uid, "meeting.mute_you", {"message": MUTED_YOU})
    db.session.commit()
