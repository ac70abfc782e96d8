"""The tables of a meeting's web broadcast (issue 16): when it was on, and what its viewers sent — a
question (when the meeting has no Q&A session to put it in) or a request to speak — for the chairs'
queue. A viewer the chair brings in becomes a meeting person of role "speaker" (models.MeetingPerson),
which lets them send audio and video in that meeting alone (access.media_role)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import User
from collab.db import Base, utcnow

KINDS = ("question", "speak")
STATUSES = ("open", "brought_in", "dismissed")


class Broadcast(Base):
    __tablename__ = "meeting_broadcasts"
    __table_args__ = (Index("ix_meeting_broadcasts_meeting", "meeting_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def live(self) -> bool:
        return self.ended_at is None


class ViewerRequest(Base):
    """A viewer's question or request to speak, waiting for the chairs (or handled by one)."""
    __tablename__ = "meeting_viewer_requests"
    __table_args__ = (Index("ix_meeting_viewer_requests_meeting", "meeting_id", "status"),
                      Index("ix_meeting_viewer_requests_user", "user_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(lazy="joined", foreign_keys=[user_id])
