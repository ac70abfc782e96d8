"""Notifications: @mentions, replies to your posts, new threads in rooms you
follow; a bell with an unread count, per-room levels and e-mail for people who
are not online (immediately for mentions, a daily digest for the rest).

Notifications are written in the same transaction as the post that causes
them (a `before_commit` hook reads the events the service queued), so a post
and its notifications exist together or not at all. E-mail goes out after the
commit, in the background.
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from auth.models import User
from collab import events, mail, timezones, validate
from collab.db import Base, utcnow
from collab.errors import Invalid, NotFound
from collab.extensions import db
from rooms import labels, policy, pseudonyms, services
from rooms.models import NOTIFY_LEVELS, Membership, Post, Room, Thread

log = logging.getLogger(__name__)

KINDS = ("mention", "reply", "thread", "hidden", "restored", "removed", "muted", "revealed", "idea",
         "qa_answer", "qa_decline", "qa_due")
KIND_LABELS = {"mention": "mentioned you", "reply": "replied to your post", "thread": "started a thread",
               # moderation (rooms/moderation.py): the actor is the room moderator
               "hidden": "hid your post", "restored": "restored your hidden post", "removed": "removed your post",
               "muted": "muted you in this room", "revealed": "saw that you wrote this post (a moderation check)",
               # ideas (rooms/ideas/services.py): the actor is the decision-maker
               "idea": "changed the status of an idea",
               # Q&A (rooms/qa/hosting.py): the actor is the host or moderator; an anonymous asker is told too
               "qa_answer": "answered your question", "qa_decline": "declined your question",
               "qa_due": "reminds you: a question you own is due for an answer"}
LEVEL_LABELS = {"all": "Everything: new threads, replies to you and mentions",
                "mentions": "Only when someone @mentions me",
                "mute": "Nothing (mute this room)"}
DIGEST_EVERY = timedelta(hours=24)
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


# -- mentions --------------------------------------------------------------------

_WORD = re.compile(r"\w")


def find_mentions(body: str, people: Iterable[tuple[int, str]]) -> set[int]:
    """Ids of the people written as "@Full Name" in `body` (longest name wins, any case).

    An "@" glued to a word (an e-mail address) is not a mention, and the name must
    end at a word boundary, so "@Ann" does not mention "Anna"."""
    if "@" not in body:
        return set()
    names = sorted(((name.casefold(), uid) for uid, name in people if name), key=lambda x: -len(x[0]))
    folded = body.casefold()
    found: set[int] = set()
    for m in re.finditer("@", folded):
        i = m.start()
        if i > 0 and _WORD.match(folded[i - 1]):
            continue
        rest = folded[i + 1:]
        for name, uid in names:
            if rest.startswith(name) and (len(rest) == len(name) or not _WORD.match(rest[len(name)])):
                found.add(uid)
                break
    return found


def mention_candidates(actor: User, room_id: object, query: object = "", limit: int = 8,
                       thread_id: object = None) -> list[dict[str, Any]]:
    """Members of a room whose name matches, for the composer's @-autocomplete (in a
    non-attributed room: the pseudonyms of the thread's participants, never names)."""
    room = services.get_room(actor, room_id)
    q = query if isinstance(query, str) else ""
    q = validate.clean_text(q)[:60].strip().casefold()
    if room.non_attributed:
        tid = thread_id if isinstance(thread_id, int) else (int(thread_id) if isinstance(thread_id, str)
                                                             and validate.digits(thread_id) and len(thread_id) < 12 else None)
        thread = db.session.get(Thread, tid) if tid else None
        if thread is None or thread.room_id != room.id:
            return []
        return pseudonyms.mention_people(thread.id, exclude=actor.id, query=q)[:limit]
    out = []
    for m in services.room_members(actor, room):
        if not m.user.active or m.user_id == actor.id:
            continue
        name = m.user.name
        folded = name.casefold()
        if not q or folded.startswith(q) or any(part.startswith(q) for part in folded.split()):
            out.append({"id": m.user_id, "name": name, "job_title": m.user.job_title})
        if len(out) >= limit:
            break
    return out


# -- creating notifications (inside the post's own transaction) -------------------

def _plan(session: Session, post: Post, new_thread: bool, notify: Iterable[int] = ()) -> dict[int, str]:
    """Who hears about this post, and why (mention beats reply beats new thread). `notify`: people
    the post concerns without naming them (create_thread's `notify`), heard as mentions."""
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
    if not new_thread and replied_to is None and not mentioned:
        return {}  # the common case (answering your own thread): nothing more to ask the database
    named = ({replied_to} if replied_to is not None else set()) | mentioned
    # One query: of the people named (and, for a new thread, of the room's members), those who may read
    # the room, each with their level in it (not a member: "all").
    q = _readers_query(room.id, room.visibility, room.organisation_id, new_thread)
    readers = {uid: (level if mid is not None else "all")
               for uid, mid, level in session.execute(q, {"named": sorted(named)})}
    kinds: dict[int, str] = {}
    if new_thread:
        for uid, level in readers.items():
            if level == "all":
                kinds[uid] = "thread"
    if replied_to in readers and readers[replied_to] == "all":
        kinds[replied_to] = "reply"
    for uid in mentioned:
        if uid in readers and readers[uid] != "mute":
            kinds[uid] = "mention"
    kinds.pop(post.author_id, None)
    return kinds


@functools.lru_cache(maxsize=256)
def _readers_query(room_id: int, visibility: str, organisation_id: int | None, new_thread: bool) -> Select:
    """Built once per room (and kept while the room's visibility stays the same)."""
    room = SimpleNamespace(id=room_id, visibility=visibility, organisation_id=organisation_id)
    named = User.id.in_(bindparam("named", expanding=True))
    return (select(User.id, Membership.id, Membership.notify_level)
            .outerjoin(Membership, (Membership.user_id == User.id) & (Membership.room_id == room_id))
            .where(policy.room_readers_clause(room), (Membership.id.is_not(None) | named) if new_thread else named))


def _unread(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


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
                plan = _plan(session, post, ev.name == "thread.created", ev.meta.get("notify", ()))
                if plan:
                    plans.append((post, plan))
        if not plans:
            return
        rows = [dict(user_id=uid, kind=kind, room_id=post.thread.room_id, thread_id=post.thread_id,
                     post_id=post.id, actor_id=post.author_id, created_at=post.created_at, read_at=None,
                     emailed_at=None)
                for post, plan in plans for uid, kind in plan.items()]
        conn = session.connection()
        # All rows in one INSERT, in a savepoint of the connection's own: a failed insert must not take the
        # post with it, and the session (its queued events) never sees it.
        with conn.begin_nested():
            ids = list(conn.execute(_INSERT, rows).scalars())
            unread = dict(conn.execute(_UNREAD, {"uids": sorted({r["user_id"] for r in rows})}).all())
        posts = {post.id: post for post, _plan in plans}
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


# -- reading and marking ------------------------------------------------------------

def excerpt(post: Post, length: int = 160) -> str:
    if post.deleted or post.hidden_at is not None:
        return ""
    text = " ".join(post.body.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _post_url(post_id: int) -> str:
    if has_request_context():
        return url_for("rooms.post_link", post_id=post_id)
    return f"/posts/{post_id}"


def actor_name(n: Notification) -> str:
    """Who caused a notification, as shown: "Participant n" for posts in non-attributed rooms."""
    if n.kind in ("mention", "reply", "thread") and n.room.non_attributed:
        return pseudonyms.name(n.thread_id, n.actor_id)
    if n.kind == "idea" and n.room.non_attributed:
        return "A decision-maker"
    if n.kind in ("qa_answer", "qa_decline") and n.room.non_attributed:
        return "A host"
    if n.kind == "qa_due":
        return "Collab"
    return n.actor.name if n.actor else "Someone"


def _actor(n: Notification) -> dict[str, Any] | None:
    if n.kind in ("mention", "reply", "thread", "idea", "qa_answer", "qa_decline") and n.room.non_attributed:
        return {"name": actor_name(n), "pseudonym": True}
    if n.kind == "qa_due":
        return None
    return {"id": n.actor.id, "name": n.actor.name} if n.actor else None


def notification_dict(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "text": f"{actor_name(n)} {KIND_LABELS.get(n.kind, n.kind)}",
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


def open_notification(user: User, notification_id: object) -> Notification:
    """Mark one notification read and return it (for following its link)."""
    nid = validate.int_id(notification_id, "notification_id")
    n = db.session.get(Notification, nid)
    if n is None or n.user_id != user.id or not policy.can_read_room(user, n.room):
        raise NotFound("Notification not found.")
    if n.read_at is None:
        mark_read(user, [n.id])
    return n


# -- settings ------------------------------------------------------------------------

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


def room_levels(user: User) -> list[tuple[Room, str]]:
    rows = db.session.execute(
        select(Room, Membership.notify_level).join(Membership, Membership.room_id == Room.id)
        .where(Membership.user_id == user.id, Room.archived_at.is_(None)).order_by(Room.name)).all()
    return [(room, level) for room, level in rows if policy.can_read_room(user, room)]


def set_room_level(user: User, room_id: object, level: object) -> Membership:
    room = services.get_room(user, room_id)
    level_v = validate.choice(level, "level", NOTIFY_LEVELS, label="Notification level")
    m = policy.membership(user, room)
    if m is None:
        raise Invalid("Join the room first to choose how it notifies you.", "level")
    db.begin_write()
    m = db.session.merge(m)
    m.notify_level = level_v
    db.session.commit()
    return m


# -- e-mail ----------------------------------------------------------------------------

def _absolute(path: str) -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


# Lines an e-mail about a post adds for its recipient, registered by the packages that know more about the post
# (rooms/meetings/schedule.py: a meeting notice's time, in the recipient's time zone). Each is (post, recipient) ->
# a line or "".
_email_lines: list[Callable[[Post, User], str]] = []


def on_email(hook: Callable[[Post, User], str]) -> Callable[[Post, User], str]:
    """Register `hook` (a decorator); registering the same function twice keeps one."""
    if hook not in _email_lines:
        _email_lines.append(hook)
    return hook


def _extra_lines(post: Post, user: User) -> str:
    return "".join(f"{line}\n\n" for line in (hook(post, user) for hook in _email_lines) if line)


def send_mention_email(notification_id: int, is_online) -> bool:
    """Immediate e-mail for a mention, unless the person is online or said no. Returns True if sent."""
    n = db.session.get(Notification, notification_id)
    if n is None or n.kind != "mention" or n.read_at is not None or n.emailed_at is not None:
        return False
    user = db.session.get(User, n.user_id)
    if user is None or not user.active or not prefs(user).email_mentions or not mail.enabled():
        return False
    if is_online(user.id) or not policy.can_read_room(user, n.room):
        return False
    db.begin_write()
    claimed = db.session.execute(update(Notification).where(
        Notification.id == n.id, Notification.emailed_at.is_(None)).values(emailed_at=utcnow())).rowcount
    db.session.commit()
    if not claimed:
        return False
    who = actor_name(n)
    # OFFICIAL-SENSITIVE (any label above the lowest): the e-mail carries a link, never the post's text.
    text = "" if labels.is_sensitive(n.room) else f":\n\n{excerpt(n.post, 600)}"
    body = (f"{who} mentioned you in “{n.thread.title}” ({n.room.name}){text}\n\n{_extra_lines(n.post, user)}"
            f"Read and reply: {_absolute(f'/posts/{n.post_id}')}\n\n"
            f"You get this because you were not online. Change e-mail settings: {_absolute('/notifications')}\n")
    if not mail.send(user.email, labels.subject(n.room, f"{who} mentioned you in {n.room.name}"), body):
        db.begin_write()
        db.session.execute(update(Notification).where(Notification.id == n.id).values(emailed_at=None))
        db.session.commit()
        return False
    return True


def send_due_digests(*, now: datetime | None = None, is_online=lambda _uid: False) -> int:
    """E-mail each account that has unread, not yet e-mailed notifications and had no
    digest in the last 24 hours. Safe to run in several processes at once: each account
    is claimed with one conditional UPDATE. Returns the number of digests sent."""
    if not mail.enabled():
        return 0
    now = now or utcnow()
    cutoff = now - DIGEST_EVERY
    user_ids = list(db.session.scalars(select(Notification.user_id).where(
        Notification.read_at.is_(None), Notification.emailed_at.is_(None)).distinct()))
    sent = 0
    for uid in user_ids:
        user = db.session.get(User, uid)
        if user is None or not user.active or not prefs(user).email_digest or is_online(uid):
            continue
        items = [n for n in db.session.scalars(select(Notification).where(
            Notification.user_id == uid, Notification.read_at.is_(None), Notification.emailed_at.is_(None),
            Notification.created_at <= now).order_by(Notification.id)) if policy.can_read_room(user, n.room)]
        if not items:
            continue
        db.begin_write()
        if db.session.get(NotificationPrefs, uid) is None:
            db.session.add(NotificationPrefs(user_id=uid, email_mentions=True, email_digest=True))
            db.session.flush()
        claimed = db.session.execute(update(NotificationPrefs).where(
            NotificationPrefs.user_id == uid,
            (NotificationPrefs.last_digest_at.is_(None)) | (NotificationPrefs.last_digest_at <= cutoff))
            .values(last_digest_at=now)).rowcount
        if not claimed:
            db.session.rollback()
            continue
        db.session.execute(update(Notification).where(Notification.id.in_([n.id for n in items]))
                           .values(emailed_at=now))
        db.session.commit()
        zone = timezones.zone_name_for(user)   # times in the recipient's zone, named
        lines = [f"You have {len(items)} unread notification{'s' if len(items) != 1 else ''} in Collab:", ""]
        for n in items[:50]:
            lines.append(f"- [{labels.label_of(n.room)}] {actor_name(n)} {KIND_LABELS.get(n.kind, n.kind)} "
                         f"in “{n.thread.title}” ({n.room.name}), {timezones.fmt(n.created_at, zone)}")
            lines += [f"  {x}" for x in _extra_lines(n.post, user).split("\n\n") if x]
            lines.append(f"  {_absolute(f'/posts/{n.post_id}')}")
        if len(items) > 50:
            lines.append(f"… and {len(items) - 50} more.")
        lines += ["", f"See them all and change e-mail settings: {_absolute('/notifications')}"]
        top = max((n.room for n in items), key=lambda r: labels.rank(labels.label_of(r)))
        if mail.send(user.email, labels.subject(top, "Your Collab digest"), "\n".join(lines) + "\n"):
            sent += 1
        else:
            db.begin_write()
            db.session.execute(update(Notification).where(Notification.id.in_([n.id for n in items]))
                               .values(emailed_at=None))
            db.session.execute(update(NotificationPrefs).where(NotificationPrefs.user_id == uid)
                               .values(last_digest_at=None))
            db.session.commit()
    return sent
