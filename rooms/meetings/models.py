"""A meeting of a room. The media itself never touches the database."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import User
from collab.db import Base, utcnow
from rooms.models import Room


class Meeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_room_created", "room_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The media worker hosting this meeting (one of COLLAB_MEDIA_URL); a meeting stays on one worker.
    media_url: Mapped[str] = mapped_column(String(500), default="")

    room: Mapped[Room] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


class MediaGrant(Base):
    """Who was given a media token for a meeting (the last time). Losing access must reach everyone who
    may hold a media session, including API clients that never open the meeting page, so the
    revocation path (rooms/revocation.py) asks this table as well as the attendance."""
    __tablename__ = "meeting_media_grants"
    __table_args__ = (UniqueConstraint("meeting_id", "user_id", name="uq_meeting_media_grants_meeting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    minted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
