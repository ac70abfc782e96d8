"""Choosing people (issue 14): the people picker's look-up, and adding someone to a room by name or by
e-mail in one step (an account that exists is added; an address with no account is invited, and the
invitation makes them a member when they accept).

Who may be offered is `rooms/policy.py` `people_visible_clause` (adding to a room) or the room's own member
list where its reader sees names (choosing chairs and invitees of a meeting); in a non-attributed room
whoever may not see names gets no names at all. Look-ups are rate-limited per account (collab/limits.py).
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import func, or_, select

from auth import services as accounts
from auth.models import Invitation, User
from collab import validate
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy, services
from rooms.models import ROOM_ROLES, Membership, Room

PURPOSES = ("members", "add")
LIMIT = 10
INVITE_ROLES = ("moderator", "member", "observer")  # an invitation never makes an owner


def _folded(query: object) -> str:
    q = query if isinstance(query, str) else ""
    return validate.clean_text(q)[:60].strip().casefold()


def _name_matches(q: str):
    """Any word of the name starting with what was typed (LIKE, with its wildcards escaped)."""
    esc = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    name = func.lower(User.name)
    return or_(name.like(esc + "%", escape="\\"), name.like("% " + esc + "%", escape="\\"))


def lookup(actor: User, room_id: object, query: object, purpose: object = "members") -> dict[str, Any]:
    """People whose name matches `query`, at most LIMIT, for a picker on one room's pages.
    "members": the room's members (meeting chairs and invitees); "add": people the actor may be shown who
    could be added (those already in the room are marked). `hidden`: the room names nobody to this reader."""
    room = services.get_room(actor, room_id)
    purpose_v = validate.choice(purpose, "for", PURPOSES, label="Purpose")
    q = _folded(query)
    if purpose_v == "add" and not policy.can_invite_to_room(actor, room):
        raise Forbidden("Only the room's owners and moderators can add members.")
    if not policy.sees_names(actor, room):
        return {"people": [], "hidden": True}
    if not q:
        return {"people": [], "hidden": False}
    in_room = select(Membership.user_id).where(Membership.room_id == room.id)
    if purpose_v == "members":
        stmt = select(User).where(User.active.is_(True), User.id.in_(in_room))
    else:
        stmt = select(User).where(policy.people_visible_clause(actor))
    users = list(db.session.scalars(stmt.where(_name_matches(q)).order_by(User.name, User.id).limit(LIMIT)))
    roles = dict(db.session.execute(select(Membership.user_id, Membership.role).where(
        Membership.room_id == room.id, Membership.user_id.in_([u.id for u in users]))).all()) if users else {}
    ranks = policy.sees_member_ranks(actor, room)
    return {"hidden": False, "people": [
        {"id": u.id, "name": u.name, "job_title": u.job_title if ranks else None,
         "organisation": u.organisation.name if u.organisation else None, "role": roles.get(u.id)}
        for u in users]}


def add_or_invite(actor: User, room_id: object, *, user_id: object = None, email: object = None,
                  role: object = "member", kind: object = "iag") -> tuple[str, Optional[Membership],
                                                                         Optional[Invitation], Optional[str]]:
    """One step from the room's members page. With `user_id` (chosen in the picker) or the e-mail address of
    an existing account: that account becomes a member (services.add_member). With an address that has no
    account: an invitation of `kind` that makes its account a member with `role` on accepting, for those
    allowed to invite (policy.can_invite_by_email). Returns ("added", membership, None, None) or
    ("invited", None, invitation, link)."""
    room = services.get_room(actor, room_id)
    if not policy.can_invite_to_room(actor, room):
        raise Forbidden("Only the room's owners and moderators can add members.")
    if user_id not in (None, ""):
        return "added", services.add_member(actor, room.id, user_id=user_id, role=role), None, None
    if isinstance(email, str) and "@" not in email:
        raise Invalid("Choose the person from the list as you type their name, or type their full e-mail "
                      "address.", "email")
    address = validate.email(email, "email")
    existing = accounts.find_user_by_email(address)
    if existing is not None:
        return "added", services.add_member(actor, room.id, user_id=existing.id, role=role), None, None
    return ("invited", None, *invite_to_room(actor, room, address, role=role, kind=kind))


def invite_to_room(actor: User, room: Room, address: str, *, role: object, kind: object) -> tuple[Invitation, str]:
    if not policy.can_invite_by_email(actor, room):
        raise Invalid("No account has that e-mail address, and only administrators can invite new people. "
                      "Ask an administrator to invite them.", "email")
    role_v = validate.choice(role, "role", ROOM_ROLES)
    if role_v not in INVITE_ROLES:
        raise Invalid("An invitation can make someone a moderator, member or observer; make owners once "
                      "they have joined.", "role")
    return accounts.create_invitation(actor, email=address, kind=kind, organisation_id=actor.organisation_id,
                                      room_id=room.id, room_role=role_v)
