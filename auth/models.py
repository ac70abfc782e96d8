"""Accounts and organisations."""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from collab.db import Base, utcnow

ORG_KINDS = {"force": "Police force", "pcc": "PCC office", "national": "National body", "other": "Other"}
ACCOUNT_KINDS = {"staff": "Police staff", "iag": "IAG volunteer", "guest": "Guest"}
SITE_ROLES = ("admin", "member")
SITE_ROLE_LABELS = {"member": "Member", "admin": "Administrator"}
# Display preferences (issue 14), applied on every page as classes on <html> (base.html).
TEXT_SIZES = {"default": "Default", "large": "Large", "larger": "Larger"}


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="force")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r}>"


def _session_token() -> str:
    return secrets.token_urlsafe(24)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10), default="staff")
    role: Mapped[str] = mapped_column(String(10), default="member")
    org_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    organisation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    job_title: Mapped[Optional[str]] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Rotated to end every session and remember-me cookie at once (auth/sessions.py).
    session_token: Mapped[str] = mapped_column(String(64), default=_session_token)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # The tz database name times are shown in (collab/timezones.py); None: the site's COLLAB_TIME_ZONE.
    time_zone: Mapped[Optional[str]] = mapped_column(String(64))
    # Text size (TEXT_SIZES) and the high-contrast theme this account reads with (auth/preferences.py).
    text_size: Mapped[str] = mapped_column(String(10), default="default")
    high_contrast: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether meeting pages show captions to this account (auth/preferences.py set_captions).
    captions: Mapped[bool] = mapped_column(Boolean, default=False)

    organisation: Mapped[Optional[Organisation]] = relationship(lazy="joined")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    # The server-side session this object was just signed in with, "<id>:<secret>" (auth/sessions.py `sign_in`
    # sets it). Not a column: Flask-Login's login_user reads it once, through get_id, to put it in the cookies.
    login_id = None

    def get_id(self) -> str | None:
        """Flask-Login's id for the cookies: the session `auth.sessions.sign_in` started (a plain getter;
        starting the session, which writes a row, is sign_in's business)."""
        return self.login_id

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def kind_label(self) -> str:
        return ACCOUNT_KINDS.get(self.kind, self.kind)

    def rotate_session_token(self) -> None:
        self.session_token = _session_token()

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class Invitation(Base):
    """A single-use link that lets one person create an account."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[Optional[str]] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(10), default="staff")
    role: Mapped[str] = mapped_column(String(10), default="member")
    org_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    organisation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"))
    room_id: Mapped[Optional[int]] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    # The role in that room the new account gets (None: member); set by rooms/invitations.py.
    room_role: Mapped[Optional[str]] = mapped_column(String(10))
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    used_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime)   # withdrawn (auth/invitation_links.py)

    organisation: Mapped[Optional[Organisation]] = relationship(lazy="joined")
    created_by: Mapped[Optional[User]] = relationship(foreign_keys=[created_by_id])


class PasswordReset(Base):
    """A single-use, expiring link to set a new password: issued by an administrator, or asked for by
    its owner by e-mail (created_by_id None; auth/password_reset.py)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[Optional[datetime]] = mapped_column(DateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ApiToken(Base):
    """A personal access token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime)

    user: Mapped[User] = relationship(lazy="joined")
