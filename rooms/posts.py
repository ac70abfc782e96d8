"""Threads and posts: the thread page's reading state (first unread post, read
marker, a post's earlier versions) and writing threads, posts, attachments and
edits. Rooms, memberships and the room event log are in rooms/services.py;
every write here records its room event through `services.record_event` and
commits, so listeners (live updates, search) hear about it only after the
commit. Permission is checked through `rooms/policy.py`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, BinaryIO, Callable, Iterable, Optional

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from auth import audit
from auth.models import User
from collab import logs, metrics, timezones, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound, ServiceError
from collab.extensions import db
from rooms import attachments as files
from rooms import notifications, policy, post_removal, pseudonyms, watching
from rooms.markdown import render
from rooms.models import Attachment, Membership, Post, PostRevision, ReadState, Room, Thread, path_segment
from rooms.serialize import post_dict, thread_dict
from rooms.services import get_post, get_room, record_event

MAX_BODY = 50_000
MAX_FILES = 10
Upload = tuple[str, BinaryIO]  # (filename, stream)


# -- thread pages ---------------------------------------------------------------

ROOTS_PER_PAGE = 25
FLAT_PER_PAGE = 50


def opening_post(thread: Thread, *options) -> Post:
    return db.session.scalar(
        select(Post).where(Post.thread_id == thread.id, Post.parent_id.is_(None)).options(*options))


def _last_read(actor: User, thread: Thread) -> int:
    rs = db.session.get(ReadState, (actor.id, thread.id))
    return rs.last_read_post_id if rs else 0


def first_unread_page(actor: User, thread: Thread) -> tuple[Optional[int], int]:
    """The first post the account has not read, and the tree page it is on."""
    last = _last_read(actor, thread)
    post = db.session.execute(  # three columns are enough: no joins, no attachments
        select(Post.id, Post.parent_id, Post.path)
        .where(Post.thread_id == thread.id, Post.id > last, Post.author_id.is_distinct_from(actor.id))
        .order_by(Post.id).limit(1)).first()
    if post is None or post.parent_id is None:
        return (post.id if post else None), 1
    root_seg = post.path.split("/")[1]
    before = db.session.scalar(
        select(func.count(Post.id)).where(Post.thread_id == thread.id, Post.depth == 1, Post.path < post.path[: len(root_seg) * 2 + 1])
    ) or 0
    return post.id, before // ROOTS_PER_PAGE + 1


def mark_read(actor: User, thread: Thread, up_to: int) -> None:
    """Move the account's read marker forward (never back); the notifications of the posts now read are read."""
    if up_to <= 0:
        return
    rs = db.session.get(ReadState, (actor.id, thread.id))
    if rs is not None and rs.last_read_post_id >= up_to:
        if notifications.unread_in_thread(actor, thread.id, up_to):  # e.g. written before the marker moved
            db.begin_write()
            notifications.mark_thread_read(actor, thread.id, up_to)
            db.session.commit()
        return
    db.begin_write()
    rs = db.session.get(ReadState, (actor.id, thread.id))
    if rs is None:
        db.session.add(ReadState(user_id=actor.id, thread_id=thread.id, last_read_post_id=up_to))
    elif rs.last_read_post_id < up_to:
        rs.last_read_post_id = up_to
        rs.updated_at = utcnow()
    notifications.mark_thread_read(actor, thread.id, up_to)
    db.session.commit()


def revisions(actor: User, post_id: object) -> tuple[Post, list[PostRevision]]:
    """A post's earlier versions, newest first. A removed post has none (the page says so); a hidden
    one's history is for whoever may still read its text (`policy.may_read_post_history`)."""
    post = get_post(actor, post_id)
    if post.deleted:
        return post, []
    if not policy.may_read_post_history(actor, post):
        raise NotFound("This post was hidden by moderators; its history is not shown.")
    revs = list(db.session.scalars(
        select(PostRevision).where(PostRevision.post_id == post.id).order_by(PostRevision.id.desc())))
    return post, revs


# -- threads and posts ------------------------------------------------------------

# Built once: a post's path and its thread's counters are written as plain SQL (no ORM unit of work).
_threads, _posts = Thread.__table__, Post.__table__
_SET_PATH = update(_posts).where(_posts.c.id == bindparam("pid")).values(path=bindparam("new_path"))
_BUMP_THREAD = (update(_threads).where(_threads.c.id == bindparam("tid"))
                .values(post_count=_threads.c.post_count + 1, last_post_at=bindparam("now"),
                        last_post_id=bindparam("last_id"))
                .returning(_threads.c.post_count))


def _set_loaded(obj: object, **values: Any) -> None:
    """Tell the session an object's row now holds these values (after a plain-SQL UPDATE of it)."""
    for key, value in values.items():
        set_committed_value(obj, key, value)


def _body(body: object) -> str:
    return validate.text(body, "body", max_len=MAX_BODY, multiline=True, label="Post text")


def _client_id(client_id: object) -> Optional[str]:
    if client_id is None or client_id == "":
        return None
    if not isinstance(client_id, str) or len(client_id) > 64 or not client_id.isprintable():
        raise Invalid("client_id must be text of at most 64 printable characters.", "client_id")
    return client_id


def _existing_by_client_id(actor: User, client_id: Optional[str]) -> Optional[Post]:
    if client_id is None:
        return None
    # Usually there is none: ask for the id alone, and load the post (with its joins) only when found.
    pid = db.session.scalar(select(Post.id).where(Post.author_id == actor.id, Post.client_id == client_id))
    return db.session.get(Post, pid) if pid is not None else None


def mute_message(until: datetime, reader: User | None = None) -> str:
    return (f"A moderator has muted you in this room until {timezones.fmt(until, timezones.zone_name_for(reader))}: "
            "you can read it, but not post. Ask the room's owners if you think this is wrong.")


def _check_can_post(actor: User, room: Room) -> None:
    if not policy.can_post(actor, room):
        until = policy.muted_until(actor, room)
        if until is not None and not room.archived:
            raise Forbidden(mute_message(until, actor))
        if room.archived:
            raise Forbidden("This room is archived: it can be read but not written to.")
        raise Forbidden("You can read this room but not post in it.")


def _join_on_post(actor: User, room: Room) -> None:
    """Inside the write: re-check, and let a reader of an open room join by posting."""
    _check_can_post(actor, room)
    if policy.membership(actor, room) is None:
        db.session.add(Membership(room_id=room.id, user_id=actor.id, role="member"))
        record_event(room.id, "member.added", {"user": {"id": actor.id, "name": actor.name}, "role": "member"})


def _store_uploads(uploads: Iterable[Upload]) -> list[files.StoredFile]:
    items = [u for u in uploads if u and u[1] is not None]
    if len(items) > MAX_FILES:
        raise Invalid(f"At most {MAX_FILES} files can be attached to one post.", "file")
    stored = [files.store(stream, name) for name, stream in items]
    for f in stored:
        metrics.UPLOADS.inc()
        metrics.UPLOAD_BYTES.inc(f.size)
    if stored:
        logs.event("upload", files=len(stored), bytes=sum(f.size for f in stored))
    return stored


def _insert_post(actor: User, thread: Thread, parent: Optional[Post], body: str, client_id: Optional[str],
                 stored: list[files.StoredFile]) -> Post:
    now = utcnow()
    post = Post(thread_id=thread.id, parent_id=parent.id if parent else None, author_id=actor.id, body=body,
                html=render(body), depth=(parent.depth + 1) if parent else 0, client_id=client_id, created_at=now,
                attachments=[])
    db.session.add(post)
    db.session.flush()
    if thread.room.non_attributed:  # "Participant n" from this thread's first post on (rooms/pseudonyms.py)
        pseudonyms.assign(thread.id, actor.id)
    path = f"{parent.path}/{path_segment(post.id)}" if parent else path_segment(post.id)
    conn = db.session.connection()
    conn.execute(_SET_PATH, {"pid": post.id, "new_path": path})
    _set_loaded(post, path=path)
    for f in stored:  # appended to the loaded collection, so post_dict() needs no query to list them
        post.attachments.append(Attachment(uploader_id=actor.id, sha256=f.sha256, filename=f.filename,
                                           content_type=f.content_type, size=f.size, is_image=f.is_image,
                                           width=f.width, height=f.height))
    if stored:
        db.session.flush()  # the attachments' ids, for post_dict()
    count = conn.execute(_BUMP_THREAD, {"tid": thread.id, "now": now, "last_id": post.id}).scalar_one()
    _set_loaded(thread, post_count=count, last_post_at=now, last_post_id=post.id)
    return post


def create_thread(actor: User, room_id: object, *, title: object, body: object, client_id: object = None,
                  uploads: Iterable[Upload] = (), notify: Iterable[int] = (),
                  within: Optional[Callable[[Thread, Post], None]] = None) -> Thread:
    """Start a thread. `notify`: accounts to notify as if mentioned, without naming them in the text
    (a meeting's invitees in a non-attributed room, rooms/meetings/schedule.py). `within`: what a
    kind of thread adds to it in the same write, after its event and before the commit (an idea's
    row, rooms/ideas/services.py); it may refuse with a ServiceError, and then nothing is written."""
    room = get_room(actor, room_id)
    title_v = validate.text(title, "title", max_len=200)
    body_v = _body(body)
    cid = _client_id(client_id)
    _check_can_post(actor, room)
    stored = _store_uploads(uploads)
    db.begin_write()
    existing = _existing_by_client_id(actor, cid)
    if existing is not None:
        db.session.rollback()
        return existing.thread
    _join_on_post(actor, room)
    now = utcnow()
    thread = Thread(room_id=room.id, title=title_v, author_id=actor.id, created_at=now, last_post_at=now)
    db.session.add(thread)
    db.session.flush()
    post = _insert_post(actor, thread, None, body_v, cid, stored)
    watching.follow_own_post(actor.id, thread.id, started=True, room_level=None)
    db.session.flush()
    db.session.refresh(thread)
    record_event(room.id, "thread.created", {"thread": thread_dict(thread), "post": post_dict(post)},
            notify=tuple(notify))
    if within is not None:
        try:
            within(thread, post)
        except BaseException:
            db.session.rollback()
            raise
    db.session.commit()
    return thread


def create_post(actor: User, thread_id: object, *, body: object, parent_id: object = None, client_id: object = None,
                uploads: Iterable[Upload] = (), notify: Iterable[int] = ()) -> tuple[Post, bool]:
    """Reply in a thread. Returns (post, created); a repeated client_id returns the first post.
    `notify`: as create_thread's.

    Without files (the usual case) everything happens in one write transaction: the checks read what the
    insert relies on, nothing is asked twice, and a repeated client_id is found by the unique index
    (author_id, client_id) rather than by a query before every post. Files are stored first, outside
    the write lock, and the checks are repeated inside it."""
    uploads = [u for u in uploads if u and u[1] is not None]
    one_transaction = not uploads
    if one_transaction:
        db.begin_write()
    try:
        return _create_post(actor, thread_id, body, parent_id, client_id, uploads, one_transaction, tuple(notify))
    except IntegrityError:
        db.session.rollback()
        existing = _existing_by_client_id(actor, _client_id(client_id))
        if existing is None:
            raise
        return existing, False
    except ServiceError:
        # Refused before anything was written: end the transaction (never leave the write lock held) by a
        # commit of nothing, which unlike a rollback leaves the caller's loaded objects as they are.
        db.session.commit()
        raise
    except BaseException:
        db.session.rollback()
        raise


# Built once, for posting: the thread with its room (not the author's or organisations' rows), and the
# parent's own columns (its relationships load lazily if ever used).
_THREAD_FOR_POST = (select(Thread).where(Thread.id == bindparam("tid"))
                    .options(lazyload(Thread.author), joinedload(Thread.room).lazyload(Room.organisation)))
_PARENT = select(Post).where(Post.id == bindparam("pid")).options(lazyload("*"))
_OPENING = select(Post).where(Post.thread_id == bindparam("tid"), Post.parent_id.is_(None)).options(lazyload("*"))


def _thread_for_post(actor: User, thread_id: object) -> Thread:
    """get_thread(), loading only what posting needs."""
    tid = validate.int_id(thread_id, "thread_id")
    thread = db.session.scalar(_THREAD_FOR_POST, {"tid": tid})
    if thread is None or not policy.can_read_room(actor, thread.room):
        raise NotFound("Thread not found.")
    return thread


def _create_post(actor: User, thread_id: object, body: object, parent_id: object, client_id: object,
                 uploads: list[Upload], in_write: bool, notify: tuple[int, ...] = ()) -> tuple[Post, bool]:
    thread = _thread_for_post(actor, thread_id)
    body_v = _body(body)
    cid = _client_id(client_id)
    pid = validate.int_id(parent_id, "parent_id", required=False)
    if not in_write:
        existing = _existing_by_client_id(actor, cid)
        if existing is not None:
            return existing, False
    try:
        _check_can_post(actor, thread.room)
        parent = (db.session.scalar(_OPENING, {"tid": thread.id}) if pid is None
                  else db.session.scalar(_PARENT, {"pid": pid}))
        if parent is None or parent.thread_id != thread.id:
            raise Invalid("parent_id is not a post in this thread.", "parent_id")
        if parent.deleted:
            raise Invalid("You cannot reply to a removed post.", "parent_id")
    except ServiceError:
        # A post sent again is answered with the first one, even if it could not be sent now.
        existing = _existing_by_client_id(actor, cid) if in_write else None
        if existing is not None:
            db.session.commit()  # nothing written
            return existing, False
        raise
    stored: list[files.StoredFile] = []
    if not in_write:
        stored = _store_uploads(uploads)
        db.begin_write()
        existing = _existing_by_client_id(actor, cid)
        if existing is not None:
            db.session.rollback()
            return existing, False
        _check_can_post(actor, thread.room)  # again, inside the write
    member = policy.membership(actor, thread.room)
    if member is None:  # a reader of an open room joins by posting
        db.session.add(Membership(room_id=thread.room_id, user_id=actor.id, role="member"))
        record_event(thread.room_id, "member.added", {"user": {"id": actor.id, "name": actor.name}, "role": "member"})
    post = _insert_post(actor, thread, parent, body_v, cid, stored)
    watching.follow_own_post(actor.id, thread.id, started=False,
                             room_level=member.notify_level if member is not None else None)
    record_event(thread.room_id, "post.created", {"post": post_dict(post)}, notify=notify)
    db.session.commit()
    return post, True


def add_attachments(actor: User, post_id: object, uploads: Iterable[Upload]) -> list[Attachment]:
    post = get_post(actor, post_id)
    if not policy.can_edit_post(actor, post):
        raise Forbidden("Only the author can attach files to a post.")
    stored = _store_uploads(uploads)
    if not stored:
        raise Invalid("Choose a file to attach.", "file")
    db.begin_write()
    atts = [Attachment(post_id=post.id, uploader_id=actor.id, sha256=f.sha256, filename=f.filename,
                       content_type=f.content_type, size=f.size, is_image=f.is_image, width=f.width, height=f.height)
            for f in stored]
    db.session.add_all(atts)
    db.session.flush()
    db.session.refresh(post)
    record_event(post.thread.room_id, "post.updated", {"post": post_dict(post)})
    db.session.commit()
    return atts


def edit_post(actor: User, post_id: object, *, body: object) -> Post:
    post = get_post(actor, post_id)
    if not policy.can_edit_post(actor, post):
        raise Forbidden("Only the author can edit this post.")
    body_v = _body(body)
    if body_v == post.body:
        return post
    db.begin_write()
    db.session.add(PostRevision(post_id=post.id, body=post.body, html=post.html,
                                written_at=post.edited_at or post.created_at, editor_id=actor.id))
    post.body, post.html, post.edited_at = body_v, render(body_v), utcnow()
    record_event(post.thread.room_id, "post.updated", {"post": post_dict(post)})
    db.session.commit()
    return post


def delete_post(actor: User, post_id: object) -> Post:
    """Leave a tombstone so the reply tree stays whole; the text, history and files go (rooms/post_removal.py)."""
    post = get_post(actor, post_id)
    if not policy.can_delete_post(actor, post):
        raise Forbidden("You may not remove this post.")
    db.begin_write()
    audit.record("post.deleted" if post.author_id == actor.id else "moderation.deleted", actor=actor,
                 target_type="post", target_id=post.id, room_id=post.thread.room_id,
                 detail={"author_id": post.author_id})
    shas = post_removal.remove_content(post, by_id=actor.id)
    post_removal.scrub_events(post.thread.room_id, [post])
    record_event(post.thread.room_id, "post.deleted", {"post": post_dict(post)})
    db.session.commit()
    post_removal.forget_files(shas)
    return post


ERASED_TITLE = "Removed when its author's account was erased"


def erase_author_posts(author_id: int, *, remove_text: bool, by_id: int) -> tuple[int, set[str]]:
    """Account erasure's part in the rooms (rooms/account_data.py), inside its write: the author's posts become posts
    of a former member; with `remove_text` their content goes the one way posts are removed
    (rooms/post_removal.py), the stored events are scrubbed and live pages told `post.deleted`.
    Returns (how many posts were not already removed, file hashes for post_removal.forget_files after commit)."""
    posts = list(db.session.scalars(select(Post).where(Post.author_id == author_id).order_by(Post.id)))
    kept = sum(1 for p in posts if not p.deleted)
    shas: set[str] = set()
    gone: dict[int, list[Post]] = {}
    now = utcnow()
    for post in posts:
        post.author_id, post.client_id = None, None
        if remove_text and not post.deleted:
            shas |= post_removal.remove_content(post, by_id=by_id, now=now, title=ERASED_TITLE)
            gone.setdefault(post.thread.room_id, []).append(post)
    db.session.flush()
    for room_id, room_posts in gone.items():
        post_removal.scrub_events(room_id, room_posts)
        for post in room_posts:
            record_event(room_id, "post.deleted", {"post": post_dict(post)})
    return kept, shas
