"""Changing a room's confidentiality label, whether its posts are attributed (issue 7's room settings),
and whether its meetings may be recorded (issue 16). The labels themselves and what they mean are in
rooms/labels.py; what may be recorded is rooms.policy.recording_refusal."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from auth import audit
from auth.models import User
from collab import mail, validate
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy, services
from rooms.labels import label_of, labels, rank, subject
from rooms.models import Membership, Room, Thread


def set_label(actor: User, room_id: object, label: object) -> Room:
    room = services.get_room(actor, room_id)
    if not policy.can_change_label(actor, room):
        raise Forbidden("Only the room's owners can change its label.", "label")
    new = validate.choice(label, "label", {k: k for k in labels()}, label="Confidentiality label")
    old = label_of(room)
    if new == old:
        return room
    db.begin_write()
    room = db.session.merge(room)
    room.label = new
    audit.record("room.label_changed", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"from": old, "to": new, "raised": rank(new) > rank(old)})
    services.record_event(room.id, "room.label_changed", {"label": new, "previous": old,
                                                     "message": f"This room is now {new}."})
    member_ids = list(db.session.scalars(select(Membership.user_id).where(Membership.room_id == room.id)))
    db.session.commit()
    if rank(new) > rank(old):
        _tell_members(room, member_ids, old, new, actor)
    return room


def _tell_members(room: Room, member_ids: list[int], old: str, new: str, actor: User) -> None:
    """Raising a label: every member hears of it live (the room.label_changed event above, shown as a
    banner) and, with SMTP set, by e-mail."""
    if not mail.enabled():
        return
    url = current_app.config["PUBLIC_URL"].rstrip("/") + f"/rooms/{room.id}"
    for uid in member_ids:
        user = db.session.get(User, uid)
        if user is None or not user.active or uid == actor.id:
            continue
        mail.send(user.email, subject(room, f"“{room.name}” is now {new}"),
                  f"The room “{room.name}” was raised from {old} to {new}. Handle what is said there "
                  f"accordingly.\n\n{url}\n")


def set_non_attributed(actor: User, room_id: object, on: object) -> Room:
    """Chatham House: set before anyone writes, and never undone once posts exist (that would name
    people who wrote under the promise of not being named)."""
    room = services.get_room(actor, room_id)
    if not policy.can_manage_room(actor, room):
        raise Forbidden("Only the room's owners can change this.", "non_attributed")
    if not isinstance(on, bool):
        raise Invalid("non_attributed must be true or false.", "non_attributed")
    if on == room.non_attributed:
        return room
    has_threads = db.session.scalar(select(func.count(Thread.id)).where(Thread.room_id == room.id))
    if has_threads:
        raise Invalid("Only a room with no threads yet can change whether posts are attributed: people "
                      "wrote here under the rules they saw.", "non_attributed")
    db.begin_write()
    room = db.session.merge(room)
    room.non_attributed = on
    audit.record("room.visibility_changed", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"non_attributed": on})
    db.session.commit()
    return room


def set_recording_allowed(actor: User, room_id: object, on: object) -> Room:
    """The owners allow a chair to record the room's meetings (labels and non-attribution may still forbid
    it). Turning it off stops no recording under way: the chair does, and everyone sees it."""
    room = services.get_room(actor, room_id)
    if not policy.can_manage_room(actor, room):
        raise Forbidden("Only the room's owners can change this.", "recording_allowed")
    if not isinstance(on, bool):
        raise Invalid("recording_allowed must be true or false.", "recording_allowed")
    if on == room.recording_allowed:
        return room
    db.begin_write()
    room = db.session.merge(room)
    room.recording_allowed = on
    audit.record("room.recording_allowed", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"recording_allowed": on})
    db.session.commit()
    return room
