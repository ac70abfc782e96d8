"""Rooms and what is said in them.

Replies form a tree: each post keeps a materialised `path` (its ancestors' ids,
fixed width), so ordering by path is a depth-first walk and one page of a long
thread is one range query.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import Organisation, User
from collab.db import Base, utcnow

VISIBILITIES = {
    "private": "Private — invited members only",
    "organisation": "Organisation — all staff of one organisation",
    "national": "National — every signed-in account",
}
ROOM_ROLES = ("owner", "moderator", "member", "observer")
# Discourse's watch levels for a room (rooms/watching.py says what each one means).
NOTIFY_LEVELS = ("watching", "tracking", "normal", "muted")
PATH_WIDTH = 10


def path_segment(post_id: int) -> str:
    return f"{post_id:0{PATH_WIDTH}d}"


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(20), default="private")
    organisation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    archived_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # Highest event sequence number handed out in this room (see RoomEvent).
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Posts older than this many days are deleted by the daily retention job (rooms/retention.py); None: kept.
    retention_days: Mapped[Optional[int]] = mapped_column(Integer)
    # Confidentiality label (COLLAB_LABELS; None: the lowest) and Chatham House posting (rooms/pseudonyms.py).
    label: Mapped[Optional[str]] = mapped_column(String(40))
    non_attributed: Mapped[bool] = mapped_column(Boolean, default=False)
    # A chair may record this room's meetings (rooms/meetings/recordings.py; labels and non-attribution may
    # still forbid it: rooms.policy recording_refusal).
    recording_allowed: Mapped[bool] = mapped_column(Boolean, default=False)

    organisation: Mapped[Optional[Organisation]] = relationship(lazy="joined")

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="member")
    notify_level: Mapped[str] = mapped_column(String(10), default="tracking")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")
    room: Mapped[Room] = relationship()


class Thread(Base):
    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_room_last_post", "room_id", "last_post_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_post_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_post_id: Mapped[int] = mapped_column(Integer, default=0)
    post_count: Mapped[int] = mapped_column(Integer, default=0)

    room: Mapped[Room] = relationship(lazy="joined")
    author: Mapped[Optional[User]] = relationship(lazy="joined")


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("author_id", "client_id"),
        Index("ix_posts_thread_path", "thread_id", "path"),
        Index("ix_posts_thread_id_id", "thread_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("posts.id"), index=True)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    path: Mapped[str] = mapped_column(Text, default="")
    depth: Mapped[int] = mapped_column(Integer, default=0)
    client_id: Mapped[Optional[str]] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    edited_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    deleted_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    deleted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    # Hidden by a room moderator (rooms/moderation.py): others see a tombstone, the author sees the reason.
    hidden_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    hidden_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    hidden_reason: Mapped[Optional[str]] = mapped_column(String(500))

    thread: Mapped[Thread] = relationship(lazy="joined")
    author: Mapped[Optional[User]] = relationship(foreign_keys=[author_id], lazy="joined")
    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="post", order_by="Attachment.id", lazy="selectin"
    )

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class PostRevision(Base):
    """An earlier text of an edited post."""

    __tablename__ = "post_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(DateTime)
    replaced_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    editor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    uploader_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    is_image: Mapped[bool] = mapped_column(Boolean, default=False)
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    post: Mapped[Post] = relationship(back_populates="attachments")


class ReadState(Base):
    """How far one account has read one thread."""

    __tablename__ = "read_states"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    last_read_post_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Reaction(Base):
    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("post_id", "user_id", "emoji"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    emoji: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RoomEvent(Base):
    """Every change in a room, numbered, so a reconnecting client can ask for
    exactly what it missed."""

    __tablename__ = "room_events"
    __table_args__ = (UniqueConstraint("room_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
