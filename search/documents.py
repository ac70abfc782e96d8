"""What gets indexed for a post, read from the database (the index is derived
data: everything here can be rebuilt from the tables)."""
from __future__ import annotations

import queue
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from flask import current_app
from sqlalchemy import func, select

from collab.extensions import db
from rooms import attachments as files
from rooms.meetings import transcript
from rooms.meetings.models import MeetingPlan
from rooms.models import Attachment, Post, Thread
from search.text import extract_text, html_text

SNIPPET_ATTACHMENT_CHARS = 5_000
_NON_WORD = re.compile(r"[\W_]+")


@dataclass
class Doc:
    post_id: int
    thread_id: int
    room_id: int
    author_id: Optional[int]
    created_at: datetime
    is_opening: bool
    title: str  # the thread title, on the opening post only
    body: str  # plain text of the rendered post
    attachments: str  # file names and the text of PDF/DOCX files
    has_attachment: bool


def indexable():
    """Posts that belong in the index: not removed (a tombstone must not be
    found) and not hidden by moderators (when the model has that column)."""
    cond = Post.deleted_at.is_(None)
    hidden = getattr(Post, "hidden_at", None)
    if hidden is not None:
        cond = cond & hidden.is_(None)
    return cond


def _cache_dir() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "search" / "text"


def _attachment_texts(post_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = list(post_ids)
    out: dict[int, list[str]] = {}
    if not ids:
        return out
    rows = db.session.execute(
        select(Attachment.post_id, Attachment.filename, Attachment.sha256, Attachment.is_image)
        .where(Attachment.post_id.in_(ids)).order_by(Attachment.id)).all()
    cache = _cache_dir()
    for post_id, filename, sha, is_image in rows:
        parts = out.setdefault(post_id, [])
        words = _NON_WORD.sub(" ", filename).strip()
        parts.append(f"{filename} ({words})")  # "minutes.pdf (minutes pdf)"
        if not is_image:
            text = extract_text(files.blob_path(sha), filename, cache, sha)
            if text:
                parts.append(text)
    return out


def _transcript_texts(rows) -> dict[int, str]:
    """A meeting's transcript (as corrected: issue 16) is found through its minutes: the opening post of the
    minutes thread carries it. Readers of the minutes are readers of the room, as for the transcript
    (rooms.policy.may_read_transcript)."""
    openings = {tid: pid for pid, tid, parent_id, *_ in rows if parent_id is None}
    if not openings:
        return {}
    plans = db.session.execute(select(MeetingPlan.minutes_thread_id, MeetingPlan.meeting_id)
                               .where(MeetingPlan.minutes_thread_id.in_(list(openings)))).all()
    out = {}
    for tid, meeting_id in plans:
        text = transcript.text_of_meeting(meeting_id)
        if text:
            out[openings[tid]] = text
    return out


def _docs(rows, atts: dict[int, list[str]]) -> list[Doc]:
    docs = []
    said = _transcript_texts(rows)
    for pid, tid, parent_id, author_id, html, created_at, room_id, title in rows:
        parts = atts.get(pid, [])
        body = html_text(html or "")
        if pid in said:
            body = f"{body}\n\nTranscript\n{said[pid]}"
        docs.append(Doc(post_id=pid, thread_id=tid, room_id=room_id, author_id=author_id, created_at=created_at,
                        is_opening=parent_id is None, title=title if parent_id is None else "",
                        body=body, attachments="\n".join(parts), has_attachment=bool(parts)))
    return docs


def _select():
    return (select(Post.id, Post.thread_id, Post.parent_id, Post.author_id, Post.html, Post.created_at,
                   Thread.room_id, Thread.title)
            .join(Thread, Thread.id == Post.thread_id))


def load(post_ids: Iterable[int]) -> tuple[list[Doc], list[int]]:
    """(documents to (re)index, post ids to remove) for the given posts."""
    ids = sorted(set(post_ids))
    if not ids:
        return [], []
    rows = db.session.execute(_select().where(Post.id.in_(ids), indexable())).all()
    present = {r[0] for r in rows}
    docs = _docs(rows, _attachment_texts(present))
    return docs, [i for i in ids if i not in present]


def count_indexable() -> int:
    return db.session.scalar(select(func.count(Post.id)).where(indexable())) or 0


def id_ranges(parts: int) -> list[tuple[int, Optional[int]]]:
    """Split the indexable posts into `parts` ranges of ids [lo, hi) of about equal size (hi None: no end)."""
    total = count_indexable()
    if total == 0 or parts <= 1:
        db.session.rollback()
        return [(0, None)]
    bounds = [0]
    for k in range(1, parts):
        b = db.session.scalar(select(Post.id).where(indexable()).order_by(Post.id)
                              .offset(total * k // parts).limit(1))
        if b is not None and b > bounds[-1]:
            bounds.append(b)
    db.session.rollback()
    return list(zip(bounds, bounds[1:] + [None]))


def iter_all(batch: int = 2000, lo: int = 0, hi: Optional[int] = None) -> Iterator[list[Doc]]:
    """Every indexable post (with lo <= id < hi), oldest first, in batches (keyset pagination)."""
    last = lo - 1
    while True:
        q = _select().where(indexable(), Post.id > last)
        if hi is not None:
            q = q.where(Post.id < hi)
        rows = db.session.execute(q.order_by(Post.id).limit(batch)).all()
        if not rows:
            return
        last = rows[-1][0]
        has_files = set(db.session.scalars(
            select(Attachment.post_id).where(Attachment.post_id.in_([r[0] for r in rows]))))
        docs = _docs(rows, _attachment_texts(has_files))
        db.session.rollback()  # end the read transaction between batches
        yield docs


def prefetched(make: Callable[[], Iterator[list[Doc]]], depth: int = 2) -> Iterator[list[Doc]]:
    """The batches of `make()`, read one or two ahead in a thread with its own app context
    and session: while the caller indexes a batch (CPU), the next is read (mostly waiting for
    the database, which releases the GIL). Errors in the reader are raised here."""
    app = current_app._get_current_object()
    q: "queue.Queue" = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def read() -> None:
        with app.app_context():
            try:
                for batch in make():
                    while not stop.is_set():
                        try:
                            q.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as err:  # handed to the consumer
                q.put(err)
            finally:
                db.session.remove()

    t = threading.Thread(target=read, name="search-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)
