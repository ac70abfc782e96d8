"""Delivery: who hears about a new post, and why, written in the post's own transaction.

A `before_commit` hook reads the events the service queued ("post.created", "thread.created"), so a
post and its notifications exist together or not at all. Who hears follows the watch levels of
rooms/watching.py: a mention beats a reply to you, which beats a new thread, which beats a new post
in a thread you watch. Nobody hears about their own post, nor about a room they may not read.
E-mail goes out after the commit (rooms/live/fanout.py, rooms/notify_email.py).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from types import SimpleNamespace

from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from auth.models import User
from collab import events
from rooms import policy, pseudonyms
from rooms.mentions import find_mentions
from rooms.models import Membership, Post
from rooms.notifications import Notification, notification_dict
from rooms.watching import ThreadWatch, thread_level

log = logging.getLogger(__name__)


def plan(session: Session, post: Post, new_thread: bool, notify: Iterable[int] = ()) -> dict[int, str]:
    """Who hears about this post, and why. `notify`: people the post concerns without naming them
    (create_thread's `notify`), heard as mentions."""
    room = post.thread.room
    replied_to = None
    if post.parent_id:
        parent = session.get(Post, post.parent_id)
        if parent is not None and parent.author_id and not parent.deleted and parent.author_id != post.author_id:
            replied_to = parent.author_id
    mentioned: set[int] = set(notify) - {post.author_id}
    if "@" in post.body:
        people = session.execute(
            select(User.id, User.name).join(Membership, Membership.user_id == User.id)
            .where(Membership.room_id == room.id, User.active.is_(True))).all()
        if room.non_attributed:  # "@Participant 2" reaches that participant of the thread
            people = list(people) + pseudonyms.mention_names(post.thread_id)
        mentioned |= find_mentions(post.body, people) - {post.author_id}
    named = ({replied_to} if replied_to is not None else set()) | mentioned
    # One query: of the people named, the room's members (for a new thread) and the thread's and room's
    # watchers, those who may read the room, each with their room level (None: not a member) and own
    # level for the thread.
    q = _readers_query(room.id, room.visibility, room.organisation_id, new_thread)
    kinds: dict[int, str] = {}
    for uid, room_level, own in session.execute(q, {"named": sorted(named), "thread_id": post.thread_id}):
        level = thread_level(room_level, own)
        if level == "muted":
            continue
        if uid in mentioned:
            kinds[uid] = "mention"
        elif uid == replied_to:
            kinds[uid] = "reply"
        elif new_thread and room_level in ("watching", "tracking"):
            kinds[uid] = "thread"
        elif not new_thread and level == "watching":
            kinds[uid] = "post"
    kinds.pop(post.author_id, None)
    return kinds


@functools.lru_cache(maxsize=256)
def _readers_query(room_id: int, visibility: str, organisation_id: int | None, new_thread: bool) -> Select:
    """Built once per room (and kept while the room's visibility stays the same)."""
    room = SimpleNamespace(id=room_id, visibility=visibility, organisation_id=organisation_id)
    named = User.id.in_(bindparam("named", expanding=True))
    member = Membership.id.is_not(None)
    concerned = (member | named) if new_thread else (
        named | (Membership.notify_level == "watching") | ThreadWatch.level.is_not(None))
    return (select(User.id, Membership.notify_level, ThreadWatch.level)
            .outerjoin(Membership, (Membership.user_id == User.id) & (Membership.room_id == room_id))
            .outerjoin(ThreadWatch, (ThreadWatch.user_id == User.id)
                       & (ThreadWatch.thread_id == bindparam("thread_id")))
            .where(policy.room_readers_clause(room), concerned))


_notifications = Notification.__table__
_INSERT = insert(_notifications).returning(_notifications.c.id, sort_by_parameter_order=True)
_UNREAD = (select(_notifications.c.user_id, func.count(_notifications.c.id))
           .where(_notifications.c.user_id.in_(bindparam("uids", expanding=True)),
                  _notifications.c.read_at.is_(None))
           .group_by(_notifications.c.user_id))


@sa_event.listens_for(Session, "before_commit")
def _notify_before_commit(session: Session) -> None:
    if session.info.get("collab_notifying"):
        return  # the savepoint below commits too, and that fires this hook again
    queued = events.pending(session)
    todo = [ev for ev in queued if ev.name in ("post.created", "thread.created") and not ev.meta.get("notified")]
    if not todo:
        return
    session.info["collab_notifying"] = True
    try:
        plans = []
        for ev in todo:
            ev.meta["notified"] = True
            post = session.get(Post, ev.payload["post"]["id"])
            if post is not None and not post.deleted:
                kinds = plan(session, post, ev.name == "thread.created", ev.meta.get("notify", ()))
                if kinds:
                    plans.append((post, kinds))
        if not plans:
            return
        rows = [dict(user_id=uid, kind=kind, room_id=post.thread.room_id, thread_id=post.thread_id,
                     post_id=post.id, actor_id=post.author_id, created_at=post.created_at, read_at=None,
                     emailed_at=None)
                for post, kinds in plans for uid, kind in kinds.items()]
        conn = session.connection()
        # All rows in one INSERT, in a savepoint of the connection's own: a failed insert must not take the
        # post with it, and the session (its queued events) never sees it.
        with conn.begin_nested():
            ids = list(conn.execute(_INSERT, rows).scalars())
            unread = dict(conn.execute(_UNREAD, {"uids": sorted({r["user_id"] for r in rows})}).all())
        posts = {post.id: post for post, _kinds in plans}
        for row, nid in zip(rows, ids):
            post = posts[row["post_id"]]
            # What notification_dict() reads of a Notification, without making one the session would track.
            n = SimpleNamespace(id=nid, room=post.thread.room, thread=post.thread, post=post, actor=post.author, **row)
            events.queue(session, "notification.created",
                         {"notification": notification_dict(n), "unread": unread.get(row["user_id"], 0)},
                         user_id=row["user_id"], notification_id=nid, kind=row["kind"])
    except Exception:  # never lose a post because a notification could not be written
        log.exception("could not write notifications")
    finally:
        session.info.pop("collab_notifying", None)
