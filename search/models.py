"""Tables of the search service.

`search_outbox` holds "post N must be (re)indexed or removed" rows written in
the same transaction as the change itself (see search.outbox); the indexer
deletes a row only after the index has the change. `search_documents` is the
PostgreSQL backend's index: one row per visible post, with a stored `tsv`
column and a GIN index that exist only on PostgreSQL (see migration 0003), so
the column is not mapped here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from collab.db import Base, utcnow


class SearchOutbox(Base):
    __tablename__ = "search_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SearchDocument(Base):
    __tablename__ = "search_documents"
    __table_args__ = (Index("ix_search_documents_room_created", "room_id", "created_at"),)

    post_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    room_id: Mapped[int] = mapped_column(Integer)
    thread_id: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    is_opening: Mapped[bool] = mapped_column(Boolean, default=False)
    has_attachment: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[str] = mapped_column(Text, default="")
