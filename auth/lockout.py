"""Account lockout: after LOCK_AFTER failed sign-ins in a row (wrong password or
wrong second-step code) an account is locked; each lockout lasts twice as long
as the one before (COLLAB_LOCKOUT_MINUTES, then double, ...), until a
successful sign-in clears the count. The account holder is e-mailed when SMTP
is set. The per-address and per-account request limits (Flask-Limiter,
COLLAB_LOGIN_LIMIT) stay in force as well.

The sign-in page never says an account is locked: it gives every refusal the same
answer (auth.services.SIGN_IN_REFUSED), or anyone could learn which addresses have
accounts by locking them. Only the second step (/login/code, reached with the right
password) says so, with AccountLocked; the e-mail tells the owner."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from auth import audit
from auth.account_models import AccountLock
from auth.models import User
from collab import mail, timezones
from collab.db import utcnow
from collab.errors import ServiceError
from collab.extensions import db

LOCK_AFTER = 10
MAX_DOUBLINGS = 12          # 15 minutes doubled 12 times is about six weeks


def _when(until: datetime, zone: str | None = None) -> str:
    """"14:05 BST on Sunday 07 June 2026"; on the sign-in page (nobody signed in yet) in the site's zone."""
    zone = zone or timezones.site_zone_name()
    return f"{timezones.fmt(until, zone, 'clock')} on {timezones.fmt(until, zone, 'longdate')}"


class AccountLocked(ServiceError):
    status = 423
    code = "locked"

    def __init__(self, until: datetime) -> None:
        super().__init__(
            f"This account is locked after {LOCK_AFTER} failed sign-ins. Try again after "
            f"{_when(until)}, or ask an administrator for a password reset link.")
        self.until = until


def base_period() -> timedelta:
    return timedelta(minutes=float(current_app.config.get("LOCKOUT_MINUTES", 15)))


def _row(user_id: int) -> AccountLock | None:
    return db.session.scalar(select(AccountLock).where(AccountLock.user_id == user_id)
                             .with_for_update().execution_options(populate_existing=True))


def locked_until(user: User) -> datetime | None:
    row = db.session.get(AccountLock, user.id, populate_existing=True)
    if row and row.locked_until and row.locked_until > utcnow():
        return row.locked_until
    return None


def check(user: User) -> None:
    """Raise AccountLocked while the account is locked (the password is not even checked)."""
    until = locked_until(user)
    if until:
        raise AccountLocked(until)


def failed(user: User, reason: str) -> datetime | None:
    """Count a failed sign-in (audited). Returns the lock's end if this failure locked the account."""
    db.begin_write()
    audit.record("auth.login_failed", target_type="user", target_id=user.id,
                 detail={"email": user.email, "reason": reason})
    row = _row(user.id)
    if row is None:
        row = AccountLock(user_id=user.id, failures=0, lockouts=0)
        db.session.add(row)
    now = utcnow()
    if row.locked_until and row.locked_until > now:   # a code typed while a lock began elsewhere
        db.session.commit()
        return None
    row.failures = (row.failures or 0) + 1
    row.updated_at = now
    until = None
    if row.failures >= LOCK_AFTER:
        period = base_period() * (2 ** min(row.lockouts or 0, MAX_DOUBLINGS))
        until = now + period
        row.locked_until, row.failures, row.lockouts = until, 0, (row.lockouts or 0) + 1
        audit.record("auth.locked", target_type="user", target_id=user.id,
                     detail={"email": user.email, "until": until.isoformat(timespec="seconds"),
                             "minutes": int(period.total_seconds() // 60), "lockout": row.lockouts})
    db.session.commit()
    if until and mail.enabled():
        mail.send(user.email, "Your Collab account has been locked",
                  f"Hello {user.name},\n\nThere were {LOCK_AFTER} failed attempts to sign in to your Collab account, "
                  f"so it is locked until {_when(until, timezones.zone_name_for(user))}.\n\n"
                  "Until then the sign-in page answers \"Those details do not match an active account, or there "
                  "were too many attempts\", even to the right password. If this was you, wait until then and "
                  "sign in again, or ask your administrator for a password reset link, which ends the lock. "
                  "If it was not, someone may be trying to guess your password: tell your administrator, and "
                  "change your password once you are signed in.\n")
    return until


def reset_in_tx(user: User) -> None:
    """A successful sign-in (inside the caller's transaction) clears the count and the doubling."""
    row = _row(user.id)
    if row is not None and (row.failures or row.lockouts or row.locked_until):
        row.failures, row.lockouts, row.locked_until, row.updated_at = 0, 0, None, utcnow()


def unlock_in_tx(user_id: int) -> None:
    """A password reset by link ends a lock (the person proved who they are another way)."""
    row = _row(user_id)
    if row is not None:
        row.failures, row.locked_until, row.updated_at = 0, None, utcnow()
