"""E-mail about notifications, for people who are not online: at once for an @mention (unless they said
no), and a daily digest of the rest. An OFFICIAL-SENSITIVE room's e-mail carries a link, never the text.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from auth.models import User
from collab import mail, timezones
from collab.db import utcnow
from collab.extensions import db
from rooms import labels, policy
from rooms.models import Post
from rooms.notifications import Notification, NotificationPrefs, actor_name, excerpt, headline, prefs

DIGEST_EVERY = timedelta(hours=24)


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
            where = "" if n.kind == "thread" else f" ({n.room.name})"   # a new thread's headline names its room
            lines.append(f"- [{labels.label_of(n.room)}] {headline(n)}{where}, {timezones.fmt(n.created_at, zone)}")
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
