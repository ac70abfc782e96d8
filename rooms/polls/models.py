"""Tables of polls: a poll (in the thread it was created with) and one vote per account per poll.

A vote's `user_id` is kept even in an anonymous poll (one vote each, changeable until close) but
is never put in any response, event, search document, e-mail or export (rooms/polls/services.py).
Erasing an account keeps its votes in the tallies, tied to nobody (the record of a closed poll stays)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from collab.db import Base, utcnow
from rooms.models import Room, Thread

KINDS = ("single", "multiple", "ranked", "score", "dot", "proposal")
RESULTS = ("always", "after_vote", "after_close")
PROPOSAL_OPTIONS = ("Agree", "Abstain", "Disagree", "Block")
BLOCK = 3  # the index of "Block" among PROPOSAL_OPTIONS: needs a reason
MAX_SCORE = 5


class Poll(Base):
    __tablename__ = "polls"
    __table_args__ = (Index("ix_polls_room", "room_id"), Index("ix_polls_open_closes", "closed_at", "closes_at"),
                      Index("ix_polls_meeting", "meeting_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), unique=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    # The meeting it was taken in (same room): its outcome goes into that meeting's minutes.
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL",
                                                              name="fk_polls_meeting"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    options: Mapped[str] = mapped_column(Text)          # a JSON list of the options' texts
    dots: Mapped[int | None] = mapped_column(Integer)   # dot votes: each voter's budget
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    results: Mapped[str] = mapped_column(String(16), default="always")
    quorum: Mapped[int | None] = mapped_column(Integer)
    closes_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(Text, default="")
    outcome_post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    room: Mapped[Room] = relationship(lazy="joined")
    thread: Mapped[Thread] = relationship(lazy="select")

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


class PollVote(Base):
    __tablename__ = "poll_votes"
    __table_args__ = (UniqueConstraint("poll_id", "user_id", name="uq_poll_votes_poll_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    # None once the account is erased: the vote stays in the tally, tied to nobody (rooms/account_data.py).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    choices: Mapped[str] = mapped_column(Text)          # JSON, its shape per kind (rooms/polls/tally.py)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
