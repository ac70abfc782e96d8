"""Taking a post's content away, the one way, whatever the reason: its author or a moderator
removes it (rooms/posts.py, rooms/moderation.py), its room's retention period passes
(rooms/retention.py), or its author's account is erased with its text (rooms/account_data.py).

A removed post stays as a tombstone so the reply tree is whole; its text, earlier versions
and attachments go, and (when asked) the title of the thread it opened. The search index
follows by itself (the flush writes outbox rows, search/outbox.py). What the ORM does not
see is the room's stored event log, which `sync` replays to clients: `scrub_events`
rewrites every stored event that carried one of the posts into its removed form, so the
text does not live on there. Both run inside the caller's write transaction; the caller
records `post.deleted` (live pages drop the text) and, after commit, calls `forget_files`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select

from collab.db import utcnow
from collab.extensions import db
from rooms import attachments as files
from rooms.models import Attachment, Post, PostRevision, RoomEvent
from rooms.serialize import post_dict

_CHUNK = 200  # posts per event query (each adds a LIKE term)


def remove_content(post: Post, *, by_id: int | None, now: datetime | None = None,
                   title: str | None = None) -> set[str]:
    """Make `post` a tombstone: text, earlier versions and attachments go (a tombstone already is one; its
    leftovers go too). With `title`, a thread this post opened is renamed to it. Returns the attachments'
    file hashes, for `forget_files` after commit."""
    shas: set[str] = set()
    for att in list(post.attachments):
        shas.add(att.sha256)
        db.session.delete(att)
    for rev in db.session.scalars(select(PostRevision).where(PostRevision.post_id == post.id)).all():
        db.session.delete(rev)
    if post.deleted_at is None:
        post.deleted_at, post.deleted_by_id = now or utcnow(), by_id
    post.body, post.html = "", ""
    if title is not None and post.parent_id is None and post.thread.title != title:
        post.thread.title = title
    db.session.flush()
    db.session.expire(post, ["attachments"])  # the serialised tombstone lists none
    return shas


def scrub_events(room_id: int, posts: Iterable[Post]) -> int:
    """Rewrite the room's stored events that carry any of these (removed) posts: each such post becomes its
    current form, and the title of a thread one of them opened becomes the thread's current title. Returns
    how many events changed."""
    gone = {p.id: p for p in posts}
    titles = {p.thread_id: p.thread.title for p in gone.values() if p.parent_id is None}
    changed = 0
    ids = sorted(gone)
    markers = [f'"post": {{"id": {pid},' for pid in ids] + [f'"thread": {{"id": {tid},' for tid in sorted(titles)]
    seen: set[int] = set()
    for start in range(0, len(markers), _CHUNK):
        chunk = markers[start:start + _CHUNK]
        rows = db.session.scalars(select(RoomEvent).where(
            RoomEvent.room_id == room_id, or_(*[RoomEvent.payload.contains(m) for m in chunk]))).all()
        for ev in rows:
            if ev.id in seen:
                continue
            seen.add(ev.id)
            data = json.loads(ev.payload)
            dirty = False
            post = data.get("post")
            if isinstance(post, dict) and post.get("id") in gone:
                extra = {"room_id": post["room_id"]} if "room_id" in post else {}
                data["post"] = dict(post_dict(gone[post["id"]]), **extra)
                dirty = True
            thread = data.get("thread")
            if isinstance(thread, dict) and thread.get("id") in titles and thread.get("title") != titles[thread["id"]]:
                thread["title"] = titles[thread["id"]]
                dirty = True
            if dirty:
                ev.payload = json.dumps(data)
                changed += 1
    return changed


def forget_files(shas: Iterable[str]) -> None:
    """After commit: delete the stored files (and thumbnails) no attachment uses any more."""
    for sha in shas:
        if db.session.scalar(select(func.count(Attachment.id)).where(Attachment.sha256 == sha)):
            continue
        for path in (files.blob_path(sha), files.thumb_path(sha)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
