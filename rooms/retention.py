"""Room retention: a room may keep posts for a number of days; a daily job
(`flask --app wsgi retention run [--dry-run]`, from cron or a systemd timer)
deletes older posts and their attachments.

Deleting leaves tombstones, as deleting a post does, so reply trees stay whole:
the text, earlier versions and attachments go; a thread whose opening post goes
loses its title too. Stored room events older than the period are deleted, and
later ones that still carry a deleted post's text are redacted. What was said in the room's meetings
(their transcripts) and their recordings' files go by the same period. Room owners see
what the next run would delete on the room's settings page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import delete, exists, func, or_, select

from auth import audit
from auth import sessions as user_sessions
from auth.models import User
from collab.db import utcnow
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import policy, post_removal, services
from rooms.meetings import recordings
from rooms.meetings.models import Meeting
from rooms.meetings.recording_models import Recording
from rooms.meetings.transcript_models import TranscriptSegment
from rooms.models import Attachment, Post, PostRevision, Room, RoomEvent, Thread
from rooms.serialize import post_dict

MAX_DAYS = 36_500
REMOVED_TITLE = "Removed after the room's retention period"
PREVIEW_LIMIT = 50


@dataclass
class Due:
    """What one room's retention would delete now."""
    room: Room
    cutoff: datetime
    posts: list[Post] = field(default_factory=list)
    attachments: int = 0
    lines: list[str] = field(default_factory=list)   # what goes, for the command line (never the text)

    @property
    def count(self) -> int:
        return len(self.posts)


def cutoff_for(room: Room, now: datetime | None = None) -> datetime | None:
    if not room.retention_days:
        return None
    return (now or utcnow()) - timedelta(days=room.retention_days)


def _due_query(room: Room, cutoff: datetime):
    has_files = exists().where(Attachment.post_id == Post.id)
    has_revs = exists().where(PostRevision.post_id == Post.id)
    return (select(Post).join(Thread, Post.thread_id == Thread.id)
            .where(Thread.room_id == room.id, Post.created_at < cutoff,
                   or_(Post.deleted_at.is_(None), has_files, has_revs))
            .order_by(Post.id))


def due(room: Room, now: datetime | None = None) -> Due | None:
    cutoff = cutoff_for(room, now)
    if cutoff is None:
        return None
    posts = list(db.session.scalars(_due_query(room, cutoff)))
    n_files = db.session.scalar(select(func.count(Attachment.id)).where(
        Attachment.post_id.in_([p.id for p in posts]))) if posts else 0
    d = Due(room=room, cutoff=cutoff, posts=posts, attachments=n_files or 0)
    d.lines = describe(d)
    return d


def rooms_with_retention() -> list[Room]:
    return list(db.session.scalars(select(Room).where(Room.retention_days.is_not(None), Room.retention_days > 0)
                                   .order_by(Room.id)))


def preview(actor: User, room: Room) -> Due | None:
    """For the room's settings page: owners (and administrators) only."""
    if not policy.can_manage_room(actor, room):
        return None
    return due(room)


def set_retention(actor: User, room_id: object, days: object) -> Room:
    room = services.get_room(actor, room_id)
    if not policy.can_manage_room(actor, room):
        raise Forbidden("Only the room's owners can change how long it keeps posts.")
    raw = days.strip() if isinstance(days, str) else days
    if raw in ("", None, "0", 0):
        value = None
    else:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = -1
        if isinstance(raw, bool) or not 1 <= value <= MAX_DAYS:
            raise Invalid(f"Keep posts for a whole number of days from 1 to {MAX_DAYS}, or leave it empty to "
                          "keep them.", "retention_days")
    db.begin_write()
    room = db.session.get(Room, room.id, populate_existing=True)
    if room.retention_days != value:
        audit.record("room.retention_changed", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                     detail={"from": room.retention_days, "to": value})
        room.retention_days = value
    db.session.commit()
    return room


def purge_room(room: Room, now: datetime | None = None) -> Due:
    """Delete what is due in one room (one transaction); returns what went."""
    db.begin_write()
    room = db.session.get(Room, room.id, populate_existing=True)
    d = due(room, now)
    said = _transcripts_due(room, d.cutoff) if d is not None else []
    recorded = _recordings_due(room, d.cutoff) if d is not None else []
    if d is None or not (d.posts or said or recorded):
        db.session.rollback()
        return d or Due(room=room, cutoff=utcnow())
    for segment in said:   # through the ORM, so search forgets the text too (search/outbox.py)
        db.session.delete(segment)

    stamp = utcnow()
    shas: set[str] = set()
    for post in d.posts:
        shas |= post_removal.remove_content(post, by_id=None, now=stamp, title=REMOVED_TITLE)
    # Events from before the period go; later ones that carried a removed post or title are rewritten.
    db.session.execute(delete(RoomEvent).where(RoomEvent.room_id == room.id, RoomEvent.created_at < d.cutoff))
    post_removal.scrub_events(room.id, d.posts)
    for post in d.posts:
        services.record_event(room.id, "post.deleted", {"post": post_dict(post)})
    audit.record("retention.purged", target_type="room", target_id=room.id, room_id=room.id,
                 detail={"posts": d.count, "attachments": d.attachments, "transcript_segments": len(said),
                         "recordings": len(recorded),
                         "days": room.retention_days,
                         "before": d.cutoff.isoformat(timespec="seconds")})
    db.session.commit()
    post_removal.forget_files(shas)
    if recorded:   # the files go once the rest is committed; the rows stay, "gone", so the minutes still say there was one
        db.begin_write()
        for rec in recorded:
            recordings.delete_files(db.session.get(Recording, rec.id))
        db.session.commit()
    return d


def _transcripts_due(room: Room, cutoff: datetime) -> list[TranscriptSegment]:
    """What was said in the room's meetings before the cutoff (their transcripts, issue 16)."""
    return list(db.session.scalars(select(TranscriptSegment).join(Meeting, Meeting.id == TranscriptSegment.meeting_id)
                                   .where(Meeting.room_id == room.id, TranscriptSegment.started_at < cutoff)))


def _recordings_due(room: Room, cutoff: datetime) -> list[Recording]:
    """The room's meeting recordings (issue 16) that ended before the cutoff."""
    return list(db.session.scalars(select(Recording).join(Meeting, Meeting.id == Recording.meeting_id)
                                   .where(Meeting.room_id == room.id, Recording.status != "gone",
                                          Recording.ended_at.is_not(None), Recording.ended_at < cutoff)))


def describe(d: Due) -> list[str]:
    """Lines for the command line: each post that goes (never its text)."""
    lines = [(f"Room {d.room.id} \"{d.room.name}\" keeps {d.room.retention_days} days: {d.count} posts and "
             f"{d.attachments} attachments from before {d.cutoff:%Y-%m-%d %H:%M} UTC")]
    for p in d.posts:
        files_note = f", {len(p.attachments)} attachment(s)" if p.attachments else ""
        state = " (already a tombstone)" if p.deleted_at else ""
        lines.append(f"  post {p.id} in thread {p.thread_id} \"{p.thread.title}\", written "
                     f"{p.created_at:%Y-%m-%d}{files_note}{state}")
    return lines


def run(*, dry_run: bool, now: datetime | None = None) -> list[str]:
    """The daily job over every room with a retention period."""
    out: list[str] = []
    for room in rooms_with_retention():
        d = due(room, now) if dry_run else purge_room(room, now)
        if d is None or not d.posts:
            continue
        out.append(("Would delete: " if dry_run else "Deleted: ") + d.lines[0])
        out.extend(d.lines[1:])
    if not out:
        out.append("Nothing is past its room's retention period.")
    if not dry_run:
        n = user_sessions.prune(now)
        if n:
            out.append(f"Forgot {n} sessions that ended over 90 days ago.")
    return out


# -- command line ---------------------------------------------------------------------------------------

def _cli():
    group = AppGroup("retention", help="Delete posts past their room's retention period (run daily).")

    @group.command("run")
    @click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
    def run_cmd(dry_run: bool) -> None:
        """Delete (or with --dry-run list) posts and attachments past each room's retention period."""
        for line in run(dry_run=dry_run):
            click.echo(line)

    return group


retention_cli = _cli()
