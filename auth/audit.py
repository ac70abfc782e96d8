"""The audit log: an append-only record of security and governance events.

`record(...)` adds an entry to the current transaction, so the entry and the
change it describes commit (or roll back) together; `record_now(...)` is for
events with no other write, such as a failed sign-in. Nothing in the
application updates or deletes entries, and database triggers refuse it.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Optional

from flask import has_request_context, request
from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from collab import logs, metrics
from collab.db import Base, utcnow
from collab.extensions import db

ACTIONS = {
    "auth.login": "Signed in",
    "auth.login_failed": "Sign-in failed",
    "auth.locked": "Account locked after failed sign-ins",
    "auth.logout": "Signed out",
    "auth.mfa_enabled": "Turned on two-step sign-in",
    "auth.mfa_disabled": "Turned off two-step sign-in",
    "auth.recovery_code_used": "Used a recovery code",
    "auth.recovery_codes_replaced": "Replaced the two-step recovery codes",
    "auth.password_changed": "Changed password",
    "auth.password_reset_issued": "Issued a password reset link",
    "auth.password_reset": "Reset password with a link",
    "auth.password_reset_requested": "Asked for a password reset link by e-mail",
    "auth.sessions_ended": "Ended sessions",
    "auth.reauth_failed": "Gave a wrong password to confirm a sensitive change",
    "account.email_changed": "Changed an account's e-mail address",
    "account.updated": "Changed an account's kind, organisation, job title or site role",
    "account.invited": "Created an invitation",
    "account.invitation_revoked": "Withdrew an invitation",
    "account.invitation_relinked": "Gave an older invitation a new link (its first link stopped working)",
    "account.created": "Created an account",
    "account.deactivated": "Deactivated an account",
    "account.reactivated": "Reactivated an account",
    "account.suspended": "Suspended an account",
    "account.erased": "Erased an account",
    "account.exported": "Downloaded account data",
    "room.created": "Created a room",
    "room.visibility_changed": "Changed a room's visibility",
    "room.recording_allowed": "Allowed or stopped allowing meetings in a room to be recorded",
    "meeting.recording_started": "Started recording a meeting",
    "meeting.recording_stopped": "Stopped recording a meeting",
    "room.label_changed": "Changed a room's confidentiality label",
    "room.archived": "Archived or reopened a room",
    "member.added": "Added a room member",
    "member.role_changed": "Changed a member's role",
    "member.removed": "Removed a room member",
    "moderation.flagged": "Flagged a post",
    "moderation.hidden": "Hid a post",
    "moderation.restored": "Restored a post",
    "moderation.deleted": "Deleted a post as moderator",
    "moderation.muted": "Muted a member in a room",
    "moderation.identity_revealed": "Revealed an author in a non-attributed room",
    "meeting.names_shown": "Was shown who is who in a meeting of a non-attributed room",
    "post.deleted": "Deleted own post",
    "retention.purged": "Deleted posts past the room's retention period",
    "audit.exported": "Exported the audit log",
    "site.mfa_policy": "Changed who must use two-step sign-in",
    "room.retention_changed": "Changed a room's retention period",
}


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)  # no FK: survives account erasure
    actor_name: Mapped[Optional[str]] = mapped_column(String(254))
    target_type: Mapped[Optional[str]] = mapped_column(String(30))
    target_id: Mapped[Optional[int]] = mapped_column(Integer)
    room_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    ip: Mapped[Optional[str]] = mapped_column(String(64))
    user_agent: Mapped[Optional[str]] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text, default="{}")


def _entry(action: str, actor: Any, target_type: Optional[str], target_id: Optional[int], room_id: Optional[int],
           detail: Optional[dict[str, Any]]) -> AuditEvent:
    ip = ua = None
    if has_request_context():
        ip = request.remote_addr
        ua = (request.user_agent.string or "")[:300] or None
    actor_id = getattr(actor, "id", None)
    actor_name = getattr(actor, "email", None) if actor_id else None
    return AuditEvent(action=action, actor_id=actor_id, actor_name=actor_name, target_type=target_type,
                      target_id=target_id, room_id=room_id, ip=ip, user_agent=ua,
                      detail=json.dumps(detail or {}, default=str, sort_keys=True))


def record(action: str, *, actor: Any = None, target_type: Optional[str] = None, target_id: Optional[int] = None,
           room_id: Optional[int] = None, detail: Optional[dict[str, Any]] = None) -> None:
    """Add an entry to the current write transaction (the caller commits)."""
    db.session.add(_entry(action, actor, target_type, target_id, room_id, detail))
    _observe(action, actor, target_id, detail)


# Audited actions that are also counted and logged for monitoring: every sign-in path (password, second
# step, first set-up) ends in one of these, so they are counted here once. Ids only, never the e-mail.
_OBSERVED = {"auth.login": ("ok", "login"), "auth.login_failed": ("failed", "login_failed"),
             "auth.locked": ("locked", "lockout")}


def _observe(action: str, actor: Any, target_id: Optional[int], detail: Optional[dict[str, Any]]) -> None:
    if action not in _OBSERVED:
        return
    result, name = _OBSERVED[action]
    metrics.LOGINS.labels(result=result).inc()
    if action == "auth.locked":
        metrics.LOCKOUTS.inc()
    why = (detail or {}).get("reason")
    logs.event(name, user_id=getattr(actor, "id", None) or target_id, **({"reason": why} if why else {}))


def record_now(action: str, **kwargs: Any) -> None:
    """Write an entry in its own transaction."""
    db.begin_write()
    record(action, **kwargs)
    db.session.commit()


def query(*, action: Optional[str] = None, actor_id: Optional[int] = None, room_id: Optional[int] = None,
          since: Optional[datetime] = None, until: Optional[datetime] = None, limit: int = 200,
          offset: int = 0) -> list[AuditEvent]:
    q = select(AuditEvent)
    if action:
        q = q.where(AuditEvent.action == action)
    if actor_id:
        q = q.where(AuditEvent.actor_id == actor_id)
    if room_id:
        q = q.where(AuditEvent.room_id == room_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    if until:
        q = q.where(AuditEvent.at < until)
    return list(db.session.scalars(q.order_by(AuditEvent.id.desc()).offset(offset).limit(limit)))
