"""Data protection: an account downloads everything it has put into Collab, and
an administrator erases an account. Both are mostly about room content (posts,
attachments, memberships, room events), so they live here, beside the rooms;
the pages are rooms/account_data_views.py.

Erasing keeps the discussion whole: the account's posts stay in their threads
as "former member" posts, their text kept or removed (a tombstone, as when a
post is deleted) as the administrator chooses. Everything else that names the
account goes: memberships, reactions, read markers, notifications, sessions,
tokens, two-step secrets; references elsewhere (rooms it created, invitations
it sent, edits it made) lose the link; stored room events forget its name; its microphone, camera and
screen leave meeting recordings (each is composed again without them).
The audit log keeps its entries (it is append-only; see docs/security.md).
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app

from sqlalchemy import delete, func, or_, select, update

from auth import audit, mfa
from auth import permissions as perm
from auth import sessions as user_sessions
from auth.account_models import UserSession
from auth.models import Invitation, User
from collab import events, validate
from collab.db import Base, utcnow
from collab.errors import Invalid, NotFound
from collab.extensions import db
from rooms import attachments as files
from rooms import policy, post_removal
from rooms import posts as room_posts
from rooms.ideas.models import Idea, IdeaVote
from rooms.meetings import recording_processing
from rooms.meetings.models import Attendance
from rooms.meetings.recording_models import Recording
from rooms.meetings.transcript_models import TranscriptSegment
from rooms.models import Attachment, Membership, Post, PostRevision, Reaction, Room, RoomEvent, Thread
from rooms.polls.models import Poll, PollVote
from rooms.polls.serialize import options as poll_options
from rooms.watching import ThreadWatch

EXPORT_README = """Your data from Collab
=====================

profile.json      your account: name, e-mail address, organisation, kind of account, dates
memberships.json  the rooms you belong to and your role in each
posts.json        every post you wrote (Markdown text, earlier versions, where it was, its attachments)
reactions.json    the reactions you added to posts
idea_votes.json   the ideas you voted for, and when
thread_notifications.json  the threads you set to watching, tracking or muted
poll_votes.json   your own votes in polls and proposals (what you chose, your reason, when); in an
                  anonymous poll too, since it is yours -- never anyone else's vote or name
transcript.json   what you said in meetings, as the automatic captions heard it (and as a chair corrected it)
recordings.json   the meeting recordings you spoke in (when, and where to replay them while you may read the room)
recordings/       your own microphone in those recordings, as recorded (WebM, Opus)
sessions.json     the devices signed in to your account
attachments/      the files you attached to your posts

Rooms and threads you can no longer read are listed by number only.
"""


def _recorded(user_id: int, kinds: str = "*") -> list[tuple[Recording, list[Path]]]:
    """Recordings (issue 16) of meetings the account attended with its streams in them (`kinds`: "audio" or
    "*"), and those files."""
    meeting_ids = set(db.session.scalars(select(Attendance.meeting_id).where(Attendance.user_id == user_id)))
    out = []
    for rec in db.session.scalars(select(Recording).where(Recording.meeting_id.in_(meeting_ids),
                                                          Recording.status != "gone").order_by(Recording.id)):
        files = sorted(recording_processing.folder(rec).glob(f"{user_id}-{kinds}-*.webm"))
        if files:
            out.append((rec, files))
    return out


def _recordings_spoken_in(user: User, blobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Recordings in which the account's microphone was recorded; its own microphone files go into the
    archive (its voice, like its posts), never anyone else's."""
    out = []
    for rec, mine in _recorded(user.id, "audio"):
        if not mine:
            continue
        for path in mine:
            blobs.append((f"recordings/{rec.id}-{path.name}", str(path)))
        readable = policy.may_read_recordings(user, rec.meeting) if rec.meeting else False
        out.append({"meeting_id": rec.meeting_id, "recording_id": rec.id, "started_at": _iso(rec.started_at),
                    "ended_at": _iso(rec.ended_at), "your_files": [f"recordings/{rec.id}-{p.name}" for p in mine],
                    "replay": f"/meetings/{rec.meeting_id}/recordings/{rec.id}" if readable else None})
    return out


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") + "Z" if dt else None


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


# -- download ----------------------------------------------------------------------------------

def export_data(user: User) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(the JSON documents by file name, [(zip path, file on disk)] of attachments)."""
    profile = {
        "id": user.id, "email": user.email, "name": user.name, "job_title": user.job_title,
        "kind": user.kind, "site_role": user.role, "organisation_admin": user.org_admin,
        "organisation": user.organisation.name if user.organisation else None,
        "active": user.active, "created_at": _iso(user.created_at), "last_seen_at": _iso(user.last_seen_at),
        "two_step_sign_in": bool(mfa.enabled(user)), "time_zone": user.time_zone,
    }
    memberships = [
        {"room_id": m.room_id, "room": m.room.name, "role": m.role, "notifications": m.notify_level,
         "joined_at": _iso(m.created_at)}
        for m in db.session.scalars(select(Membership).where(Membership.user_id == user.id).order_by(Membership.id))
    ]
    readable: dict[int, bool] = {}

    def can_read(room: Room) -> bool:
        if room.id not in readable:
            readable[room.id] = policy.can_read_room(user, room)
        return readable[room.id]

    posts, blobs = [], []
    for post in db.session.scalars(select(Post).where(Post.author_id == user.id).order_by(Post.id)):
        thread: Thread = post.thread
        visible = can_read(thread.room)
        revisions = [{"text": r.body, "written_at": _iso(r.written_at), "replaced_at": _iso(r.replaced_at)}
                     for r in db.session.scalars(select(PostRevision).where(PostRevision.post_id == post.id)
                                                 .order_by(PostRevision.id))]
        atts = []
        for att in ([] if post.deleted else post.attachments):
            name = f"attachments/{att.id}-{files.safe_filename(att.filename)}"
            path = files.blob_path(att.sha256)
            atts.append({"id": att.id, "filename": att.filename, "content_type": att.content_type,
                         "size": att.size, "file": name if path.exists() else None})
            if path.exists():
                blobs.append((name, str(path)))
        posts.append({
            "id": post.id, "room_id": thread.room_id, "room": thread.room.name if visible else None,
            "thread_id": thread.id, "thread": thread.title if visible else None, "parent_id": post.parent_id,
            "created_at": _iso(post.created_at), "edited_at": _iso(post.edited_at),
            "deleted_at": _iso(post.deleted_at), "text": post.body, "earlier_versions": revisions,
            "attachments": atts,
        })
    reactions = [{"post_id": r.post_id, "emoji": r.emoji, "added_at": _iso(r.created_at)}
                 for r in db.session.scalars(select(Reaction).where(Reaction.user_id == user.id).order_by(Reaction.id))]
    idea_votes = []
    for v in db.session.scalars(select(IdeaVote).where(IdeaVote.user_id == user.id).order_by(IdeaVote.id)):
        idea = db.session.get(Idea, v.idea_id)
        visible = idea is not None and policy.may_see_idea(user, idea)
        idea_votes.append({"idea_id": v.idea_id, "room_id": v.room_id, "idea": idea.thread.title if visible else None,
                           "voted_at": _iso(v.created_at)})
    poll_votes = [_poll_vote(user, v) for v in db.session.scalars(
        select(PollVote).where(PollVote.user_id == user.id).order_by(PollVote.id))]
    watches = [{"thread_id": t.id, "thread": t.title if can_read(t.room) else None, "level": w.level,
                "set_at": _iso(w.updated_at)}
               for w, t in db.session.execute(select(ThreadWatch, Thread).join(Thread, Thread.id == ThreadWatch.thread_id)
                                              .where(ThreadWatch.user_id == user.id).order_by(ThreadWatch.thread_id))]
    sessions = [{"device": user_sessions.device(s.user_agent), "user_agent": s.user_agent, "address": s.ip,
                 "signed_in_at": _iso(s.created_at), "last_seen_at": _iso(s.last_seen_at)}
                for s in user_sessions.live_sessions(user)]
    # Attachments the account uploaded to posts it did not write (none today) are included too.
    for att in db.session.scalars(select(Attachment).join(Post).where(
            Attachment.uploader_id == user.id, or_(Post.author_id.is_(None), Post.author_id != user.id),
            Post.deleted_at.is_(None))):
        path = files.blob_path(att.sha256)
        if path.exists():
            blobs.append((f"attachments/{att.id}-{files.safe_filename(att.filename)}", str(path)))
    # Captions of the account's own speech (issue 16): theirs, like their posts, whatever the room.
    transcript = [{"meeting_id": s.meeting_id, "start": _iso(s.started_at), "end": _iso(s.ended_at),
                   "heard": s.text, "corrected": s.corrected_text}
                  for s in db.session.scalars(select(TranscriptSegment).where(TranscriptSegment.speaker_id == user.id)
                                              .order_by(TranscriptSegment.started_at, TranscriptSegment.id))]
    recordings = _recordings_spoken_in(user, blobs)
    docs = {"profile.json": profile, "memberships.json": memberships, "posts.json": posts,
            "reactions.json": reactions, "idea_votes.json": idea_votes, "poll_votes.json": poll_votes,
            "thread_notifications.json": watches, "transcript.json": transcript, "recordings.json": recordings,
            "sessions.json": sessions}
    return docs, blobs


def _poll_vote(user: User, vote: PollVote) -> dict[str, Any]:
    """The account's own ballot: the question and option texts while it may still see the poll (as a
    thread, `policy.may_see_poll`), else numbers only. Nothing about anyone else's vote."""
    poll = db.session.get(Poll, vote.poll_id)
    visible = poll is not None and policy.may_see_poll(user, poll)
    choices = json.loads(vote.choices)
    out: dict[str, Any] = {"poll_id": vote.poll_id, "room_id": poll.room_id if poll else None,
                           "question": poll.question if visible else None,
                           "kind": poll.kind if poll else None, "anonymous": bool(poll and poll.anonymous),
                           "choices": choices, "reason": vote.reason or None,
                           "voted_at": _iso(vote.created_at), "changed_at": _iso(vote.updated_at)}
    if visible:
        out["options"] = poll_options(poll)
    return out


def export_zip(user: User):
    """A zip of the account's data in a temporary file (deleted when closed), and its download name."""
    docs, blobs = export_data(user)
    out = tempfile.TemporaryFile()  # noqa: SIM115  (send_file closes it after the response)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", EXPORT_README)
        for name, doc in docs.items():
            zf.writestr(name, _json(doc))
        seen = set()
        for name, path in blobs:
            if name not in seen:
                seen.add(name)
                zf.write(path, name)
    out.seek(0)
    audit.record_now("account.exported", actor=user, target_type="user", target_id=user.id,
                     detail={"posts": len(docs["posts.json"]), "attachments": len({n for n, _ in blobs})})
    return out, f"collab-data-{user.id}-{utcnow():%Y%m%d}.zip"


# -- erasure -------------------------------------------------------------------------------------

CONTENT_CHOICES = {"keep": "Keep the text of their posts (shown as by a former member)",
                   "remove": "Remove the text and attachments of their posts (tombstones keep the threads whole)"}


def erase_preview(target: User) -> dict[str, int]:
    return {
        "posts": db.session.scalar(select(func.count(Post.id)).where(Post.author_id == target.id,
                                                                     Post.deleted_at.is_(None))) or 0,
        "memberships": db.session.scalar(select(func.count(Membership.id)).where(
            Membership.user_id == target.id)) or 0,
    }


def _user_references() -> list[tuple[Any, Any]]:
    """(table, column) of every foreign key to users.id that the database does not cascade."""
    refs = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if (fk.column.table.name == "users" and fk.column.name == "id" and table.name != "users"
                    and (fk.ondelete or "").upper() != "CASCADE"):
                refs.append((table, fk.parent))
    return refs


def _scrub(obj: Any, uid: int) -> tuple[Any, bool]:
    """Replace the account in a stored event payload: authors become None, other
    mentions "Former member"; it leaves lists of ids."""
    changed = False
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, dict) and v.get("id") == uid and "name" in v:
                out[k] = None if k == "author" else {"id": None, "name": "Former member"}
                changed = True
            elif k == "user_ids" and isinstance(v, list) and uid in v:
                out[k] = [i for i in v if i != uid]
                changed = True
            else:
                out[k], c = _scrub(v, uid)
                changed = changed or c
        return out, changed
    if isinstance(obj, list):
        items = [_scrub(v, uid) for v in obj]
        return [v for v, _ in items], any(c for _, c in items)
    return obj, False


def erase_account(actor: User, target_id: object, *, posts: object, confirm: object) -> dict[str, Any]:
    try:
        uid = validate.int_id(target_id, "user_id")
    except Invalid:
        raise NotFound() from None
    target = db.session.get(User, uid)
    if target is None or not perm.can_erase_account(actor, target):
        raise NotFound()
    if posts not in CONTENT_CHOICES:
        raise Invalid("Choose whether to keep or remove the text of their posts.", "posts")
    if not isinstance(confirm, str) or confirm.strip().lower() != target.email:
        raise Invalid("Type the account's e-mail address exactly, to confirm.", "confirm")
    recorded = _recorded(uid)   # before the attendance rows forget the account
    db.begin_write()
    target = db.session.get(User, uid, populate_existing=True)
    n_posts, shas = room_posts.erase_author_posts(uid, remove_text=posts == "remove", by_id=actor.id)
    for rec, _files in recorded:   # composed again without them (below, once their files are gone)
        if rec.status in ("ready", "failed"):
            rec.status, rec.progress, rec.message = "stopped", 0, ""
    # Invitations that were used to create this account carried its address.
    db.session.execute(update(Invitation).where(Invitation.used_by_id == uid).values(email=None))
    for table, column in _user_references():
        if not column.nullable:
            raise Invalid(f"The account cannot be erased: {table.name} still refers to it.")
        db.session.execute(update(table).where(column == uid).values({column.name: None}))
    like = f'%"id": {uid}%'
    for ev in db.session.scalars(select(RoomEvent).where(RoomEvent.payload.like(like))).all():
        scrubbed, changed = _scrub(json.loads(ev.payload), uid)
        if changed:
            ev.payload = json.dumps(scrubbed)
    audit.record("account.erased", actor=actor, target_type="user", target_id=uid,
                 detail={"content": posts, "posts": n_posts})
    events.queue(db.session, "account.changed", {"user_id": uid, "reason": "deactivated"})
    db.session.execute(delete(UserSession).where(UserSession.user_id == uid))
    db.session.execute(delete(User).where(User.id == uid))
    db.session.expunge(target)
    db.session.commit()
    db.session.expire_all()  # rows the database changed (cascades, SET NULL) are read afresh
    post_removal.forget_files(shas)
    _cut_from_recordings(recorded)
    return {"posts": n_posts, "content": posts}


def _cut_from_recordings(recorded: list[tuple[Recording, list[Path]]]) -> None:
    """Their microphone, camera and screen leave every recording: the files go, and so does the composed file
    that mixed them in; each recording that had one is composed again without them, in the background."""
    for rec, paths in recorded:
        for path in paths:
            path.unlink(missing_ok=True)
        composed = recording_processing.composed_path(rec)
        if composed.exists():
            composed.unlink()
            recording_processing.start(current_app._get_current_object(), rec.id)
