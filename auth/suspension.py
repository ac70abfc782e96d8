"""Timed account suspension (issue 7): a site administrator deactivates an account
until a date. It cannot sign in, use tokens or keep live connections meanwhile (the
ordinary deactivation does all that); its next sign-in attempt after the date
reactivates it, unless an administrator deactivated it since."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from auth import audit
from auth import permissions as account_rules
from auth import sessions as user_sessions
from auth.account_models import AccountSuspension
from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Invalid, NotFound
from collab.extensions import db

MAX_SUSPEND_DAYS = 365


def suspend_account(actor: User, user_id: object, days: object, reason: object) -> AccountSuspension:
    """Deactivate an account for `days` days, ending every session and live connection of it."""
    target = db.session.get(User, validate.int_id(user_id, "user_id"))
    if target is None or not account_rules.can_suspend_account(actor, target):
        raise NotFound()
    raw = days.strip() if isinstance(days, str) else days
    if isinstance(raw, str) and validate.digits(raw) and len(raw) < 9:
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_SUSPEND_DAYS:
        raise Invalid(f"Choose a suspension of 1 to {MAX_SUSPEND_DAYS} days.", "days")
    reason_v = validate.text(reason, "reason", max_len=500, required=True, multiline=True, label="Reason")
    db.begin_write()
    s = AccountSuspension(user_id=target.id, until=utcnow() + timedelta(days=raw), reason=reason_v,
                          created_by_id=actor.id)
    db.session.add(s)
    if target.active:  # its live connections, token ones too, end after the commit (rooms/revocation.py)
        events.queue(db.session, "account.changed", {"user_id": target.id, "reason": "deactivated"})
    target.active = False
    user_sessions.rotate_in_tx(target)
    user_sessions.end_others_in_tx(target, keep=None, reason="suspended", actor=actor, disconnect=False)
    db.session.flush()
    audit.record("account.suspended", actor=actor, target_type="user", target_id=target.id,
                 detail={"days": raw, "until": s.until, "reason": reason_v})
    db.session.commit()
    return s


def current_suspension(user: User) -> AccountSuspension | None:
    return db.session.scalar(select(AccountSuspension).where(
        AccountSuspension.user_id == user.id, AccountSuspension.lifted_at.is_(None))
        .order_by(AccountSuspension.id.desc()).limit(1))


def lift_if_due(user: User | None) -> bool:
    """Reactivate an account whose suspension has run out (unless an administrator deactivated it since)."""
    if user is None or user.active:
        return False
    s = current_suspension(user)
    if s is None or s.until > utcnow():
        return False
    later = db.session.scalar(select(audit.AuditEvent.id).where(
        audit.AuditEvent.action == "account.deactivated", audit.AuditEvent.target_id == user.id,
        audit.AuditEvent.at > s.created_at).limit(1))
    db.begin_write()
    s = db.session.merge(s)
    s.lifted_at = utcnow()
    if later is None:
        user = db.session.merge(user)
        user.active = True
        audit.record("account.reactivated", actor=None, target_type="user", target_id=user.id,
                     detail={"suspension_ended": s.id})
    db.session.commit()
    return later is None
