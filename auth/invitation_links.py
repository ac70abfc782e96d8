"""Open invitations after they are made: their link shown again (to copy) and their withdrawal.

Only a hash of an invitation's secret is stored, as before. The secret itself is derived from the
invitation (its id and creation time) with the server's SECRET_KEY, so the server can show the same link
again without keeping it: the database alone does not give the link away. An invitation made before
this (a random secret) gets a derived one the first time its link is asked for, and its old link stops
working (the page says so). Withdrawn invitations stay (the audit trail names them) but no longer work.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app
from sqlalchemy import select

from auth import audit
from auth import permissions as perm
from auth.models import Invitation, User
from collab import validate
from collab.db import utcnow
from collab.errors import Conflict, NotFound
from collab.extensions import db
from collab.tokens import digest
from collab.urls import external_url


def token_for(inv: Invitation) -> str:
    """The invitation's secret: HMAC-SHA256 of its id and creation time under SECRET_KEY."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    msg = f"collab-invitation:{inv.id}:{inv.created_at.isoformat()}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode().rstrip("=")


def _open_invitation(actor: User, invitation_id: object) -> Invitation:
    """An invitation still open that `actor` may manage (the same people who see it listed)."""
    iid = validate.int_id(invitation_id, "invitation_id")
    inv = db.session.scalar(select(Invitation).where(Invitation.id == iid))
    if inv is None or not perm.can_invite_accounts(actor, inv.organisation_id):
        raise NotFound("That invitation was not found.")
    if inv.used_at is not None or inv.revoked_at is not None or inv.expires_at <= utcnow():
        raise Conflict("That invitation is no longer open.")
    return inv


def link_again(actor: User, invitation_id: object) -> tuple[Invitation, str, bool]:
    """The invitation's link, and whether it is a new one (an older invitation's first time here)."""
    inv = _open_invitation(actor, invitation_id)
    raw = token_for(inv)
    if hmac.compare_digest(digest(raw), inv.token_hash):
        return inv, external_url("auth.accept_invite", token=raw), False
    db.begin_write()
    inv = _open_invitation(actor, inv.id)
    inv.token_hash = digest(raw)
    audit.record("account.invitation_relinked", actor=actor, target_type="invitation", target_id=inv.id)
    db.session.commit()
    return inv, external_url("auth.accept_invite", token=raw), True


def revoke(actor: User, invitation_id: object) -> Invitation:
    """Withdraw an open invitation: its link stops working at once."""
    db.begin_write()
    try:
        inv = _open_invitation(actor, invitation_id)
        inv.revoked_at = utcnow()
        audit.record("account.invitation_revoked", actor=actor, target_type="invitation", target_id=inv.id,
                     detail={"email": inv.email})
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return inv
