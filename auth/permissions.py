"""The one place that answers "may this account do X to this thing".

Views, the API and socket handlers never check roles themselves; services call
these functions and turn a "no" into NotFound (cannot see) or Forbidden (can
see, may not act).
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Select, bindparam, event, false, or_, select, true
from sqlalchemy.orm import Session

from auth.models import User
from collab.extensions import db
from rooms.models import Membership, Post, Room

POSTING_ROLES = ("owner", "moderator", "member")
MODERATING_ROLES = ("owner", "moderator")


_MEMO = "perm_memberships"


def membership(user: Optional[User], room: Room) -> Optional[Membership]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    # Remembered for the rest of the session's transaction (a thread page asks once per post); any write,
    # commit or rollback forgets it, so a check inside a write transaction always reads the database.
    memo = db.session().info.setdefault(_MEMO, {})
    key = (user.id, room.id)
    if key not in memo:
        memo[key] = db.session.scalar(_MEMBERSHIP, {"room_id": room.id, "user_id": user.id})
    return memo[key]


# Built once (asked on every post and page): building a statement costs as much as running it.
_MEMBERSHIP = select(Membership).where(Membership.room_id == bindparam("room_id"),
                                       Membership.user_id == bindparam("user_id"))


@event.listens_for(Session, "after_transaction_end")
def _forget_memberships(session: Session, _transaction) -> None:
    session.info.pop(_MEMO, None)


@event.listens_for(Session, "after_flush")
def _forget_memberships_on_flush(session: Session, _context) -> None:
    session.info.pop(_MEMO, None)


@event.listens_for(Session, "do_orm_execute")
def _forget_memberships_on_write(state) -> None:
    if not state.is_select:
        state.session.info.pop(_MEMO, None)


def _signed_in(user: Optional[User]) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.active


def _sees_without_membership(user: User, room: Room) -> bool:
    if room.visibility == "national":
        return True
    if room.visibility == "organisation":
        return user.kind == "staff" and user.organisation_id is not None and user.organisation_id == room.organisation_id
    return False


def can_read_room(user: Optional[User], room: Room) -> bool:
    if not _signed_in(user):
        return False
    return _sees_without_membership(user, room) or membership(user, room) is not None


def readable_rooms_clause(user: Optional[User]):
    """A WHERE clause on Room for the rooms `user` may read (used by lists and search)."""
    if not _signed_in(user):
        return false()
    member_rooms = select(Membership.room_id).where(Membership.user_id == user.id)
    clauses = [Room.visibility == "national", Room.id.in_(member_rooms)]
    if user.kind == "staff" and user.organisation_id is not None:
        clauses.append((Room.visibility == "organisation") & (Room.organisation_id == user.organisation_id))
    return or_(*clauses)


def room_readers_clause(room: Room):
    """A WHERE clause on User for the accounts that may read `room`: can_read_room for many people
    in one query (who of them hears about a post)."""
    member = User.id.in_(select(Membership.user_id).where(Membership.room_id == room.id))
    if room.visibility == "national":
        sees = true()
    elif room.visibility == "organisation" and room.organisation_id is not None:
        sees = (User.kind == "staff") & (User.organisation_id == room.organisation_id)
    else:
        sees = false()
    return User.active.is_(True) & or_(sees, member)


def readable_room_ids(user: Optional[User]) -> Select:
    return select(Room.id).where(readable_rooms_clause(user))


# readable_rooms_clause as one statement built once, with the account as parameters (asked by every
# search: building the statement cost as much as running it). organisation_id NULL matches no room.
_READABLE_IDS = select(Room.id).where(or_(
    Room.visibility == "national",
    Room.id.in_(select(Membership.room_id).where(Membership.user_id == bindparam("user_id"))),
    (Room.visibility == "organisation") & (Room.organisation_id == bindparam("org_id"))))


def readable_room_id_list(user: Optional[User]) -> list[int]:
    """The ids of the rooms `user` may read (as readable_room_ids), in one compact query."""
    if not _signed_in(user):
        return []
    org = user.organisation_id if user.kind == "staff" else None
    return list(db.session.scalars(_READABLE_IDS, {"user_id": user.id, "org_id": org}))


def can_join_room(user: Optional[User], room: Room) -> bool:
    """Open rooms (organisation, national) can be joined by anyone who may read them."""
    return _signed_in(user) and not room.archived and _sees_without_membership(user, room)


def can_post(user: Optional[User], room: Room) -> bool:
    """Members post; readers of open rooms may post too (they join on first post)."""
    if not _signed_in(user) or room.archived:
        return False
    if room.id is not None and muted_until(user, room) is not None:
        return False
    m = membership(user, room)
    if m is not None:
        return m.role in POSTING_ROLES
    return can_join_room(user, room)


def can_moderate(user: Optional[User], room: Room) -> bool:
    if not _signed_in(user):
        return False
    m = membership(user, room)
    return m is not None and m.role in MODERATING_ROLES


def can_see_members(user: Optional[User], room: Room) -> bool:
    """Who belongs to a room. In a non-attributed room only its moderators and managers see
    the members by name (a list of names next to "Participant n" posts would undo the
    pseudonyms); everyone else sees only their own membership."""
    if not room.non_attributed:
        return can_read_room(user, room)
    return can_moderate(user, room) or can_manage_room(user, room)


def can_manage_room(user: Optional[User], room: Room) -> bool:
    """Edit settings, archive, change roles: room owners and site administrators who can read it."""
    if not _signed_in(user):
        return False
    m = membership(user, room)
    if m is not None and m.role == "owner":
        return True
    return user.is_admin and can_read_room(user, room)


def can_invite_to_room(user: Optional[User], room: Room) -> bool:
    return not room.archived and (can_moderate(user, room) or can_manage_room(user, room))


def can_edit_post(user: Optional[User], post: Post) -> bool:
    return (
        _signed_in(user)
        and not post.deleted
        and post.author_id == user.id
        and not post.thread.room.archived
        and can_read_room(user, post.thread.room)
    )


def can_delete_post(user: Optional[User], post: Post) -> bool:
    if not _signed_in(user) or post.deleted or post.thread.room.archived:
        return False
    if post.author_id == user.id and can_read_room(user, post.thread.room):
        return True
    return can_moderate(user, post.thread.room)


# -- trust and safety (issue 7) ----------------------------------------------------------

def muted_until(user: Optional[User], room: Room):
    """When a moderator's mute of `user` in `room` ends (None: not muted)."""
    if not _signed_in(user):
        return None
    from collab.db import utcnow

    return db.session.scalar(_muted_stmt(), {"room_id": room.id, "user_id": user.id, "now": utcnow()})


_MUTED: Optional[Select] = None


def _muted_stmt() -> Select:
    global _MUTED
    if _MUTED is None:
        from rooms.trust_models import RoomMute

        _MUTED = (select(RoomMute.until)
                  .where(RoomMute.room_id == bindparam("room_id"), RoomMute.user_id == bindparam("user_id"),
                         RoomMute.lifted_at.is_(None), RoomMute.until > bindparam("now"))
                  .order_by(RoomMute.until.desc()).limit(1))
    return _MUTED


def can_flag_post(user: Optional[User], post: Post) -> bool:
    """Any member (observers too) may report a post that is still there."""
    return _signed_in(user) and not post.deleted and membership(user, post.thread.room) is not None


def can_see_hidden_post(user: Optional[User], post: Post) -> bool:
    """A hidden post's text: its author and the room's moderators."""
    if not _signed_in(user) or not can_read_room(user, post.thread.room):
        return False
    return post.author_id == user.id or can_moderate(user, post.thread.room)


def can_mute(user: Optional[User], room: Room, target: User) -> bool:
    """Moderators mute members and observers; owners and moderators cannot be muted."""
    if not can_moderate(user, room) or target.id == user.id:
        return False
    m = membership(target, room)
    return m is None or m.role not in MODERATING_ROLES


def can_suspend_account(user: Optional[User], target: User) -> bool:
    return can_administer(user) and target.id != user.id and not target.is_admin


def can_change_label(user: Optional[User], room: Room) -> bool:
    return can_manage_room(user, room) and not room.archived


def can_download_attachments(user: Optional[User], room: Room) -> bool:
    """Guests cannot download attachments of rooms labelled above the lowest label (OFFICIAL-SENSITIVE)."""
    if not can_read_room(user, room):
        return False
    from rooms.labels import is_sensitive

    return not (user.kind == "guest" and is_sensitive(room))


def can_create_room(user: Optional[User], visibility: str) -> bool:
    if not _signed_in(user) or user.kind == "guest":
        return False
    if visibility == "national":
        return user.is_admin or user.kind == "staff"
    if visibility == "organisation":
        return user.is_admin or (user.kind == "staff" and user.organisation_id is not None)
    return True


def can_administer(user: Optional[User]) -> bool:
    return _signed_in(user) and user.is_admin


def can_invite_accounts(user: Optional[User], organisation_id: Optional[int] = None) -> bool:
    """Site administrators invite anyone; organisation admins invite into their organisation."""
    if not _signed_in(user):
        return False
    if user.is_admin:
        return True
    return user.org_admin and organisation_id is not None and organisation_id == user.organisation_id


def can_erase_account(user: Optional[User], target: User) -> bool:
    """Erasing an account (data protection): site administrators, never their own account."""
    return can_administer(user) and target.id != user.id


def can_manage_account(user: Optional[User], target: User) -> bool:
    if not _signed_in(user) or target.id == user.id:
        return False
    if user.is_admin:
        return True
    return user.org_admin and target.organisation_id == user.organisation_id and not target.is_admin
