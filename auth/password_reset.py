"""Self-service password reset by e-mail (issue 14), offered only when SMTP is set (collab/mail.py).

The rules, each proven in tests/test_password_reset.py:
- one answer for every request: the page says the same, with the same status, whether the address has an
  active account or not; the e-mail is sent in the background (collab/tasks.py), so the answer's timing
  does not depend on it either;
- rate-limited per client address and per address asked about (auth/views.py, COLLAB_RESET_LIMIT);
- the link is single-use and expires after RESET_LINK_MINUTES; asking again replaces an earlier link;
- setting the new password ends every session of the account (auth/services.py `reset_password`);
- requests, for an account or for an address with none, are in the audit log.

The link itself is an ordinary PasswordReset row without an issuing administrator; using it is
`auth.services.reset_password`, the same path as an administrator's link.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from auth import audit
from auth.services import find_user_by_email
from auth.models import PasswordReset, User
from collab import mail, tasks
from collab.db import utcnow
from collab.extensions import db
from collab.tokens import digest, new_secret
from collab.urls import external_url

RESET_LINK_MINUTES = 60
ANSWER = ("If that address belongs to an active Collab account, a link to choose a new password is on its way to "
          f"it. The link works once, for {RESET_LINK_MINUTES} minutes. Nothing arrived? Check the spam folder, or "
          "ask your administrator.")


def available() -> bool:
    """Self-service reset exists only where Collab can send e-mail."""
    return mail.enabled()


def request_reset(email: object) -> str:
    """Start a reset for the account with this address, if there is an active one; returns ANSWER either way.
    Bad input (not text, too long) gets the same answer too: there is nothing to tell."""
    address = email.strip().lower()[:254] if isinstance(email, str) else ""
    user = find_user_by_email(address) if address and "@" in address else None
    if user is None or not user.active:
        audit.record_now("auth.password_reset_requested", detail={"email": address, "account": False})
        return ANSWER
    raw = new_secret()
    db.begin_write()
    now = utcnow()
    # One link at a time: asking again makes any earlier, unused self-service link useless.
    db.session.execute(update(PasswordReset).where(
        PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
        PasswordReset.created_by_id.is_(None)).values(used_at=now))
    db.session.add(PasswordReset(token_hash=digest(raw), user_id=user.id, created_by_id=None,
                                 expires_at=now + timedelta(minutes=RESET_LINK_MINUTES)))
    audit.record("auth.password_reset_requested", target_type="user", target_id=user.id,
                 detail={"email": user.email, "account": True})
    db.session.commit()
    link = external_url("auth.reset_password", token=raw)
    tasks.spawn(current_app._get_current_object(), _send, user.id, link)
    return ANSWER


def _send(user_id: int, link: str) -> None:
    user = db.session.get(User, user_id)
    if user is None:
        return
    mail.send(user.email, "Choose a new Collab password",
              f"Hello {user.name},\n\nSomeone (we hope you) asked to reset the password of your Collab account. "
              f"Choose a new one here; the link works once, for {RESET_LINK_MINUTES} minutes:\n{link}\n\n"
              "Setting a new password signs you out everywhere. If you did not ask for this, ignore this e-mail: "
              "your password stays as it is.\n")
