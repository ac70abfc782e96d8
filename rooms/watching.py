"""Watch levels, as Discourse has them: how much a room, and each thread in it, tells one account.

A room's level is on the account's membership (`Membership.notify_level`); a thread's level is a
`ThreadWatch` row, and no row means "normal": the thread follows its room (a watched room watches its
threads, a muted room mutes them, otherwise replies to you and @mentions). What each level delivers:

- room watching: every new thread and every new post in the room;
- room tracking (the default): new threads, replies to you, @mentions;
- room normal: replies to you and @mentions;
- room muted: nothing, not even @mentions;
- thread watching: every new post in the thread; tracking: replies to you and @mentions, even when the
  room is muted; muted: nothing from this thread.

Taking part sets a thread's level by itself, as in Discourse: the thread you start is watched, a thread
you reply to is tracked (`follow_own_post`). Neither overrides a level you chose yourself, which is why
choosing "normal" keeps a row (level "normal": the room decides) instead of deleting it; nor does a reply
lower a watched room's threads to tracking or unmute a muted room's.

`rooms/notify_delivery.py` applies these rules to each new post; rooms/ideas/services.py asks
`thread_followers` who hears of an idea's status change.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Select, String, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from auth.models import User
from collab import validate
from collab.db import Base, utcnow
from collab.errors import Invalid
from collab.extensions import db
from rooms import policy, services
from rooms.models import NOTIFY_LEVELS, Membership, Room, Thread

ROOM_LEVELS = {
    "watching": ("Watching", "Every new thread and every reply in this room."),
    "tracking": ("Tracking", "New threads, replies to you and @mentions."),
    "normal": ("Normal", "Only replies to you and @mentions."),
    "muted": ("Muted", "Nothing from this room, not even @mentions."),
}
THREAD_LEVELS = {
    "watching": ("Watching", "Every new reply in this thread."),
    "tracking": ("Tracking", "Replies to you and @mentions here, even if the room is muted."),
    "normal": ("Normal", "As the room is set: watched rooms watch their threads, muted rooms mute them."),
    "muted": ("Muted", "Nothing from this thread, not even @mentions."),
}
# Names the levels had before Discourse's (issue 14), still accepted from API clients.
_OLD_ROOM_LEVELS = {"all": "tracking", "mentions": "normal", "mute": "muted"}


class ThreadWatch(Base):
    """One account's level for one thread, chosen or set by taking part (no row, or "normal": the room
    decides)."""

    __tablename__ = "thread_watches"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
    level: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def thread_level(room_level: Optional[str], own: Optional[str]) -> str:
    """The level that decides what a thread tells someone: their own for the thread, else the room's
    (watching and muted carry over; any other room level leaves the thread "normal")."""
    if own and own != "normal":
        return own
    return room_level if room_level in ("watching", "muted") else "normal"


# -- reading levels --------------------------------------------------------------------------------

def room_level(user: User, room: Room) -> Optional[str]:
    """The account's level in a room it belongs to (None: not a member, so it has no room level)."""
    m = policy.membership(user, room)
    return m.notify_level if m is not None else None


def own_thread_level(user: User, thread: Thread) -> Optional[str]:
    w = db.session.get(ThreadWatch, (user.id, thread.id))
    return w.level if w is not None else None


def thread_state(user: User, thread: Thread) -> dict:
    """What the thread page's menu shows: the level chosen ("normal" if none) and the one in effect."""
    own = own_thread_level(user, thread)
    return {"level": own or "normal", "effective": thread_level(room_level(user, thread.room), own)}


def room_levels(user: User) -> list[tuple[Room, str]]:
    rows = db.session.execute(
        select(Room, Membership.notify_level).join(Membership, Membership.room_id == Room.id)
        .where(Membership.user_id == user.id, Room.archived_at.is_(None)).order_by(Room.name)).all()
    return [(room, level) for room, level in rows if policy.can_read_room(user, room)]


# -- setting levels --------------------------------------------------------------------------------

def set_room_level(user: User, room_id: object, level: object) -> Membership:
    room = services.get_room(user, room_id)
    if isinstance(level, str) and level in _OLD_ROOM_LEVELS:
        level = _OLD_ROOM_LEVELS[level]
    level_v = validate.choice(level, "level", NOTIFY_LEVELS, label="Notification level")
    m = policy.membership(user, room)
    if m is None:
        raise Invalid("Join the room first to choose how it notifies you.", "level")
    db.begin_write()
    m = db.session.merge(m)
    m.notify_level = level_v
    db.session.commit()
    return m


def set_thread_level(user: User, thread_id: object, level: object) -> str:
    """Choose how much one thread tells you (any thread you may read). "normal" gives the decision
    back to the room, and is kept as a row so that replying later does not start tracking the thread."""
    thread = services.get_thread(user, thread_id)
    level_v = validate.choice(level, "level", tuple(THREAD_LEVELS), label="Notification level")
    db.begin_write()
    w = db.session.get(ThreadWatch, (user.id, thread.id))
    if w is None:
        db.session.add(ThreadWatch(user_id=user.id, thread_id=thread.id, level=level_v))
    else:
        w.level, w.updated_at = level_v, utcnow()
    db.session.commit()
    return level_v


def follow_own_post(user_id: int, thread_id: int, *, started: bool, room_level: Optional[str]) -> None:
    """Inside the write of a new post: the author watches the thread they start and tracks one they
    reply to, unless they already have a level for it (chosen, or set by an earlier post). A reply in a
    room the author watches or muted adds nothing: its threads already follow the room, and tracking
    would lower the one and undo the other."""
    if not started and room_level in ("watching", "muted"):
        return
    values = dict(user_id=user_id, thread_id=thread_id, level="watching" if started else "tracking",
                  updated_at=utcnow())
    dialect = postgresql if not db.is_sqlite else sqlite
    db.session.execute(dialect.insert(ThreadWatch).values(**values).on_conflict_do_nothing())


# -- who follows a thread (for notices that are not posts) -------------------------------------------

def thread_followers(thread: Thread) -> Select:
    """Ids of the accounts watching a thread, by their own choice or by watching its room (minus those
    who set the thread to something else), among those who may read the room."""
    own = select(ThreadWatch.user_id).where(ThreadWatch.thread_id == thread.id, ThreadWatch.level != "normal")
    watching_own = own.where(ThreadWatch.level == "watching")
    watching_room = (select(Membership.user_id)
                     .where(Membership.room_id == thread.room_id, Membership.notify_level == "watching",
                            Membership.user_id.not_in(own)))
    return select(User.id).where(or_(User.id.in_(watching_own), User.id.in_(watching_room)),
                                 policy.room_readers_clause(thread.room))


def thread_muters(thread: Thread) -> Select:
    """Ids of the accounts for whom a thread is muted (their own choice, or a muted room they did not
    override for this thread)."""
    own = select(ThreadWatch.user_id).where(ThreadWatch.thread_id == thread.id, ThreadWatch.level != "normal")
    muted_own = own.where(ThreadWatch.level == "muted")
    muted_room = (select(Membership.user_id)
                  .where(Membership.room_id == thread.room_id, Membership.notify_level == "muted",
                         Membership.user_id.not_in(own)))
    return select(User.id).where(or_(User.id.in_(muted_own), User.id.in_(muted_room)))
