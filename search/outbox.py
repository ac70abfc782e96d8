"""The outbox: whenever a flush inserts, changes or deletes a Post, adds or
removes an Attachment, or renames a Thread, a `search_outbox` row naming the
post is written by the same flush, so it commits (or rolls back) with the
change itself. Services need not know about search.

After a commit that wrote outbox rows, the indexer is woken (search.indexer).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session

from collab import logs
from rooms.meetings.models import MeetingPlan
from rooms.meetings.transcript_models import TranscriptSegment
from rooms.models import Attachment, Post, Thread
from search.models import SearchOutbox

log = logging.getLogger(__name__)

_QUEUED = "search_outbox_ids"  # post ids already queued in this transaction
_DIRTY = "search_outbox_dirty"
_COMMITTED = "search_outbox_committed"
_installed = False
_on_commit: Optional[Callable[[], None]] = None


def _changed(obj) -> bool:
    state = inspect(obj)
    for attr in state.mapper.column_attrs:
        if state.attrs[attr.key].history.has_changes():
            return True
    return False


def _title_changed(thread: Thread) -> bool:
    return inspect(thread).attrs.title.history.has_changes()


def _after_flush(session: Session, _ctx) -> None:
    ids: set[int] = set()
    threads: set[int] = set()
    meetings: set[int] = set()   # a transcript changed: its meeting's minutes post carries it (search/documents.py)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, TranscriptSegment) and obj.meeting_id is not None:
            meetings.add(obj.meeting_id)
        elif (isinstance(obj, MeetingPlan) and obj.minutes_thread_id is not None
              and inspect(obj).attrs.minutes_thread_id.history.has_changes()):
            threads.add(obj.minutes_thread_id)   # the minutes now carry the meeting's transcript
    for obj in session.new:
        if isinstance(obj, Post) and obj.id is not None:
            ids.add(obj.id)
        elif isinstance(obj, Attachment) and obj.post_id is not None:
            ids.add(obj.post_id)
    for obj in session.dirty:
        if isinstance(obj, Post) and _changed(obj):
            ids.add(obj.id)
        elif isinstance(obj, Attachment) and _changed(obj):
            ids.add(obj.post_id)
        elif isinstance(obj, Thread) and _title_changed(obj):
            threads.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Post):
            ids.add(obj.id)
        elif isinstance(obj, Attachment):
            ids.add(obj.post_id)
    conn = None
    if meetings:
        conn = session.connection()
        threads.update(t for t in conn.execute(select(MeetingPlan.minutes_thread_id).where(
            MeetingPlan.meeting_id.in_(meetings), MeetingPlan.minutes_thread_id.is_not(None))).scalars())
    if threads:
        conn = session.connection()
        ids.update(conn.execute(
            select(Post.id).where(Post.thread_id.in_(threads), Post.parent_id.is_(None))).scalars())
    queued: set[int] = session.info.setdefault(_QUEUED, set())
    new = sorted(i for i in ids if i is not None and i not in queued)
    if not new:
        return
    conn = conn or session.connection()
    conn.execute(insert(SearchOutbox), [{"post_id": i} for i in new])
    queued.update(new)
    session.info[_DIRTY] = True
    # JSON logs: the request id of this line joins the search worker's "search.applied" by post id
    logs.event("search.queued", routine=True, posts=new[:100])


def _after_commit(session: Session) -> None:
    # SQLAlchemy also fires after_commit when a SAVEPOINT is released, while the
    # outer transaction (holding the outbox rows) is still open: only note it here.
    session.info[_COMMITTED] = True


def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.nested:  # a savepoint ended: forget what was queued (a row too many is harmless)
        session.info.pop(_QUEUED, None)
        return
    if transaction.parent is not None:
        return
    # The whole transaction is over: wake the indexer if it committed outbox rows.
    session.info.pop(_QUEUED, None)
    dirty = session.info.pop(_DIRTY, False)
    committed = session.info.pop(_COMMITTED, False)
    if dirty and committed and _on_commit is not None:
        try:
            _on_commit()
        except Exception:  # never undo a committed write; the sweep will catch up
            log.exception("could not wake the search indexer")


def install(on_commit: Callable[[], None]) -> None:
    """Listen on every Session (once per process)."""
    global _installed, _on_commit
    _on_commit = on_commit
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
    _installed = True
