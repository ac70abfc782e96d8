"""The one JSON shape of rooms, threads and posts: used by the API and the
live events alike, so a client sees the same object from both."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from collab.urls import path_for
from rooms import policy, pseudonyms
from rooms.models import Attachment, Post, Room, Thread


def iso(dt: Optional[datetime]) -> Optional[str]:
    return dt.isoformat(timespec="seconds") + "Z" if dt else None


def room_dict(room: Room, *, role: Optional[str] = None) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.name,
        "description": room.description,
        "visibility": room.visibility,
        "organisation_id": room.organisation_id,
        "archived": room.archived,
        "label": pseudonyms.room_label(room),
        "non_attributed": bool(room.non_attributed),
        "created_at": iso(room.created_at),
        "my_role": role,
    }


def thread_dict(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "title": thread.title,
        "room_id": thread.room_id,
        "author": pseudonyms.thread_author(thread),  # "Participant n" in non-attributed rooms
        "created_at": iso(thread.created_at),
        "last_post_at": iso(thread.last_post_at),
        "post_count": thread.post_count,
    }


def attachment_dict(att: Attachment) -> dict[str, Any]:
    return {
        "id": att.id,
        "filename": att.filename,
        "size": att.size,
        "content_type": att.content_type,
        "is_image": att.is_image,
        "url": path_for("rooms.attachment", attachment_id=att.id, filename=att.filename),
        "thumbnail_url": path_for("rooms.attachment_thumb", attachment_id=att.id) if att.is_image else None,
    }


def post_dict(post: Post, *, viewer: Any = None) -> dict[str, Any]:
    """`viewer`: the account asking; the author and the room's moderators still get a hidden post's text
    (live events have no viewer and carry only the tombstone)."""
    deleted = post.deleted
    hidden = post.hidden_at is not None and not deleted
    if hidden and viewer is not None:
        text_shown = policy.can_see_hidden_post(viewer, post)
    else:
        text_shown = not hidden
    return {
        "id": post.id,
        "thread_id": post.thread_id,
        "parent_id": post.parent_id,
        "depth": post.depth,
        "author": pseudonyms.post_author(post),  # "Participant n" in non-attributed rooms
        "body": post.body if text_shown and not deleted else "",
        "html": post.html if text_shown and not deleted else "",
        "created_at": iso(post.created_at),
        "edited_at": iso(post.edited_at),
        "deleted": deleted,
        "client_id": post.client_id,
        "hidden": hidden,
        "hidden_reason": post.hidden_reason if hidden and text_shown else None,
        "attachments": [attachment_dict(a) for a in post.attachments] if text_shown and not deleted else [],
    }
