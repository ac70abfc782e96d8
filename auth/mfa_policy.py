"""Whether an account has, or must set up, two-step sign-in: the questions
sign-in, sessions and live connections ask. Read-only, and apart from
auth/mfa.py (enrolment, codes, the policy setting), so that auth/sessions.py
can ask them while auth/mfa.py ends sessions through auth/sessions.py."""
from __future__ import annotations

from auth.account_models import SiteSetting, UserMfa
from auth.models import User
from collab.extensions import db

POLICY_KEY = "mfa_required"
POLICIES = {
    "off": "Optional for everyone",
    "staff": "Required for police staff accounts and administrators",
    "all": "Required for everyone",
}


def _row(user_id: int, *, fresh: bool = False) -> UserMfa | None:
    return db.session.get(UserMfa, user_id, populate_existing=fresh)


def enabled(user: User) -> bool:
    row = _row(user.id)
    return bool(row and row.enabled_at and row.secret)


def enabled_at(user: User):
    row = _row(user.id)
    return row.enabled_at if row and row.secret else None


def policy() -> str:
    row = db.session.get(SiteSetting, POLICY_KEY)
    return row.value if row and row.value in POLICIES else "off"


def required_for(user: User, value: str | None = None) -> bool:
    value = value or policy()
    if value == "all":
        return True
    return value == "staff" and (user.kind == "staff" or user.is_admin)


def must_enrol(user: User) -> bool:
    return required_for(user) and not enabled(user)


def second_step_needed(user: User) -> bool:
    """After the password: is a code (or first enrolment) still needed?"""
    return enabled(user) or required_for(user)
