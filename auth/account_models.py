"""Tables behind sign-in security (issue 7): server-side sessions, two-step
sign-in (TOTP and recovery codes), account lockout, timed suspensions and
site-wide settings.

The logic lives in auth/sessions.py, auth/mfa.py, auth/lockout.py and
auth/suspension.py.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collab.db import Base, utcnow


class UserSession(Base):
    """One signed-in browser. The cookie carries "<user id>:<secret>"; only the
    secret's SHA-256 is stored. `generation` is a digest of the account's
    `session_token` when the session began: rotating that token (deactivation,
    password reset) ends every session at once."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    generation: Mapped[str] = mapped_column(String(16))
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    end_reason: Mapped[str | None] = mapped_column(String(30))

    @property
    def key(self) -> str:
        """A short public handle (a prefix of the secret's digest): names the
        session to live connections without revealing the secret."""
        return self.token_hash[:16]


class UserMfa(Base):
    """An account's TOTP secret (encrypted with a key derived from the secret
    key) and the last time-step accepted, so a code works once only."""

    __tablename__ = "user_mfa"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str | None] = mapped_column(Text)
    pending_secret: Mapped[str | None] = mapped_column(Text)
    pending_at: Mapped[datetime | None] = mapped_column(DateTime)
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCode(Base):
    """A single-use recovery code; 120 random bits, so a SHA-256 is enough to store it."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountLock(Base):
    """Failed sign-ins of one account since its last success, and its lockouts."""

    __tablename__ = "account_locks"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SiteSetting(Base):
    """A setting administrators change in the application (not the environment)."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(Integer)  # no FK: survives account erasure


class AccountSuspension(Base):
    """A site administrator's timed suspension: the account is deactivated until `until`
    (so it cannot sign in, use tokens or keep sockets) and reactivated on its next
    sign-in attempt after that (auth/suspension.py)."""

    __tablename__ = "account_suspensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    until: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime)
