"""Whether an account has, or must set up, two-step sign-in: the questions
sign-in, sessions and live connections ask. Read-only, and apart from
auth/mfa.py (enrolment, codes, the policy setting), so that auth/sessions.py
can ask them while auth/mfa.py ends sessions through auth/sessions.py."""
from __future__ import annotations

import time
from itertools import chain

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

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


# The site's policy is asked by every request and socket event (twice or three times for an API vote), and
# with no row saved (the default, "off") every ask was a query. This process remembers the answer for
# POLICY_TRUST_SECONDS; any change this process makes to site settings (through the ORM, any session)
# forgets it at once, on flush; another process's change (the CLI, a second server) is seen within those
# seconds, as remembered tokens are (collab/api.py).
POLICY_TRUST_SECONDS = 2.0
_CACHE = "collab_mfa_policy"
_generation = 0


def _is_setting(obj: object) -> bool:
    return isinstance(obj, SiteSetting)


@event.listens_for(Session, "after_flush")
def _setting_flush(session: Session, _ctx) -> None:
    global _generation
    if any(_is_setting(o) for o in chain(session.new, session.dirty, session.deleted)):
        _generation += 1


@event.listens_for(Session, "do_orm_execute")
def _setting_bulk_write(state) -> None:
    global _generation
    table = getattr(state.statement, "table", None)
    if not state.is_select and getattr(table, "name", None) == SiteSetting.__tablename__:
        _generation += 1


def policy() -> str:
    hit = current_app.extensions.get(_CACHE)
    if hit is not None and hit[0] == _generation and hit[1] > time.monotonic():
        return hit[2]
    generation = _generation
    row = db.session.get(SiteSetting, POLICY_KEY)
    value = row.value if row and row.value in POLICIES else "off"
    current_app.extensions[_CACHE] = (generation, time.monotonic() + POLICY_TRUST_SECONDS, value)
    return value


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
