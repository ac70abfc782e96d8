"""Bulk invitations (issue 14): an IAG of ~80 volunteers invited from a CSV file or a pasted list, with a
preview that says, row by row, what will happen or what is wrong, and then one step that creates them all.

What is accepted: one person per line, the e-mail address in any column, optionally a name and a kind
("IAG volunteer", "staff", "guest"...) in others; commas, semicolons or tabs between columns; a header
line ("email, name, kind") is skipped; "Ann Able <ann@example.org>" works too. Bounded: MAX_ROWS lines,
MAX_BYTES of text, so a huge file is refused with a message before any work.

The preview and the creation run the same checks (`preview`): the server never trusts what it showed
before. Creating writes every valid row in one transaction (an invitation, or, for someone who already
has an account and a room was chosen, the membership), audited like single invitations, then sends the
e-mails. Rows with errors are left out and listed again.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import func, select

from auth import services as accounts
from auth.models import ACCOUNT_KINDS, Invitation, User
from auth import audit
from auth import permissions as perm
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy, services
from rooms.models import Membership, Room
from rooms.people import INVITE_ROLES

MAX_ROWS = 500
MAX_BYTES = 200_000
_ANGLE = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>]+)>\s*$")
_KIND_WORDS = {**{k: k for k in ACCOUNT_KINDS}, **{v.casefold(): k for k, v in ACCOUNT_KINDS.items()},
               "police": "staff", "volunteer": "iag", "iag member": "iag"}


@dataclass
class Row:
    line: int
    email: str
    name: str = ""
    kind: str = ""
    action: str = "invite"   # invite | add (an existing account, into the room) | error
    message: str = ""
    link: Optional[str] = None


@dataclass
class Plan:
    rows: list[Row] = field(default_factory=list)
    room: Optional[Room] = None
    role: Optional[str] = None   # the role in `room` everyone gets

    @property
    def valid(self) -> list[Row]:
        return [r for r in self.rows if r.action != "error"]

    @property
    def errors(self) -> list[Row]:
        return [r for r in self.rows if r.action == "error"]


def may_bulk_invite(actor: Optional[User]) -> bool:
    """Site administrators, and organisation administrators into their organisation."""
    return perm.can_invite_accounts(actor, getattr(actor, "organisation_id", None) or None)


def _cells(text: str) -> list[tuple[int, list[str]]]:
    """Each non-empty line's cells; the separator is decided per line (a pasted list mixes them)."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        delimiter = "\t" if "\t" in line else (";" if line.count(";") > line.count(",") else ",")
        cells = next(csv.reader([line], delimiter=delimiter), [])
        cells = [c.strip() for c in cells if c and c.strip()]
        if cells:
            out.append((n, cells))
    return out


def parse(text: object) -> list[Row]:
    """Rows from the pasted or uploaded text; structural problems (no address, too many lines) are rows
    marked as errors, never exceptions, so the preview can show them all."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid("Paste a list of e-mail addresses or choose a CSV file.", "people")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise Invalid(f"That list is too long: at most {MAX_BYTES // 1000} KB and {MAX_ROWS} people at a time.",
                      "people")
    text = text.lstrip("\ufeff")
    lines = _cells(text)
    if len(lines) > MAX_ROWS + 1:
        raise Invalid(f"That list has {len(lines)} lines: invite at most {MAX_ROWS} people at a time.", "people")
    rows = []
    for n, cells in lines:
        emails = [c for c in cells if "@" in c]
        if not emails:
            if n == lines[0][0] and any(c.casefold() in ("email", "e-mail", "email address") for c in cells):
                continue  # the header line
            rows.append(Row(line=n, email="", name=" ".join(cells)[:120], action="error",
                            message="No e-mail address on this line."))
            continue
        m = _ANGLE.match(emails[0])
        email, name = (m.group("email"), m.group("name").strip('" ')) if m else (emails[0], "")
        kind = ""
        for c in cells:
            if c in emails:
                continue
            if c.casefold() in _KIND_WORDS and not kind:
                kind = _KIND_WORDS[c.casefold()]
            elif not name:
                name = c
        rows.append(Row(line=n, email=email.strip(), name=name[:120], kind=kind))
    if len(rows) > MAX_ROWS:
        raise Invalid(f"That list has {len(rows)} people: invite at most {MAX_ROWS} at a time.", "people")
    return rows


def preview(actor: User, text: object, *, kind: object = "iag", room_id: object = None,
            role: object = "member") -> Plan:
    """Check every row; nothing is written."""
    if not may_bulk_invite(actor):
        raise Forbidden("Only administrators can invite people.")
    default_kind = validate.choice(kind, "kind", ACCOUNT_KINDS, label="Kind of account")
    room = None
    if room_id not in (None, ""):
        room = services.get_room(actor, room_id)
        if not policy.can_invite_by_email(actor, room):
            raise Forbidden("You may not add people to that room.", "room_id")
        role_v = validate.choice(role, "role", INVITE_ROLES, label="Role in the room")
    else:
        role_v = None
    plan = Plan(rows=parse(text), room=room, role=role_v)
    addresses = []
    for r in plan.rows:
        if r.action == "error":
            continue
        try:
            r.email = validate.email(r.email)
        except Invalid:
            r.action, r.message = "error", "This is not a valid e-mail address."
            continue
        r.kind = r.kind or default_kind
        addresses.append(r.email)
    existing = {u.email: u for u in db.session.scalars(select(User).where(User.email.in_(addresses)))} if addresses else {}
    open_invites = set(db.session.scalars(select(func.lower(Invitation.email)).where(
        func.lower(Invitation.email).in_(addresses), Invitation.used_at.is_(None),
        Invitation.expires_at > utcnow()))) if addresses else set()
    members = set(db.session.scalars(select(Membership.user_id).where(
        Membership.room_id == room.id))) if room is not None else set()
    seen: set[str] = set()
    for r in plan.rows:
        if r.action == "error":
            continue
        user = existing.get(r.email)
        if r.email in seen:
            r.action, r.message = "error", "This address is already further up the list."
        elif user is not None and room is None:
            r.action, r.message = "error", f"{user.name} already has an account."
        elif user is not None and user.id in members:
            r.action, r.message = "error", f"{user.name} is already a member of the room."
        elif user is not None and not user.active:
            r.action, r.message = "error", "This account is deactivated."
        elif user is not None:
            r.action, r.name = "add", user.name
            r.message = f"Has an account: will be added to the room as {role_v}."
        elif r.email in open_invites:
            r.action, r.message = "error", "Already invited: the open invitation is on the People page."
        else:
            r.message = f"Will be invited as {ACCOUNT_KINDS[r.kind]}" + (f", {role_v} of the room." if room else ".")
        seen.add(r.email)
    return plan


def create(actor: User, text: object, *, kind: object = "iag", room_id: object = None,
           role: object = "member") -> Plan:
    """Check again (preview) and write every valid row in one transaction; then send the e-mails."""
    plan = preview(actor, text, kind=kind, room_id=room_id, role=role)
    role_v = plan.role
    if not plan.valid:
        raise Invalid("No row of the list can be invited: see the reason beside each.", "people")
    org_id = actor.organisation_id
    db.begin_write()
    sent = []
    for r in plan.valid:
        if r.action == "add":
            user = accounts.find_user_by_email(r.email)
            db.session.add(Membership(room_id=plan.room.id, user_id=user.id, role=role_v))
            audit.record("member.added", actor=actor, target_type="user", target_id=user.id, room_id=plan.room.id,
                         detail={"role": role_v, "bulk": True})
            services.record_event(plan.room.id, "member.added",
                                  {"user": {"id": user.id, "name": user.name}, "role": role_v})
            r.message = f"Added to the room as {role_v}."
            continue
        fields = accounts.check_invitation(actor, email=r.email, kind=r.kind, organisation_id=org_id)
        inv, r.link = accounts.add_invitation_in_tx(actor, fields, room_id=plan.room.id if plan.room else None,
                                                     room_role=role_v)
        sent.append((inv, r.link))
        r.message = "Invited."
    db.session.commit()
    for inv, link in sent:
        accounts.send_invitation(actor, inv, link)
    return plan
