"""Non-attributed (Chatham House) rooms: everyone who writes in a thread of such a
room appears there as "Participant <n>", numbered in the order people first
wrote in the thread, stable for the thread's life and never the account.

`assign()` runs inside the write that adds a post; `author_of()` answers what
to show for a post or thread author, for the JSON shapes (rooms/serialize.py),
the templates, live events, search results and notifications alike. Nothing
here reveals an account: a moderator's reveal is rooms/moderation.py.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from collab.db import transaction_memo
from collab.extensions import db
from rooms.labels import label_of
from rooms.models import Post, Room, Thread
from rooms.moderation_models import ThreadPseudonym

_MEMO = "pseudonyms_by_thread"


def room_label(room: Room) -> str:
    return label_of(room)


def applies(room: Room | None) -> bool:
    return bool(room is not None and room.non_attributed)


def assign(thread_id: int, user_id: int) -> int:
    """Inside the caller's write transaction: the number of `user_id` in the thread,
    giving the next one if they have none yet."""
    # Lock the thread row first (PostgreSQL), so two first posts never take the same number.
    db.session.execute(select(Thread.id).where(Thread.id == thread_id).with_for_update())
    number = db.session.scalar(select(ThreadPseudonym.number).where(
        ThreadPseudonym.thread_id == thread_id, ThreadPseudonym.user_id == user_id))
    if number is None:
        number = (db.session.scalar(select(func.max(ThreadPseudonym.number))
                                    .where(ThreadPseudonym.thread_id == thread_id)) or 0) + 1
        db.session.add(ThreadPseudonym(thread_id=thread_id, user_id=user_id, number=number))
        db.session.flush()
    return number


def numbers(thread_id: int) -> dict[int, int]:
    """user id -> number in one thread (one query per thread per transaction)."""
    memo = transaction_memo(db.session(), _MEMO)
    if thread_id not in memo:
        memo[thread_id] = dict(db.session.execute(select(ThreadPseudonym.user_id, ThreadPseudonym.number)
                                                  .where(ThreadPseudonym.thread_id == thread_id)).all())
    return memo[thread_id]




def name(thread_id: int, user_id: int | None) -> str:
    n = numbers(thread_id).get(user_id) if user_id is not None else None
    return f"Participant {n}" if n else "A participant"


def person(thread_id: int, user_id: int | None) -> dict[str, Any]:
    """The JSON "author" of a non-attributed post: a name, never an id."""
    return {"name": name(thread_id, user_id), "pseudonym": True}


def post_author(post: Post) -> dict[str, Any] | None:
    """What to show as a post's author (None: a removed post or a former member)."""
    if post.deleted:
        return None
    if applies(post.thread.room):
        return person(post.thread_id, post.author_id)
    return {"id": post.author.id, "name": post.author.name} if post.author else None


def thread_author(thread: Thread) -> dict[str, Any] | None:
    if applies(thread.room):
        return person(thread.id, thread.author_id)
    return {"id": thread.author.id, "name": thread.author.name} if thread.author else None


def display(post_or_thread: Any) -> str:
    """The author's name as pages show it."""
    if isinstance(post_or_thread, Post):
        who = post_author(post_or_thread)
        if post_or_thread.deleted:
            return "Post removed"
    else:
        who = thread_author(post_or_thread)
    return who["name"] if who else "Former member"


def member_event(payload: dict[str, Any]) -> dict[str, Any]:
    """A member.* room event as it goes out of a non-attributed room: who joined, left or
    changed role is not said (joining by posting would otherwise name the new participant)."""
    out = dict(payload)
    out["user"] = {"name": "A member", "pseudonym": True}
    return out


def redact_events(room: Room | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Numbered room events ({"event", "data"}) replayed by `sync`, with member.* events
    anonymised in a non-attributed room."""
    if not applies(room):
        return items
    return [dict(it, data=member_event(it["data"])) if it["event"].startswith("member.") else it for it in items]


def mention_people(thread_id: int, exclude: int | None = None, query: str = "") -> list[dict[str, Any]]:
    """The @-mention suggestions of a non-attributed thread: its participants' pseudonyms."""
    q = query.casefold()
    out = []
    for uid, n in sorted(numbers(thread_id).items(), key=lambda kv: kv[1]):
        label = f"Participant {n}"
        if uid != exclude and (not q or label.casefold().startswith(q) or str(n).startswith(q)):
            out.append({"name": label, "pseudonym": True})
    return out


def mention_names(thread_id: int) -> list[tuple[int, str]]:
    """(user id, "Participant n") pairs, so that "@Participant 2" in a non-attributed thread
    notifies that participant (rooms/notifications.py)."""
    return [(uid, f"Participant {n}") for uid, n in numbers(thread_id).items()]
