"""Who may administer, invite, suspend or erase an account: the rules about accounts.

Everything about rooms and what is derived from them (posts, files, meetings, search
hits) is decided in `rooms/policy.py`.
"""
from __future__ import annotations

from typing import Optional

from auth.models import User


def _signed_in(user: Optional[User]) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.active


def can_suspend_account(user: Optional[User], target: User) -> bool:
    return can_administer(user) and target.id != user.id and not target.is_admin


def can_administer(user: Optional[User]) -> bool:
    return _signed_in(user) and user.is_admin


def can_invite_accounts(user: Optional[User], organisation_id: Optional[int] = None) -> bool:
    """Site administrators invite anyone; organisation admins invite into their organisation."""
    if not _signed_in(user):
        return False
    if user.is_admin:
        return True
    return user.org_admin and organisation_id is not None and organisation_id == user.organisation_id


def can_erase_account(user: Optional[User], target: User) -> bool:
    """Erasing an account (data protection): site administrators, never their own account."""
    return can_administer(user) and target.id != user.id


def can_manage_account(user: Optional[User], target: User) -> bool:
    if not _signed_in(user) or target.id == user.id:
        return False
    if user.is_admin:
        return True
    return user.org_admin and target.organisation_id == user.organisation_id and not target.is_admin


def can_change_account_standing(user: Optional[User], target: User) -> bool:
    """Moving someone to another organisation or changing their site role: site administrators only (an
    organisation administrator changes kind and job title within their organisation: can_manage_account)."""
    return can_administer(user) and can_manage_account(user, target)
