"""Moderation (issue 7): members flag posts; room moderators hide, restore or
delete them, mute members for a while, and in non-attributed rooms reveal who
wrote a post (account suspension is auth/suspension.py). Each action is audited in
its own transaction and the person concerned is notified."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from auth import audit
from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import policy, post_removal, services
from rooms.models import Post, Room
from rooms.moderation_models import PostFlag, RoomMute
from rooms.notifications import Notification, _unread, notification_dict
from rooms.serialize import post_dict

MAX_MUTE_HOURS = 24 * 90


def _reason(value: object, *, required: bool = True) -> str:
    return validate.text(value, "reason", max_len=500, required=required, multiline=True, label="Reason")


def _moderated_post(actor: User, post_id: object) -> Post:
    post = services.get_post(actor, post_id)
    if not policy.can_moderate(actor, post.thread.room):
        raise NotFound("Post not found.")
    return post


def notice_in_tx(kind: str, post: Post, actor: User | None, user_id: int | None = None) -> None:
    """Inside the caller's write: tell a post's author (or `user_id`) what a moderator did. One
    notification per person per post, so a later action replaces the earlier notice."""
    uid = user_id if user_id is not None else post.author_id
    if uid is None or (actor is not None and uid == actor.id):
        return
    n = db.session.scalar(select(Notification).where(Notification.user_id == uid, Notification.post_id == post.id))
    if n is None:
        n = Notification(user_id=uid, post_id=post.id)
        db.session.add(n)
    n.kind, n.room_id, n.thread_id = kind, post.thread.room_id, post.thread_id
    n.actor_id = actor.id if actor is not None else None
    n.created_at, n.read_at, n.emailed_at = utcnow(), None, None
    db.session.flush()
    db.session.refresh(n)
    events.queue(db.session, "notification.created",
                 {"notification": notification_dict(n), "unread": _unread(db.session(), uid)},
                 user_id=uid, notification_id=n.id, kind=kind)


def _resolve_flags(post: Post, actor: User, resolution: str) -> int:
    n = 0
    for f in db.session.scalars(select(PostFlag).where(PostFlag.post_id == post.id, PostFlag.resolved_at.is_(None))):
        f.resolved_at, f.resolved_by_id, f.resolution = utcnow(), actor.id, resolution
        n += 1
    return n


def _post_event(post: Post, name: str = "post.updated") -> None:
    services.record_event(post.thread.room_id, name, {"post": post_dict(post)})


# -- flags ------------------------------------------------------------------------------

def flag_post(actor: User, post_id: object, reason: object) -> PostFlag:
    post = services.get_post(actor, post_id)
    if not policy.can_flag_post(actor, post):
        raise Forbidden("Only members of this room can report its posts.")
    reason_v = _reason(reason)
    db.begin_write()
    existing = db.session.scalar(select(PostFlag).where(PostFlag.post_id == post.id, PostFlag.user_id == actor.id,
                                                        PostFlag.resolved_at.is_(None)))
    if existing is not None:
        existing.reason = reason_v
        flag = existing
    else:
        flag = PostFlag(post_id=post.id, room_id=post.thread.room_id, user_id=actor.id, reason=reason_v)
        db.session.add(flag)
    db.session.flush()
    audit.record("moderation.flagged", actor=actor, target_type="post", target_id=post.id,
                 room_id=post.thread.room_id, detail={"flag_id": flag.id, "reason": reason_v})
    db.session.commit()
    return flag


@dataclass
class QueueItem:
    post: Post
    flags: list[PostFlag] = field(default_factory=list)


@dataclass
class Queue:
    room: Room
    flagged: list[QueueItem]
    hidden: list[Post]
    mutes: list[RoomMute]


def queue(actor: User, room_id: object) -> Queue:
    room = services.get_room(actor, room_id)
    if not policy.can_moderate(actor, room):
        raise NotFound("Room not found.")
    items: dict[int, QueueItem] = {}
    for f in db.session.scalars(select(PostFlag).where(PostFlag.room_id == room.id, PostFlag.resolved_at.is_(None))
                                .order_by(PostFlag.id)):
        items.setdefault(f.post_id, QueueItem(f.post)).flags.append(f)
    hidden = list(db.session.scalars(
        select(Post).join(Post.thread).where(Post.thread.has(room_id=room.id), Post.hidden_at.is_not(None),
                                             Post.deleted_at.is_(None)).order_by(Post.hidden_at.desc()).limit(200)))
    mutes = list(db.session.scalars(select(RoomMute).where(
        RoomMute.room_id == room.id, RoomMute.lifted_at.is_(None), RoomMute.until > utcnow()).order_by(RoomMute.until)))
    return Queue(room, list(items.values()), hidden, mutes)


def open_flag_count(room: Room) -> int:
    return db.session.scalar(select(func.count(PostFlag.id)).where(
        PostFlag.room_id == room.id, PostFlag.resolved_at.is_(None))) or 0


# -- hide, restore, delete ------------------------------------------------------------------

def hide_post(actor: User, post_id: object, reason: object) -> Post:
    post = _moderated_post(actor, post_id)
    reason_v = _reason(reason)
    if post.deleted:
        raise Invalid("This post has been removed already.")
    db.begin_write()
    post.hidden_at, post.hidden_by_id, post.hidden_reason = utcnow(), actor.id, reason_v
    _resolve_flags(post, actor, "hidden")
    audit.record("moderation.hidden", actor=actor, target_type="post", target_id=post.id,
                 room_id=post.thread.room_id, detail={"reason": reason_v})
    notice_in_tx("hidden", post, actor)
    _post_event(post)
    db.session.commit()
    return post


def restore_post(actor: User, post_id: object) -> Post:
    post = _moderated_post(actor, post_id)
    if post.hidden_at is None:
        raise Invalid("This post is not hidden.")
    db.begin_write()
    post.hidden_at, post.hidden_by_id, post.hidden_reason = None, None, None
    audit.record("moderation.restored", actor=actor, target_type="post", target_id=post.id,
                 room_id=post.thread.room_id)
    notice_in_tx("restored", post, actor)
    _post_event(post)
    db.session.commit()
    return post


def dismiss_flags(actor: User, post_id: object) -> int:
    post = _moderated_post(actor, post_id)
    db.begin_write()
    n = _resolve_flags(post, actor, "dismissed")
    db.session.commit()
    return n


def delete_post(actor: User, post_id: object, reason: object) -> Post:
    """A moderator removes a post for good: a tombstone stays so the reply tree is whole."""
    post = _moderated_post(actor, post_id)
    reason_v = _reason(reason)
    if post.deleted:
        raise Invalid("This post has been removed already.")
    db.begin_write()
    audit.record("moderation.deleted", actor=actor, target_type="post", target_id=post.id,
                 room_id=post.thread.room_id, detail={"author_id": post.author_id, "reason": reason_v})
    shas = post_removal.remove_content(post, by_id=actor.id)
    post_removal.scrub_events(post.thread.room_id, [post])
    _resolve_flags(post, actor, "deleted")
    notice_in_tx("removed", post, actor)
    _post_event(post, "post.deleted")
    db.session.commit()
    post_removal.forget_files(shas)
    return post


# -- reveal (non-attributed rooms) -----------------------------------------------------------

def reveal_author(actor: User, post_id: object, reason: object) -> User | None:
    """A moderator learns who wrote a post in a non-attributed room, for a stated moderation reason.
    Audited, and the author is told."""
    post = _moderated_post(actor, post_id)
    if not post.thread.room.non_attributed:
        raise Invalid("Posts in this room are already shown with their author's name.")
    reason_v = _reason(reason)
    db.begin_write()
    audit.record("moderation.identity_revealed", actor=actor, target_type="post", target_id=post.id,
                 room_id=post.thread.room_id, detail={"reason": reason_v, "author_id": post.author_id})
    notice_in_tx("revealed", post, actor)
    db.session.commit()
    return db.session.get(User, post.author_id) if post.author_id else None


# -- mutes ----------------------------------------------------------------------------------

def _hours(value: object) -> int:
    raw = value.strip() if isinstance(value, str) else value
    if isinstance(raw, str) and validate.digits(raw) and len(raw) < 9:
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_MUTE_HOURS:
        raise Invalid(f"Choose a mute of 1 to {MAX_MUTE_HOURS} hours.", "hours")
    return raw


def mute_member(actor: User, room_id: object, user_id: object, hours: object, reason: object,
                post_id: object = None) -> RoomMute:
    room = services.get_room(actor, room_id)
    if not policy.can_moderate(actor, room):
        raise NotFound("Room not found.")
    uid = validate.int_id(user_id, "user_id")
    target = db.session.get(User, uid)
    if target is None or policy.membership(target, room) is None:
        raise Invalid("That account is not a member of this room.", "user_id")
    if not policy.can_mute(actor, room, target):
        raise Forbidden("Owners and moderators cannot be muted.", "user_id")
    hours_v, reason_v = _hours(hours), _reason(reason)
    pid = validate.int_id(post_id, "post_id", required=False)
    post = db.session.get(Post, pid) if pid else None
    if post is not None and post.thread.room_id != room.id:
        post = None
    db.begin_write()
    mute = RoomMute(room_id=room.id, user_id=uid, until=utcnow() + timedelta(hours=hours_v), reason=reason_v,
                    created_by_id=actor.id)
    db.session.add(mute)
    db.session.flush()
    audit.record("moderation.muted", actor=actor, target_type="user", target_id=uid, room_id=room.id,
                 detail={"hours": hours_v, "until": mute.until, "reason": reason_v, "post_id": pid})
    if post is not None:
        notice_in_tx("muted", post, actor, user_id=uid)
    db.session.commit()
    return mute


def lift_mute(actor: User, room_id: object, mute_id: object) -> None:
    room = services.get_room(actor, room_id)
    if not policy.can_moderate(actor, room):
        raise NotFound("Room not found.")
    mute = db.session.get(RoomMute, validate.int_id(mute_id, "mute_id"))
    if mute is None or mute.room_id != room.id or mute.lifted_at is not None:
        raise NotFound("That mute has ended already.")
    db.begin_write()
    mute.lifted_at = utcnow()
    audit.record("moderation.muted", actor=actor, target_type="user", target_id=mute.user_id, room_id=room.id,
                 detail={"lifted": True, "mute_id": mute.id})
    db.session.commit()
