"""Notifications: what a person is told (an @mention, a reply to their post, a new thread, a new post in
a thread they watch, a moderator's or decision-maker's action), how it reads (plain text, naming the room
or thread), the bell's unread count, marking read, and the per-account e-mail choices.

Who hears about a post is decided in rooms/notify_delivery.py (by the watch levels of rooms/watching.py);
the e-mails are rooms/notify_email.py; @mention parsing is rooms/mentions.py.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

from flask import has_request_context, url_for
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from auth.models import User
from collab import events, validate
from collab.db import Base, utcnow
from collab.errors import Invalid, NotFound
from collab.extensions import db
from rooms import policy, pseudonyms
from rooms.markdown import plain_text, render
from rooms.models import Post, Room, Thread

KINDS = ("mention", "reply", "thread", "post", "hidden", "restored", "removed", "muted", "revealed", "idea",
         "qa_answer", "qa_decline", "qa_due")
KIND_LABELS = {"mention": "mentioned you", "reply": "replied to your post", "thread": "started a thread",
               "post": "posted in a thread you watch",
               # moderation (rooms/moderation.py): the actor is the room moderator
               "hidden": "hid your post", "restored": "restored your hidden post", "removed": "removed your post",
               "muted": "muted you in this room", "revealed": "saw that you wrote this post (a moderation check)",
               # ideas (rooms/ideas/services.py): the actor is the decision-maker
               "idea": "changed the status of an idea",
               # Q&A (rooms/qa/hosting.py): the actor is the host or moderator; an anonymous asker is told too
               "qa_answer": "answered your question", "qa_decline": "declined your question",
               "qa_due": "reminds you: a question you own is due for an answer"}
PER_PAGE = 30


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "post_id"),  # one notification per person per post
        Index("ix_notifications_user_read", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id], lazy="joined")
    room: Mapped[Room] = relationship(lazy="joined")
    thread: Mapped[Thread] = relationship(lazy="joined")
    post: Mapped[Post] = relationship(lazy="joined")


class NotificationPrefs(Base):
    """Per-account e-mail choices (no row = the defaults: both on)."""

    __tablename__ = "notification_prefs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email_mentions: Mapped[bool] = mapped_column(Boolean, default=True)
    email_digest: Mapped[bool] = mapped_column(Boolean, default=True)
    last_digest_at: Mapped[datetime | None] = mapped_column(DateTime)


def _unread(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


# -- reading and marking ------------------------------------------------------------

# Block ends and line breaks become spaces before the tags go, so table cells and list items do not run
# together ("| a | b |" previews as "a b").
_BLOCK_END = re.compile(r"<(?=/?(?:p|li|td|th|tr|h[1-6]|blockquote|pre|div|br|hr)\b)", re.I)


@functools.lru_cache(maxsize=128)
def _plain(body: str) -> str:
    return plain_text(_BLOCK_END.sub(" <", render(body)))


def excerpt(post: Post, length: int = 160) -> str:
    """A post's opening as plain text: its Markdown rendered (and sanitised) first, then the tags dropped,
    so "**four**" reads "four" and a table reads as its cells' words."""
    if post.deleted or post.hidden_at is not None:
        return ""
    text = _plain(post.body)
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _post_url(post_id: int) -> str:
    if has_request_context():
        return url_for("rooms.post_link", post_id=post_id)
    return f"/posts/{post_id}"


def actor_name(n: Notification) -> str:
    """Who caused a notification, as shown: "Participant n" for posts in non-attributed rooms."""
    if n.kind in ("mention", "reply", "thread", "post") and n.room.non_attributed:
        return pseudonyms.name(n.thread_id, n.actor_id)
    if n.kind == "idea" and n.room.non_attributed:
        return "A decision-maker"
    if n.kind in ("qa_answer", "qa_decline") and n.room.non_attributed:
        return "A host"
    if n.kind == "qa_due":
        return "Collab"
    return n.actor.name if n.actor else "Someone"


def _actor(n: Notification) -> dict[str, Any] | None:
    if n.kind in ("mention", "reply", "thread", "post", "idea", "qa_answer", "qa_decline") and n.room.non_attributed:
        return {"name": actor_name(n), "pseudonym": True}
    if n.kind == "qa_due":
        return None
    return {"id": n.actor.id, "name": n.actor.name} if n.actor else None


def headline(n: Notification) -> str:
    """One line saying what happened and where: a new thread names its room, anything else its thread."""
    who = actor_name(n)
    if n.kind == "thread":
        return f"{who} started a thread in {n.room.name}"
    if n.kind == "post":
        return f"{who} posted in “{n.thread.title}”"
    return f"{who} {KIND_LABELS.get(n.kind, n.kind)} in “{n.thread.title}”"


def notification_dict(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "text": f"{actor_name(n)} {KIND_LABELS.get(n.kind, n.kind)}",
        "headline": headline(n),
        "actor": _actor(n),
        "room": {"id": n.room.id, "name": n.room.name},
        "thread": {"id": n.thread.id, "title": n.thread.title},
        "post_id": n.post_id,
        "excerpt": excerpt(n.post),
        "url": _post_url(n.post_id),
        "created_at": n.created_at.isoformat(timespec="seconds") + "Z",
        "read": n.read_at is not None,
    }


def unread_count(user: User) -> int:
    return _unread(db.session(), user.id)


def visible_clause(user: User):
    """Notifications the account may still see (a room it can no longer read drops out)."""
    return (Notification.user_id == user.id) & Notification.room_id.in_(policy.readable_room_ids(user))


def list_for(user: User, *, page: int = 1, unread_only: bool = False) -> tuple[list[Notification], int]:
    q = select(Notification).where(visible_clause(user))
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    total = db.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    items = list(db.session.scalars(q.order_by(Notification.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE)))
    return items, total


def _announce_read(user: User, ids: list[int] | None) -> None:
    events.queue(db.session, "notification.read", {"ids": ids, "all": ids is None, "unread": unread_count(user)},
                 user_id=user.id)


def mark_read(user: User, ids: object) -> int:
    if not isinstance(ids, list) or not ids or len(ids) > 500:
        raise Invalid("ids must be a list of 1 to 500 notification ids.", "ids")
    clean = [validate.int_id(i, "ids") for i in ids]
    db.begin_write()
    n = db.session.execute(update(Notification).where(
        Notification.user_id == user.id, Notification.id.in_(clean), Notification.read_at.is_(None))
        .values(read_at=utcnow())).rowcount
    _announce_read(user, clean)
    db.session.commit()
    return n


def mark_all_read(user: User) -> int:
    db.begin_write()
    n = db.session.execute(update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)).values(read_at=utcnow())).rowcount
    _announce_read(user, None)
    db.session.commit()
    return n


def unread_in_thread(user: User, thread_id: int, up_to: int) -> bool:
    return db.session.scalar(select(Notification.id).where(
        Notification.user_id == user.id, Notification.read_at.is_(None), Notification.thread_id == thread_id,
        Notification.post_id <= up_to).limit(1)) is not None


def mark_thread_read(user: User, thread_id: int, up_to: int) -> None:
    """Reading a thread reads its notifications too (up to the last post shown), inside the caller's write
    transaction; the bell of every open page follows (a "notification.read" event after the commit)."""
    ids = list(db.session.scalars(select(Notification.id).where(
        Notification.user_id == user.id, Notification.thread_id == thread_id, Notification.post_id <= up_to,
        Notification.read_at.is_(None))))
    if not ids:
        return
    db.session.execute(update(Notification).where(Notification.id.in_(ids)).values(read_at=utcnow()))
    _announce_read(user, ids)


def open_notification(user: User, notification_id: object) -> Notification:
    """Mark one notification read and return it (for following its link)."""
    nid = validate.int_id(notification_id, "notification_id")
    n = db.session.get(Notification, nid)
    if n is None or n.user_id != user.id or not policy.can_read_room(user, n.room):
        raise NotFound("Notification not found.")
    if n.read_at is None:
        mark_read(user, [n.id])
    return n


# -- e-mail choices ------------------------------------------------------------------------

def prefs(user: User) -> NotificationPrefs:
    p = db.session.get(NotificationPrefs, user.id)
    return p or NotificationPrefs(user_id=user.id, email_mentions=True, email_digest=True)


def set_prefs(user: User, *, email_mentions: object, email_digest: object) -> NotificationPrefs:
    for name, value in (("email_mentions", email_mentions), ("email_digest", email_digest)):
        if not isinstance(value, bool):
            raise Invalid(f"{name} must be true or false.", name)
    db.begin_write()
    p = db.session.get(NotificationPrefs, user.id)
    if p is None:
        p = NotificationPrefs(user_id=user.id)
        db.session.add(p)
    p.email_mentions, p.email_digest = email_mentions, email_digest
    db.session.commit()
    return p
