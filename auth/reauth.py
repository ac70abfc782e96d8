"""Re-authentication before sensitive account changes (OWASP ASVS 5.0 V6.4.x / V7.5.1-V7.5.3):
ending sessions, turning two-step sign-in off and changing the e-mail address ask for the
account's password again, even in a signed-in browser.

A correct password is remembered for this browser session for `WINDOW` (so signing out three
old devices in a row asks once), never across sessions: the mark lives in the signed session
cookie next to the session's own key, and a different session (or none) does not count.
Wrong passwords are audited as failed re-authentications and rate-limited by the routes.
"""
from __future__ import annotations

import time

from flask import has_request_context, session

from auth import audit, passwords
from auth.models import User
from auth.session_cookie import current_key
from collab.errors import Invalid

WINDOW_SECONDS = 300
_KEY = "reauth"


def _session_key() -> str | None:
    return current_key()


def recent(user: User) -> bool:
    """Did this browser session confirm the password in the last WINDOW_SECONDS?"""
    if not has_request_context():
        return False
    mark = session.get(_KEY)
    if not isinstance(mark, dict) or mark.get("u") != user.id or mark.get("s") != _session_key():
        return False
    at = mark.get("t")
    return isinstance(at, (int, float)) and 0 <= time.time() - at <= WINDOW_SECONDS


def require(user: User, password: object, *, what: str) -> None:
    """Raise Invalid (field "password") unless `password` is the account's password, or the
    password was confirmed in this browser session within the window. `what` names the action
    in the message ("sign out other devices")."""
    if isinstance(password, str) and password:
        ok, _ = passwords.verify_password(user.password_hash, password)
        if not ok:
            audit.record_now("auth.reauth_failed", actor=user, target_type="user", target_id=user.id,
                             detail={"action": what})
            raise Invalid("That is not your password. Enter your current password to " + what + ".", "password")
        if has_request_context():
            session[_KEY] = {"u": user.id, "s": _session_key(), "t": int(time.time())}
        return
    if recent(user):
        return
    raise Invalid(f"Enter your current password to {what}.", "password")


def forget() -> None:
    if has_request_context():
        session.pop(_KEY, None)
