"""The rooms list (issue 14): each room the person may read with its last activity, member count and the
person's unread count, sorted by activity (the default, as Discourse does) or by name.

Three grouped queries for the whole list, whatever its length; what may be read is decided by
`rooms/policy.py` (services.readable_rooms). A member count names nobody, so non-attributed rooms show it
like any other.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from sqlalchemy import func, select

from auth.models import User
from collab.extensions import db
from rooms import services
from rooms.models import Membership, Room, Thread

SORTS = {"activity": "Latest activity", "name": "Name"}


@dataclass(frozen=True)
class RoomRow:
    room: Room
    role: str | None        # the person's role there; None: open to them, not a member
    last_activity: datetime  # the newest post's time, or when the room was made
    members: int
    unread: int


def _last_posts(room_ids: list[int]) -> dict[int, datetime]:
    if not room_ids:
        return {}
    return dict(db.session.execute(select(Thread.room_id, func.max(Thread.last_post_at))
                                   .where(Thread.room_id.in_(room_ids)).group_by(Thread.room_id)).all())


def _member_counts(room_ids: list[int]) -> dict[int, int]:
    if not room_ids:
        return {}
    return dict(db.session.execute(select(Membership.room_id, func.count(Membership.id))
                                   .where(Membership.room_id.in_(room_ids)).group_by(Membership.room_id)).all())


def rows(actor: User, sort: str = "activity") -> dict[str, list[RoomRow]]:
    """"mine" (rooms the person belongs to) and "open" (rooms open to them), each sorted by `sort`;
    archived rooms after the others."""
    rooms = services.readable_rooms(actor)
    ids = [r.id for r in rooms]
    roles = services.my_roles(actor)
    last, counts = _last_posts(ids), _member_counts(ids)
    unread = services.room_unread_counts(actor, [i for i in ids if i in roles])
    out: dict[str, list[RoomRow]] = {"mine": [], "open": []}
    for r in rooms:
        row = RoomRow(room=r, role=roles.get(r.id), last_activity=max(last.get(r.id) or r.created_at, r.created_at),
                      members=counts.get(r.id, 0), unread=unread.get(r.id, 0))
        out["mine" if row.role else "open"].append(row)
    for section in out.values():
        _sort(section, sort)
    return out


def _sort(section: list[RoomRow], sort: str) -> None:
    if sort == "name":
        section.sort(key=lambda x: (x.room.archived, x.room.name.lower()))
    else:
        section.sort(key=lambda x: (x.room.archived, -x.last_activity.timestamp()))


def sort_arg(value: object) -> str:
    return value if isinstance(value, str) and value in SORTS else "activity"

