"""The tables of meeting recordings (issue 16). The media and timeline files themselves are in the
recordings folder (COLLAB_RECORDINGS_DIR, written by the media worker, media/recorder.py); a row says
who started the recording, when, and how far the single shareable file composed from them has come.

status: recording → stopped → composing → ready | failed (and "gone" once retention deleted the files).
A `RecordingMark` is a slide shown while a recording ran, so the replay shows it at the right moment.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import User
from collab.db import Base, utcnow
from collab.extensions import db
from rooms.meetings.models import Meeting

COMPOSING = ("stopped", "composing")   # a composition is due or running


class Recording(Base):
    __tablename__ = "meeting_recordings"
    __table_args__ = (Index("ix_meeting_recordings_meeting", "meeting_id", "started_at"),
                      Index("ix_meeting_recordings_status", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(12), default="recording")
    progress: Mapped[int] = mapped_column(Integer, default=0)      # per cent of the composed file done
    message: Mapped[str] = mapped_column(String(500), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)       # bytes of the composed file
    duration: Mapped[float] = mapped_column(Float, default=0.0)    # seconds
    worker: Mapped[str] = mapped_column(String(120), default="")   # the process composing it (conversion.worker_id)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)

    started_by: Mapped[User | None] = relationship(lazy="joined")
    meeting: Mapped[Meeting] = relationship(lazy="select")

    @property
    def live(self) -> bool:
        return self.ended_at is None


class RecordingMark(Base):
    __tablename__ = "meeting_recording_marks"
    __table_args__ = (Index("ix_meeting_recording_marks_recording", "recording_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("meeting_recordings.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deck_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_decks.id", ondelete="SET NULL"))
    page: Mapped[int] = mapped_column(Integer, default=1)


def live_recording(meeting_id: int) -> Recording | None:
    return db.session.scalar(select(Recording).where(Recording.meeting_id == meeting_id,
                                                     Recording.ended_at.is_(None)).order_by(Recording.id.desc()))


def mark_slide(meeting_id: int, deck_id: int | None, page: int) -> None:
    """In the caller's write transaction: the slide now shown, if the meeting is being recorded."""
    rec = live_recording(meeting_id)
    if rec is not None:
        db.session.add(RecordingMark(recording_id=rec.id, at=utcnow(), deck_id=deck_id, page=page))
