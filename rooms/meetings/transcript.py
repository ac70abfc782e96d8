"""A meeting's transcript (issue 16): final captions saved as the media worker reports them, read by the
room's readers (rooms.policy.may_read_transcript), exported as WebVTT, and corrected by a chair.

- `save_report`: a checked report from the worker (media/captions/report.py verify) becomes rows, each once
  by its utterance key. The worker decided who was in the meeting (it held their token); the report
  only says who spoke, so a report for a meeting that no longer exists is ignored, not an error.
- `segments` / `webvtt`: per reader; the speaker is named or shown as "Participant n" as the room requires
  (rooms/meetings/pseudonyms.py names_for, which audits a moderator's read of names in a
  non-attributed room). Times in the WebVTT file count from the meeting's start.
- `correct`: the chairs (rooms/meetings/access.py is_chair), never in an archived room; audited
  ("meeting.transcript_corrected"); the corrected text is what the export and search show (search
  indexes it with the meeting's minutes post: search/documents.py).
- The segments someone spoke are in their data export (rooms/account_data.py).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from auth import audit
from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, NotFound
from collab.extensions import db
from rooms import policy
from rooms.meetings import access, pseudonyms
from rooms.meetings.models import Meeting
from rooms.meetings.transcript_models import TranscriptSegment

MAX_TEXT = 2000
MAX_SEGMENTS = 5000   # shown on a page / in one export (a day-long meeting has about 3,000)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def save_report(message: dict) -> int:
    """Save the segments of one verified worker report; the number of new rows."""
    meeting = db.session.get(Meeting, message["meeting"])
    if meeting is None:
        return 0
    db.begin_write()
    keys = [s["key"] for s in message["segments"]]
    have = set(db.session.scalars(select(TranscriptSegment.key).where(
        TranscriptSegment.meeting_id == meeting.id, TranscriptSegment.key.in_(keys))))
    speakers = {u.id for u in db.session.scalars(select(User).where(
        User.id.in_({s["account"] for s in message["segments"]})))}
    added = 0
    for s in message["segments"]:
        text = validate.clean_text(s["text"])[:MAX_TEXT].strip()
        if s["key"] in have or not text:
            continue
        have.add(s["key"])
        db.session.add(TranscriptSegment(meeting_id=meeting.id, key=s["key"], text=text,
                                         speaker_id=s["account"] if s["account"] in speakers else None,
                                         started_at=_utc(s["start"]), ended_at=_utc(s["end"])))
        added += 1
    pseudonyms.assign(meeting, [s["account"] for s in message["segments"] if s["account"] in speakers])
    db.session.commit()
    return added


def get_readable(actor: User | None, meeting_id: object) -> Meeting:
    meeting = access.get_meeting(actor, meeting_id)
    if not policy.may_read_transcript(actor, meeting):
        raise NotFound("Meeting not found.")
    return meeting


def _rows(meeting: Meeting) -> list[TranscriptSegment]:
    return list(db.session.scalars(select(TranscriptSegment).where(TranscriptSegment.meeting_id == meeting.id)
                                   .order_by(TranscriptSegment.started_at, TranscriptSegment.id)
                                   .limit(MAX_SEGMENTS)))


def segment_dict(meeting: Meeting, seg: TranscriptSegment, names: bool) -> dict[str, Any]:
    who = pseudonyms.person(meeting, seg.speaker, names) or {"name": pseudonyms.UNKNOWN}
    return {"id": seg.id, "speaker": who, "start": seg.started_at.isoformat() + "Z",
            "end": seg.ended_at.isoformat() + "Z", "text": seg.shown_text, "heard": seg.text,
            "offset": _stamp((seg.started_at - meeting.created_at).total_seconds()).split(".")[0],
            "corrected": seg.corrected_text is not None}


def segments(actor: User | None, meeting_id: object, what: str = "api") -> tuple[Meeting, list[dict[str, Any]]]:
    meeting = get_readable(actor, meeting_id)
    names = pseudonyms.names_for(actor, meeting, f"transcript_{what}")
    return meeting, [segment_dict(meeting, s, names) for s in _rows(meeting)]


def _stamp(seconds: float) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _vtt_text(text: str) -> str:
    """Cue text cannot hold "-->" or a blank line, and &, < are escaped (WebVTT section 4.2.2)."""
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def webvtt(actor: User | None, meeting_id: object, *, start: datetime | None = None,
           end: datetime | None = None) -> str:
    """The transcript as a WebVTT file, each cue voiced by its speaker (`<v Name>`), corrected text first.
    Times count from the meeting's start, or from `start` (a recording's), keeping only what was said
    between `start` and `end`."""
    meeting = get_readable(actor, meeting_id)
    names = pseudonyms.names_for(actor, meeting, "transcript_vtt")
    rows = _rows(meeting)
    if start is not None:
        rows = [seg for seg in rows if seg.ended_at >= start and (end is None or seg.started_at <= end)]
    start = start or meeting.created_at
    lines = ["WEBVTT", "", f"NOTE {_vtt_text(meeting.title)}: automatic captions, which may contain mistakes.", ""]
    for seg in rows:
        who = (pseudonyms.person(meeting, seg.speaker, names) or {"name": pseudonyms.UNKNOWN})["name"]
        a = (seg.started_at - start).total_seconds()
        b = max(a + 0.5, (seg.ended_at - start).total_seconds())
        lines += [f"{seg.id}", f"{_stamp(a)} --> {_stamp(b)}",
                  f"<v {_vtt_text(who)}>{_vtt_text(seg.shown_text)}", ""]
    return "\n".join(lines)


def may_correct(actor: User | None, meeting: Meeting) -> bool:
    return bool(actor) and policy.may_act_in_meeting(actor, meeting) and access.is_chair(actor, meeting)


def correct(actor: User, segment_id: object, text: object) -> TranscriptSegment:
    """A chair's correction of one segment (empty text: back to what the engine heard)."""
    sid = validate.int_id(segment_id, "segment_id")
    seg = db.session.get(TranscriptSegment, sid)
    if seg is None:
        raise NotFound("Transcript segment not found.")
    meeting = get_readable(actor, seg.meeting_id)
    if not may_correct(actor, meeting):
        access.check_writable(actor, meeting)
        raise Forbidden("Only the meeting's chair can correct its transcript.")
    new = validate.text(text, "text", max_len=MAX_TEXT, required=False) if text not in (None, "") else ""
    db.begin_write()
    seg = db.session.get(TranscriptSegment, sid, populate_existing=True)
    seg.corrected_text = new or None
    seg.corrected_by_id = actor.id
    seg.corrected_at = utcnow()
    audit.record("meeting.transcript_corrected", actor=actor, target_type="meeting", target_id=meeting.id,
                 room_id=meeting.room_id, detail={"segment": seg.id, "reverted": not new})
    db.session.commit()
    return seg


def text_of_meeting(meeting_id: int) -> str:
    """The transcript's text as shown (corrected first), for search (search/documents.py)."""
    return "\n".join(s.shown_text for s in db.session.scalars(
        select(TranscriptSegment).where(TranscriptSegment.meeting_id == meeting_id)
        .order_by(TranscriptSegment.started_at).limit(MAX_SEGMENTS)))
