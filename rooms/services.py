"""Room operations: reading rooms, threads, posts and attachments (each behind
`rooms/policy.py`), creating and changing rooms and memberships, and the room's
numbered event log. Threads and posts are written in rooms/posts.py; moderation
(rooms/moderation.py), retention (rooms/retention.py) and post removal
(rooms/post_removal.py) change posts too, each through its own service; every
change of a room goes through `record_event`, which numbers it in the room and
queues it for delivery.

Each public function checks permission through `rooms/policy.py`, writes in
one transaction, records a numbered room event, and commits; listeners
(live updates, search) hear about it only after the commit.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from auth import audit
from rooms import policy
from auth import services as accounts
from auth.models import Invitation, Organisation, User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms.models import (
    ROOM_ROLES,
    VISIBILITIES,
    Attachment,
    Membership,
    Post,
    ReadState,
    Room,
    RoomEvent,
    Thread,
)
from rooms.serialize import room_dict


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




# -- events -----------------------------------------------------------------------

# Built once: the bookkeeping every write does goes to the connection as plain SQL (no ORM unit of work).
_rooms = Room.__table__
_NEXT_SEQ = (update(_rooms).where(_rooms.c.id == bindparam("rid"))
             .values(last_seq=_rooms.c.last_seq + 1).returning(_rooms.c.last_seq))
_ADD_EVENT = insert(RoomEvent.__table__)


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
        set_committed_value(room, "last_seq", seq)  # what the plain-SQL UPDATE wrote
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
                organisation_id: object = None, non_attributed: object = False) -> Room:
    """`non_attributed` (Chatham House, rooms/pseudonyms.py) is best chosen here, before anyone writes: once
    a thread exists it can no longer change (rooms/trust_settings.py)."""
    name_v, desc_v, vis = _room_fields(name, description, visibility)
    if not isinstance(non_attributed, bool):
        raise Invalid("non_attributed must be true or false.", "non_attributed")
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
                organisation_id=org_id if vis == "organisation" else actor.organisation_id, created_by_id=actor.id,
                non_attributed=non_attributed)
    db.session.add(room)
    db.session.flush()
    db.session.add(Membership(room_id=room.id, user_id=actor.id, role="owner"))
    audit.record("room.created", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"name": name_v, "visibility": vis, "non_attributed": non_attributed})
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


def leave_problem(actor: User, room: Room) -> Optional[str]:
    """Why `actor` may not leave `room` (None: they may); asked before the question "Leave …?" too."""
    m = policy.membership(actor, room)
    if m is None:
        return "You are not a member of this room."
    if m.role == "owner" and _owners(room) == 1:
        return "You are the only owner. Make someone else an owner before you leave."
    return None


def leave_room(actor: User, room_id: object) -> None:
    room = get_room(actor, room_id)
    problem = leave_problem(actor, room)
    if problem:
        raise Invalid(problem)
    m = policy.membership(actor, room)
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
    if invitation.room_id and db.session.get(Room, invitation.room_id) is not None:
        role = invitation.room_role if invitation.room_role in ROOM_ROLES else "member"
        db.session.add(Membership(room_id=invitation.room_id, user_id=user.id, role=role))


@accounts.on_invitation_rooms
def _invited_room(invitation: Invitation) -> list[dict]:
    """The room an invitation names, for its page (nothing when the room is gone)."""
    room = db.session.get(Room, invitation.room_id) if invitation.room_id else None
    if room is None:
        return []
    role = invitation.room_role if invitation.room_role in ROOM_ROLES else "member"
    return [{"room": room.name, "role": role}]
