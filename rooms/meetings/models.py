"""Tables of meetings: a meeting of a room and who was given a media token; its schedule, chairs
and invitees, pre-read decks, and its live state (slide, hands, attendance, chat, key messages
and votes). Every piece of live state is here, in the database, so a reload, a reconnect or a
second server process sees the same meeting. The media itself never touches the database."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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


class MeetingPlan(Base):
    """One per scheduled meeting (a meeting started on the spot has none until it is used)."""

    __tablename__ = "meeting_plans"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    agenda: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    all_members: Mapped[bool] = mapped_column(Boolean, default=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    ics_sequence: Mapped[int] = mapped_column(Integer, default=0)
    # Live state
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    presenter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deck_id: Mapped[int | None] = mapped_column(ForeignKey("meeting_decks.id", ondelete="SET NULL"))
    page: Mapped[int] = mapped_column(Integer, default=1)
    version: Mapped[int] = mapped_column(Integer, default=0)
    announce_thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    minutes_thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    presenter: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[presenter_id])


class MeetingPerson(Base):
    """A chair or an invitee of a meeting (role "chair" or "invitee")."""

    __tablename__ = "meeting_people"
    __table_args__ = (UniqueConstraint("meeting_id", "user_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))

    user: Mapped[User] = relationship(lazy="joined")


class Deck(Base):
    """A pre-read: a slide deck or paper. Its page images live under
    <data dir>/slides/<deck id>/<n>.png once `status` is "ready"."""

    __tablename__ = "meeting_decks"
    __table_args__ = (Index("ix_meeting_decks_meeting", "meeting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(10))          # pdf, pptx, odp, docx, odt, other
    status: Mapped[str] = mapped_column(String(12))        # queued, converting, ready, failed, download
    pages: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)  # pages rendered so far
    message: Mapped[str] = mapped_column(String(500), default="")
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The conversion job: the process converting it ("host:pid:start", see conversion.worker_id), how many
    # times a conversion started, and when it last reported; a deck whose process is gone is resumed.
    worker: Mapped[str] = mapped_column(String(120), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    # Each page's title (a JSON list of strings, "" for a page without text), read while converting; served
    # like the slide images (decks.slide_titles), never in the meeting's state. None for decks converted
    # before titles were read.
    page_titles: Mapped[str | None] = mapped_column(Text)

    uploaded_by: Mapped[User | None] = relationship(lazy="joined")


class Attendance(Base):
    """Someone at the meeting: remote (one row per span in the call, from Join to Leave, close or
    end, rooms/meetings/attendance.py), in the room (ticked or named by the chair) or the
    meeting-room device with its head-count. Mode "page" is not attendance: it remembers that an
    account opened the meeting's page (a locked meeting lets it back; it may be sent its hidden
    tallies) and that the chair removed it, and no view of the attendance shows it."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (Index("ix_meeting_attendance_meeting", "meeting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(10))          # remote, in_room, device; page (not attendance)
    head_count: Mapped[int] = mapped_column(Integer, default=0)
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(DateTime)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)


class Hand(Base):
    __tablename__ = "meeting_hands"
    __table_args__ = (Index("ix_meeting_hands_meeting", "meeting_id", "lowered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    in_room: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    floor_at: Mapped[datetime | None] = mapped_column(DateTime)
    lowered_at: Mapped[datetime | None] = mapped_column(DateTime)


class ChatMessage(Base):
    __tablename__ = "meeting_chat"
    __table_args__ = (Index("ix_meeting_chat_meeting", "meeting_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KeyMessage(Base):
    __tablename__ = "meeting_key_messages"
    __table_args__ = (Index("ix_meeting_key_messages_meeting", "meeting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(8), default="draft")   # draft, open, closed
    outcome: Mapped[str] = mapped_column(String(12), default="")     # agreed, not_agreed, deferred
    room_agree: Mapped[int] = mapped_column(Integer, default=0)
    room_disagree: Mapped[int] = mapped_column(Integer, default=0)
    room_abstain: Mapped[int] = mapped_column(Integer, default=0)
    # Chosen by the chair when opening the vote: while it is open, the running tally goes only to
    # those who have voted and to the chairs (rooms.policy.sees_tally); at close, to everyone.
    hide_tally: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Vote(Base):
    __tablename__ = "meeting_votes"
    __table_args__ = (UniqueConstraint("key_message_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_message_id: Mapped[int] = mapped_column(ForeignKey("meeting_key_messages.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    choice: Mapped[str] = mapped_column(String(10))        # agree, disagree, abstain
    comment: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MeetingAction(Base):
    """An action agreed in the meeting, for the minutes."""

    __tablename__ = "meeting_actions"
    __table_args__ = (Index("ix_meeting_actions_meeting", "meeting_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MeetingPseudonym(Base):
    """"Participant <number>" of one person in one meeting of a non-attributed room, numbered
    in the order the meeting first recorded them, never reused (rooms/meetings/pseudonyms.py)."""

    __tablename__ = "meeting_pseudonyms"
    __table_args__ = (UniqueConstraint("meeting_id", "user_id"),
                      UniqueConstraint("meeting_id", "number", name="uq_meeting_pseudonyms_meeting_id_number"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
