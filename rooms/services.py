"""Room, thread and post operations: creating and changing rooms, memberships,
threads and posts. Moderation (rooms/moderation.py), retention
(rooms/retention.py) and post removal (rooms/post_removal.py) change posts
too, each through its own service; every change of a room goes through
`record_event`, which numbers it in the room and queues it for delivery.

Each public function checks permission through `rooms/policy.py`, writes in
one transaction, records a numbered room event, and commits; listeners
(live updates, search) hear about it only after the commit.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, BinaryIO, Iterable, Optional

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from auth import audit
from rooms import policy
from auth import services as accounts
from auth.models import Invitation, Organisation, User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound, ServiceError
from collab.extensions import db
from rooms import attachments as files
from rooms import post_removal, pseudonyms
from rooms.markdown import render
from rooms.models import (
    ROOM_ROLES,
    VISIBILITIES,
    Attachment,
    Membership,
    Post,
    PostRevision,
    ReadState,
    Room,
    RoomEvent,
    Thread,
    path_segment,
)
from rooms.serialize import post_dict, room_dict, thread_dict

MAX_BODY = 50_000
MAX_FILES = 10
Upload = tuple[str, BinaryIO]  # (filename, stream)


# -- reading ------------------------------------------------------------------

def get_room(actor: Optional[User], room_id: object) -> Room:
    rid = validate.int_id(room_id, "room_id")
    room = db.session.get(Room, rid)
    if room is None or not policy.can_read_room(actor, room):
        raise NotFound("Room not found.")
    return room


def get_thread(actor: Optional[User], thread_id: object) -> Thread:
    tid = validate.int_id(thread_id, "thread_id")
    thread = db.session.get(Thread, tid)
    if thread is None or not policy.can_read_room(actor, thread.room):
        raise NotFound("Thread not found.")
    return thread


def get_post(actor: Optional[User], post_id: object) -> Post:
    pid = validate.int_id(post_id, "post_id")
    post = db.session.get(Post, pid)
    if post is None or not policy.can_read_room(actor, post.thread.room):
        raise NotFound("Post not found.")
    return post


def get_attachment(actor: Optional[User], attachment_id: object) -> Attachment:
    aid = validate.int_id(attachment_id, "attachment_id")
    att = db.session.get(Attachment, aid)
    if att is None or att.post.deleted or not policy.can_read_room(actor, att.post.thread.room):
        raise NotFound("Attachment not found.")
    if att.post.hidden_at is not None and not policy.can_see_hidden_post(actor, att.post):
        raise NotFound("Attachment not found.")
    if not policy.can_download_attachments(actor, att.post.thread.room):
        raise Forbidden("Guests cannot download attachments in rooms with this confidentiality label.")
    return att


def readable_rooms(actor: User) -> list[Room]:
    return list(db.session.scalars(
        select(Room).where(policy.readable_rooms_clause(actor)).order_by(Room.archived_at.is_not(None), Room.name)))


def my_roles(actor: User) -> dict[int, str]:
    return dict(db.session.execute(
        select(Membership.room_id, Membership.role).where(Membership.user_id == actor.id)).all())


def room_unread_counts(actor: User, room_ids: Iterable[int]) -> dict[int, int]:
    """Posts not yet read, per room, counting only threads the account has opened or
    rooms it belongs to."""
    ids = list(room_ids)
    if not ids:
        return {}
    rs = ReadState
    q = (
        select(Thread.room_id, func.count(Post.id))
        .join(Post, Post.thread_id == Thread.id)
        .outerjoin(rs, and_(rs.thread_id == Thread.id, rs.user_id == actor.id))
        .where(Thread.room_id.in_(ids), Post.id > func.coalesce(rs.last_read_post_id, 0),
               Post.author_id.is_distinct_from(actor.id))  # your own posts are not news to you
        .group_by(Thread.room_id)
    )
    return dict(db.session.execute(q).all())


def thread_unread_counts(actor: User, thread_ids: Iterable[int]) -> dict[int, int]:
    ids = list(thread_ids)
    if not ids:
        return {}
    rs = ReadState
    q = (
        select(Post.thread_id, func.count(Post.id))
        .outerjoin(rs, and_(rs.thread_id == Post.thread_id, rs.user_id == actor.id))
        .where(Post.thread_id.in_(ids), Post.id > func.coalesce(rs.last_read_post_id, 0),
               Post.author_id.is_distinct_from(actor.id))
        .group_by(Post.thread_id)
    )
    return dict(db.session.execute(q).all())


def room_threads(actor: User, room: Room, *, page: int = 1, per_page: int = 30) -> tuple[list[Thread], int]:
    total = db.session.scalar(select(func.count(Thread.id)).where(Thread.room_id == room.id)) or 0
    threads = list(db.session.scalars(
        select(Thread).where(Thread.room_id == room.id)
        .order_by(Thread.last_post_at.desc(), Thread.id.desc())
        .offset((page - 1) * per_page).limit(per_page)))
    return threads, total


def room_members(actor: User, room: Room) -> list[Membership]:
    q = select(Membership).join(User, User.id == Membership.user_id).where(Membership.room_id == room.id)
    if actor is not None and not policy.sees_names(actor, room):  # non-attributed room: only your own
        q = q.where(Membership.user_id == actor.id)
    return list(db.session.scalars(q.order_by(User.name)))


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
    """Move the account's read marker forward (never back)."""
    if up_to <= 0:
        return
    rs = db.session.get(ReadState, (actor.id, thread.id))
    if rs is not None and rs.last_read_post_id >= up_to:
        return
    db.begin_write()
    rs = db.session.get(ReadState, (actor.id, thread.id))
    if rs is None:
        db.session.add(ReadState(user_id=actor.id, thread_id=thread.id, last_read_post_id=up_to))
    elif rs.last_read_post_id < up_to:
        rs.last_read_post_id = up_to
        rs.updated_at = utcnow()
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


# -- events -----------------------------------------------------------------------

# Built once: the bookkeeping every write does goes to the connection as plain SQL (no ORM unit of work).
_rooms, _threads, _posts = Room.__table__, Thread.__table__, Post.__table__
_NEXT_SEQ = (update(_rooms).where(_rooms.c.id == bindparam("rid"))
             .values(last_seq=_rooms.c.last_seq + 1).returning(_rooms.c.last_seq))
_ADD_EVENT = insert(RoomEvent.__table__)
_SET_PATH = update(_posts).where(_posts.c.id == bindparam("pid")).values(path=bindparam("new_path"))
_BUMP_THREAD = (update(_threads).where(_threads.c.id == bindparam("tid"))
                .values(post_count=_threads.c.post_count + 1, last_post_at=bindparam("now"),
                        last_post_id=bindparam("last_id"))
                .returning(_threads.c.post_count))


def _set_loaded(obj: object, **values: Any) -> None:
    """Tell the session an object's row now holds these values (after a plain-SQL UPDATE of it)."""
    for key, value in values.items():
        set_committed_value(obj, key, value)


def record_event(room_id: int, name: str, payload: dict[str, Any], **meta: Any) -> int:
    """Inside the caller's write: store a room event (what changed in the room, numbered `seq` in it, so
    clients that missed it can ask for it with `events_after`) and queue it for delivery after commit.
    Every module that changes a room's content calls this. `meta` goes with the queued event only, never to
    readers (e.g. `notify`, see create_thread)."""
    db.session.flush()  # what the caller changed is written first (and, e.g., remembered memberships forgotten)
    conn = db.session.connection()
    seq = conn.execute(_NEXT_SEQ, {"rid": room_id}).scalar_one()
    room = db.session.identity_map.get(identity_key(Room, room_id))
    if room is not None:
        _set_loaded(room, last_seq=seq)
    body = dict(payload, room_id=room_id, seq=seq)
    conn.execute(_ADD_EVENT, {"room_id": room_id, "seq": seq, "name": name, "payload": json.dumps(body),
                              "created_at": utcnow()})
    events.queue(db.session, name, body, room_id=room_id, **meta)
    return seq


def events_after(actor: User, room_id: object, after_seq: object, limit: int = 1000) -> list[dict[str, Any]]:
    room = get_room(actor, room_id)
    after = after_seq if isinstance(after_seq, int) and not isinstance(after_seq, bool) and after_seq >= 0 else None
    if after is None:
        raise Invalid("after_seq must be a whole number, 0 or more.", "after_seq")
    rows = db.session.execute(
        select(RoomEvent.name, RoomEvent.payload).where(RoomEvent.room_id == room.id, RoomEvent.seq > after)
        .order_by(RoomEvent.seq).limit(limit)).all()
    return [{"event": name, "data": json.loads(payload)} for name, payload in rows]


# -- rooms ------------------------------------------------------------------------

def _room_fields(name: object, description: object, visibility: object) -> tuple[str, str, str]:
    return (
        validate.display_name(name, "name", max_len=120),
        validate.text(description, "description", max_len=2000, required=False, multiline=True),
        validate.choice(visibility, "visibility", VISIBILITIES),
    )


def create_room(actor: User, *, name: object, description: object = "", visibility: object = "private",
                organisation_id: object = None) -> Room:
    name_v, desc_v, vis = _room_fields(name, description, visibility)
    if not policy.can_create_room(actor, vis):
        raise Forbidden("Your account may not create rooms of that kind.", "visibility")
    org_id = validate.int_id(organisation_id, "organisation_id", required=False) or actor.organisation_id
    if vis == "organisation" and org_id is None:
        raise Invalid("An organisation room needs an organisation.", "organisation_id")
    if vis == "organisation" and org_id != actor.organisation_id and not actor.is_admin:
        raise Invalid("You may create organisation rooms only for your own organisation.", "organisation_id")
    if vis == "organisation" and db.session.get(Organisation, org_id) is None:
        raise Invalid("That organisation does not exist.", "organisation_id")
    db.begin_write()
    room = Room(name=name_v, description=desc_v, visibility=vis,
                organisation_id=org_id if vis == "organisation" else actor.organisation_id, created_by_id=actor.id)
    db.session.add(room)
    db.session.flush()
    db.session.add(Membership(room_id=room.id, user_id=actor.id, role="owner"))
    audit.record("room.created", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"name": name_v, "visibility": vis})
    record_event(room.id, "room.created", {"room": room_dict(room)})
    db.session.commit()
    return room


def update_room(actor: User, room_id: object, *, name: object, description: object, visibility: object) -> Room:
    room = get_room(actor, room_id)
    if not policy.can_manage_room(actor, room):
        raise Forbidden("Only the room's owners can change its settings.")
    name_v, desc_v, vis = _room_fields(name, description, visibility)
    if vis == "organisation" and room.organisation_id is None:
        raise Invalid("This room has no organisation, so it cannot be an organisation room.", "visibility")
    db.begin_write()
    if vis != room.visibility:
        audit.record("room.visibility_changed", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                     detail={"from": room.visibility, "to": vis})
    room.name, room.description, room.visibility = name_v, desc_v, vis
    record_event(room.id, "room.updated", {"room": room_dict(room)})
    db.session.commit()
    return room


def set_archived(actor: User, room_id: object, archived: bool) -> Room:
    room = get_room(actor, room_id)
    if not policy.can_manage_room(actor, room):
        raise Forbidden("Only the room's owners can archive it.")
    db.begin_write()
    room.archived_at = utcnow() if archived else None
    audit.record("room.archived", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"archived": archived})
    record_event(room.id, "room.updated", {"room": room_dict(room)})
    db.session.commit()
    return room


def join_room(actor: User, room_id: object) -> Membership:
    room = get_room(actor, room_id)
    existing = policy.membership(actor, room)
    if existing:
        return existing
    if not policy.can_join_room(actor, room):
        raise Forbidden("This room is by invitation only.")
    db.begin_write()
    m = Membership(room_id=room.id, user_id=actor.id, role="member")
    db.session.add(m)
    record_event(room.id, "member.added", {"user": {"id": actor.id, "name": actor.name}, "role": "member"})
    db.session.commit()
    return m


def _owners(room: Room) -> int:
    return db.session.scalar(
        select(func.count(Membership.id)).where(Membership.room_id == room.id, Membership.role == "owner")) or 0


def leave_room(actor: User, room_id: object) -> None:
    room = get_room(actor, room_id)
    m = policy.membership(actor, room)
    if m is None:
        raise Invalid("You are not a member of this room.")
    if m.role == "owner" and _owners(room) == 1:
        raise Invalid("You are the only owner. Make someone else an owner before you leave.")
    db.begin_write()
    db.session.delete(db.session.merge(m))
    audit.record("member.removed", actor=actor, target_type="user", target_id=actor.id, room_id=room.id,
                 detail={"left": True})
    record_event(room.id, "member.removed", {"user": {"id": actor.id, "name": actor.name}})
    db.session.commit()


def add_member(actor: User, room_id: object, *, user_id: object, role: object = "member") -> Membership:
    """Invite an existing account into a room, or change its role there."""
    room = get_room(actor, room_id)
    if not policy.can_invite_to_room(actor, room):
        raise Forbidden("Only the room's owners and moderators can add members.")
    uid = validate.int_id(user_id, "user_id")
    role_v = validate.choice(role, "role", ROOM_ROLES)
    if role_v in ("owner",) and not policy.can_manage_room(actor, room):
        raise Forbidden("Only owners can make owners.", "role")
    target = db.session.get(User, uid)
    if target is None or not target.active:
        raise Invalid("No active account has that id.", "user_id")
    db.begin_write()
    m = db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.user_id == uid))
    if m is None:
        m = Membership(room_id=room.id, user_id=uid, role=role_v)
        db.session.add(m)
        audit.record("member.added", actor=actor, target_type="user", target_id=target.id, room_id=room.id,
                     detail={"role": role_v})
        record_event(room.id, "member.added", {"user": {"id": target.id, "name": target.name}, "role": role_v})
    else:
        if m.role == "owner" and role_v != "owner" and _owners(room) == 1:
            raise Invalid("A room needs at least one owner.", "role")
        if m.role == "owner" and not policy.can_manage_room(actor, room):
            raise Forbidden("Only owners can change an owner's role.", "role")
        audit.record("member.role_changed", actor=actor, target_type="user", target_id=target.id, room_id=room.id,
                     detail={"from": m.role, "to": role_v})
        m.role = role_v
        record_event(room.id, "member.updated", {"user": {"id": target.id, "name": target.name}, "role": role_v})
    db.session.commit()
    return m


def remove_member(actor: User, room_id: object, user_id: object) -> None:
    room = get_room(actor, room_id)
    if not policy.can_invite_to_room(actor, room):
        raise Forbidden("Only the room's owners and moderators can remove members.")
    uid = validate.int_id(user_id, "user_id")
    m = db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.user_id == uid))
    if m is None:
        raise NotFound("That account is not a member of this room.")
    if m.role == "owner" and not policy.can_manage_room(actor, room):
        raise Forbidden("Only owners can remove an owner.")
    if m.role == "owner" and _owners(room) == 1:
        raise Invalid("A room needs at least one owner.")
    db.begin_write()
    db.session.delete(db.session.merge(m))
    audit.record("member.removed", actor=actor, target_type="user", target_id=uid, room_id=room.id)
    record_event(room.id, "member.removed", {"user": {"id": uid, "name": m.user.name}})
    db.session.commit()



@accounts.on_invitation_accepted
def _join_invited_room(invitation: Invitation, user: User) -> None:
    """Inside accept_invitation's write (auth/services.py): an invitation that names a room makes its new
    account a member of it."""
    if invitation.room_id:
        db.session.add(Membership(room_id=invitation.room_id, user_id=user.id, role="member"))


# -- threads and posts ------------------------------------------------------------

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


def mute_message(until: datetime) -> str:
    return (f"A moderator has muted you in this room until {until.strftime('%d %b %Y, %H:%M')} UTC: you can read "
            "it, but not post. Ask the room's owners if you think this is wrong.")


def _check_can_post(actor: User, room: Room) -> None:
    if not policy.can_post(actor, room):
        until = policy.muted_until(actor, room)
        if until is not None and not room.archived:
            raise Forbidden(mute_message(until))
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
    return [files.store(stream, name) for name, stream in items]


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
                  uploads: Iterable[Upload] = (), notify: Iterable[int] = ()) -> Thread:
    """Start a thread. `notify`: accounts to notify as if mentioned, without naming them in the text
    (a meeting's invitees in a non-attributed room, rooms/meetings/schedule.py)."""
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
    db.session.flush()
    db.session.refresh(thread)
    record_event(room.id, "thread.created", {"thread": thread_dict(thread), "post": post_dict(post)},
            notify=tuple(notify))
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
    if policy.membership(actor, thread.room) is None:  # a reader of an open room joins by posting
        db.session.add(Membership(room_id=thread.room_id, user_id=actor.id, role="member"))
        record_event(thread.room_id, "member.added", {"user": {"id": actor.id, "name": actor.name}, "role": "member"})
    post = _insert_post(actor, thread, parent, body_v, cid, stored)
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
