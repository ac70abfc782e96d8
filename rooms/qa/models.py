"""A Q&A session is a thread underneath and each question a post in it (search, moderation, labels,
non-attributed rooms and retention apply unchanged); these tables add what a thread does not have:
the session's time, hosts and settings, each question's state, votes and answer, and who asked an
anonymous question (kept for moderators only: the question's post has no author)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import User
from collab.db import Base, utcnow
from rooms.models import Post, Room, Thread

STATUSES = {
    "pending": "Waiting for approval",
    "open": "Open",
    "answering": "Now answering",
    "answered": "Answered",
    "declined": "Declined",
    "merged": "Merged into another question",
}
LIVE_STATUSES = ("open", "answering")        # shown to everyone and voted on
UNANSWERED = ("pending", "open", "answering")  # given an owner when the session ends (pending: approved then)


class QaSession(Base):
    __tablename__ = "qa_sessions"
    __table_args__ = (Index("ix_qa_sessions_room", "room_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), unique=True)
    meeting_id: Mapped[Optional[int]] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    moderated: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    ended_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The one question being answered now (a plain id: the question row points at its session).
    now_answering_id: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    thread: Mapped[Thread] = relationship(lazy="joined")
    room: Mapped[Room] = relationship(lazy="joined")

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


class QaHost(Base):
    __tablename__ = "qa_hosts"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("qa_sessions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    added_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class QaQuestion(Base):
    __tablename__ = "qa_questions"
    __table_args__ = (Index("ix_qa_questions_session_status", "session_id", "status"),
                      Index("ix_qa_questions_due", "status", "due_on"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("qa_sessions.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), unique=True)
    # Who asked: for an anonymous question only here (its post has no author); moderators only.
    asker_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="open")
    vote_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[Optional[int]] = mapped_column(ForeignKey("qa_questions.id", ondelete="SET NULL"))
    decline_reason: Mapped[Optional[str]] = mapped_column(Text)
    edited_by_moderator: Mapped[bool] = mapped_column(Boolean, default=False)
    answer_post_id: Mapped[Optional[int]] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    answered_aloud: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    answered_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    # After the session: who answers it, by when, and when they were last reminded.
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_on: Mapped[Optional[date]] = mapped_column(Date)
    reminded_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    session: Mapped[QaSession] = relationship(lazy="joined")
    post: Mapped[Post] = relationship(foreign_keys=[post_id], lazy="joined")
    answer_post: Mapped[Optional[Post]] = relationship(foreign_keys=[answer_post_id], lazy="select")
    owner: Mapped[Optional[User]] = relationship(foreign_keys=[owner_id], lazy="select")


class QaVote(Base):
    __tablename__ = "qa_votes"
    __table_args__ = (UniqueConstraint("question_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("qa_questions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
