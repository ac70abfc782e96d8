"""The table of a meeting's transcript (issue 16): one row per final caption the media worker reported
(media/captions/report.py), with what a chair corrected it to. `key` is the worker's utterance key, so a
report received twice is saved once. Rows go with their meeting (and with the room's retention period,
rooms/retention.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auth.models import User
from collab.db import Base, utcnow


class TranscriptSegment(Base):
    __tablename__ = "meeting_transcript_segments"
    __table_args__ = (UniqueConstraint("meeting_id", "key"),
                      Index("ix_meeting_transcript_segments_meeting", "meeting_id", "started_at"),
                      Index("ix_meeting_transcript_segments_speaker", "speaker_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    # The account that spoke; shown by name or as "Participant n" by rooms/meetings/pseudonyms.py, per reader.
    speaker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    key: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime] = mapped_column(DateTime)
    text: Mapped[str] = mapped_column(Text)                      # what the engine heard
    corrected_text: Mapped[str | None] = mapped_column(Text)     # what a chair corrected it to
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    speaker: Mapped[User | None] = relationship(foreign_keys=[speaker_id], lazy="joined")

    @property
    def shown_text(self) -> str:
        """The corrected text when there is one: what the transcript, its export and search show."""
        return self.corrected_text if self.corrected_text is not None else self.text
