"""Administering accounts after they joined (issue 14): finding them in the accounts table (search and
filters) and changing a person's kind, organisation, job title and site role, every change audited.

Who may do what is `auth/permissions.py`: site administrators change anyone but themselves; organisation
administrators change the kind and job title of people of their own organisation (never its administrators,
never the organisation or the site role). A change of kind, organisation or site role changes what the
person may read (organisation rooms are read by staff of the organisation), so it ends every session and
live connection of the account (`account.changed`, rooms/revocation.py): they sign in again and get
exactly the new rights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import func, or_, select

from auth import audit
from auth import permissions as perm
from auth import sessions as user_sessions
from auth.models import ACCOUNT_KINDS, SITE_ROLES, Organisation, User
from collab import events, validate
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db

STATUSES = {"active": "Active", "deactivated": "Deactivated"}
PAGE_SIZE = 100


@dataclass(frozen=True)
class AccountFilter:
    """What the accounts table shows: text typed (name, e-mail or job title) and three filters."""

    q: str = ""
    kind: str = ""
    organisation_id: Optional[int] = None
    status: str = ""
    role: str = ""

    @classmethod
    def from_args(cls, args) -> "AccountFilter":
        """Read from the query string; anything not understood is ignored (a filter, not a form)."""
        q = args.get("q", "")
        q = q.strip()[:100] if isinstance(q, str) else ""
        org = args.get("organisation_id", "")
        org_id = int(org) if isinstance(org, str) and validate.digits(org) and 0 < len(org) < 10 else None

        def pick(name: str, options) -> str:
            value = args.get(name)
            return value if isinstance(value, str) and value in options else ""

        return cls(q=q, kind=pick("kind", ACCOUNT_KINDS), organisation_id=org_id,
                   status=pick("status", STATUSES), role=pick("role", SITE_ROLES))

    @property
    def active(self) -> bool:
        return bool(self.q or self.kind or self.organisation_id or self.status or self.role)


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_accounts(actor: User, f: AccountFilter) -> tuple[list[User], int]:
    """The accounts `actor` administers that match `f` (organisation administrators: their organisation
    only), by name, at most PAGE_SIZE of them, and how many matched in all."""
    q = select(User)
    if not actor.is_admin:
        q = q.where(User.organisation_id == actor.organisation_id)
    if f.q:
        pattern = _like(f.q)
        q = q.where(or_(func.lower(User.name).like(pattern, escape="\\"),
                        func.lower(User.email).like(pattern, escape="\\"),
                        func.lower(func.coalesce(User.job_title, "")).like(pattern, escape="\\")))
    if f.kind:
        q = q.where(User.kind == f.kind)
    if f.organisation_id:
        q = q.where(User.organisation_id == f.organisation_id)
    if f.status:
        q = q.where(User.active.is_(f.status == "active"))
    if f.role:
        q = q.where(User.role == f.role)
    total = db.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    return list(db.session.scalars(q.order_by(User.name, User.id).limit(PAGE_SIZE))), total


def account_to_edit(actor: User, target_id: object) -> User:
    target = db.session.get(User, validate.int_id(target_id, "user_id"))
    if target is None or not perm.can_manage_account(actor, target):
        raise NotFound("That account was not found.")
    return target


def update_account(actor: User, target_id: object, *, kind: object, organisation_id: object,
                   job_title: object, role: object = None) -> User:
    """Change what an administrator may change about someone who has joined; audited with before and after.
    Nothing changed: nothing written."""
    target = account_to_edit(actor, target_id)
    kind_v = validate.choice(kind, "kind", ACCOUNT_KINDS, label="Kind of account")
    title_v = validate.text(job_title, "job_title", max_len=120, required=False, label="Rank or job title") or None
    org_id = validate.int_id(organisation_id, "organisation_id", required=False) if organisation_id not in (
        None, "") else None
    role_v = target.role if role in (None, "") else validate.choice(role, "role", SITE_ROLES, label="Site role")
    if org_id is not None and db.session.get(Organisation, org_id) is None:
        raise Invalid("That organisation does not exist.", "organisation_id")
    if not perm.can_change_account_standing(actor, target) and (
            org_id != target.organisation_id or role_v != target.role):
        raise Forbidden("Only site administrators can move someone to another organisation or change a site role.",
                        "organisation_id" if org_id != target.organisation_id else "role")
    before = {"kind": target.kind, "organisation_id": target.organisation_id, "job_title": target.job_title,
              "role": target.role}
    after = {"kind": kind_v, "organisation_id": org_id, "job_title": title_v, "role": role_v}
    changed = {k: {"from": before[k], "to": after[k]} for k in before if before[k] != after[k]}
    if not changed:
        return target
    db.begin_write()
    target = db.session.get(User, target.id)
    target.kind, target.organisation_id, target.job_title, target.role = kind_v, org_id, title_v, role_v
    db.session.flush()
    db.session.expire(target, ["organisation"])
    audit.record("account.updated", actor=actor, target_type="user", target_id=target.id, detail=changed)
    if set(changed) & {"kind", "organisation_id", "role"}:  # what they may read changed: sign in afresh
        # every connection (cookie and token) and media session ends after the commit (rooms/revocation.py)
        events.queue(db.session, "account.changed", {"user_id": target.id, "reason": "account_changed"})
        target.rotate_session_token()
        user_sessions.end_others_in_tx(target, keep=None, reason="account_changed", actor=actor, disconnect=False)
    db.session.commit()
    return target
