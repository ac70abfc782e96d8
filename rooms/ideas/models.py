"""An idea is a thread underneath (search, moderation, labels, non-attributed rooms and retention
apply unchanged); these tables add what a thread does not have: the room's idea settings, the
people named to decide, the idea's status and response, its votes and the history of its status."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import User
from collab.db import Base, utcnow
from rooms.models import Room, Thread

STATUSES = {
    "new": "New",
    "under_review": "Under review",
    "adopted": "Adopted",
    "not_adopted": "Not adopted",
    "already_exists": "Already exists",
    "done": "Done",
}
OPEN_STATUSES = ("new", "under_review")          # votes count against the budget while open
DECIDED_STATUSES = ("adopted", "not_adopted", "already_exists", "done")   # a decision is published
SAID_DONE_STATUSES = ("adopted", "done")         # "You said, we did"
# status -> the statuses it may change to
TRANSITIONS = {
    "new": ("under_review",),
    "under_review": ("under_review", "adopted", "not_adopted", "already_exists"),
    "adopted": ("done",),
    "not_adopted": (),
    "already_exists": (),
    "done": (),
}


class IdeaSettings(Base):
    """A room's idea options (no row: ideas are off)."""

    __tablename__ = "idea_settings"

    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Open votes each person may have in the room at once (None: no limit).
    vote_budget: Mapped[Optional[int]] = mapped_column(Integer)
    # Rank and job title of idea authors and voters hidden from all but moderators until a decision.
    judge_on_merit: Mapped[bool] = mapped_column(Boolean, default=False)


class IdeaDecider(Base):
    """Someone a room's owners or moderators named to decide on its ideas."""

    __tablename__ = "idea_deciders"
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    named_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class Idea(Base):
    __tablename__ = "ideas"
    __table_args__ = (Index("ix_ideas_room_status", "room_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), unique=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="new")
    response: Mapped[Optional[str]] = mapped_column(Text)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    review_on: Mapped[Optional[date]] = mapped_column(Date)
    duplicate_of_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ideas.id", ondelete="SET NULL"))
    vote_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    thread: Mapped[Thread] = relationship(lazy="joined")
    room: Mapped[Room] = relationship(lazy="joined")
    decided_by: Mapped[Optional[User]] = relationship(foreign_keys=[decided_by_id], lazy="joined")
    duplicate_of: Mapped[Optional["Idea"]] = relationship(remote_side=[id], lazy="select")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def decided(self) -> bool:
        return self.status in DECIDED_STATUSES


class IdeaVote(Base):
    __tablename__ = "idea_votes"
    __table_args__ = (UniqueConstraint("idea_id", "user_id"), Index("ix_idea_votes_user_room", "user_id", "room_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class IdeaStatusChange(Base):
    """Every status an idea was given, by whom, with the response then written."""

    __tablename__ = "idea_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    response: Mapped[Optional[str]] = mapped_column(Text)
    review_on: Mapped[Optional[date]] = mapped_column(Date)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[Optional[User]] = relationship(lazy="joined")
