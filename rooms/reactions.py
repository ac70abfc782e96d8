"""Reactions: a small fixed set of emoji anyone who may post can put on a post.

Each change is a numbered room event (`reaction.added` / `reaction.removed`)
carrying the post's whole reaction summary, so live clients and `sync` see the
same thing.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from auth.models import User
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy, pseudonyms, services
from rooms.models import Post, Reaction

# emoji -> its name, read out by screen readers
EMOJI: dict[str, str] = {
    "👍": "thumbs up",
    "❤️": "heart",
    "🎉": "celebrate",
    "😮": "surprised",
    "🙏": "thank you",
    "👀": "looking into it",
}


def summary(post_ids: Iterable[int], *, unnamed: bool = False) -> dict[int, list[dict[str, Any]]]:
    """post id -> [{emoji, label, count, user_ids}] in the fixed emoji order (`unnamed`, for
    non-attributed rooms: no user_ids, only counts)."""
    ids = list(post_ids)
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = db.session.execute(
        select(Reaction.post_id, Reaction.emoji, Reaction.user_id).where(Reaction.post_id.in_(ids))
        .order_by(Reaction.id)).all()
    grouped: dict[int, dict[str, list[int]]] = {}
    for post_id, emoji, user_id in rows:
        grouped.setdefault(post_id, {}).setdefault(emoji, []).append(user_id)
    order = list(EMOJI)
    for post_id, by_emoji in grouped.items():
        out[post_id] = [{"emoji": e, "label": EMOJI.get(e, e), "count": len(u), "user_ids": [] if unnamed else u}
                        for e, u in sorted(by_emoji.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)]
    return out


def thread_reactions(actor: User, thread_id: object) -> dict[int, list[dict[str, Any]]]:
    thread = services.get_thread(actor, thread_id)
    ids = db.session.scalars(select(Post.id).where(Post.thread_id == thread.id, Post.deleted_at.is_(None)))
    return {k: v for k, v in summary(ids, unnamed=thread.room.non_attributed).items() if v}


def set_reaction(actor: User, post_id: object, emoji: object, on: bool) -> list[dict[str, Any]]:
    """Add (on=True) or take back (on=False) the actor's reaction; returns the post's summary."""
    post = services.get_post(actor, post_id)
    if not isinstance(emoji, str) or emoji not in EMOJI:
        raise Invalid("emoji must be one of: " + " ".join(EMOJI) + ".", "emoji")
    room = post.thread.room
    if post.deleted:
        raise Invalid("You cannot react to a removed post.", "post_id")
    if not policy.can_post(actor, room):
        raise Forbidden("You can read this room but not react in it.")
    db.begin_write()
    mine = db.session.scalar(select(Reaction.id).where(
        Reaction.post_id == post.id, Reaction.user_id == actor.id, Reaction.emoji == emoji))
    if (mine is not None) == on:
        db.session.rollback()
        return summary([post.id], unnamed=room.non_attributed)[post.id]
    try:
        if on:
            db.session.add(Reaction(post_id=post.id, user_id=actor.id, emoji=emoji))
        else:
            db.session.execute(delete(Reaction).where(Reaction.id == mine))
        db.session.flush()
    except IntegrityError:  # the same reaction, added at the same moment elsewhere
        db.session.rollback()
        return summary([post.id], unnamed=room.non_attributed)[post.id]
    result = summary([post.id], unnamed=room.non_attributed)[post.id]
    if room.non_attributed:
        who = pseudonyms.person(post.thread_id, actor.id)
    else:
        who = {"id": actor.id, "name": actor.name}
    services.record_event(room.id, "reaction.added" if on else "reaction.removed", {
        "post_id": post.id, "thread_id": post.thread_id, "emoji": emoji, "user": who, "reactions": result})
    db.session.commit()
    return result
