"""What happened during a recording, as the replay page's index and slide track (issue 16): the slides
shown (rows written while it ran, recording_models.RecordingMark), who spoke (the worker's timeline
files, read by recording_compose.read_timeline), hands raised, votes opened and their outcomes, and chat
— each at its offset in seconds from the recording's start, named as the room shows people to this
reader (rooms/meetings/pseudonyms.py). Captions are the transcript's WebVTT for the same window
(rooms/meetings/transcript.py webvtt). Readers only: the caller got the recording through
recordings.get_readable.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import select

from auth.models import User
from collab.extensions import db
from rooms.meetings import pseudonyms
from rooms.meetings.models import ChatMessage, Hand, KeyMessage, Meeting
from rooms.meetings.recording_compose import read_timeline, speaker_spans
from rooms.meetings.recording_models import Recording, RecordingMark
from rooms.meetings.recording_processing import epoch, folder
from rooms.serialize import iso

MAX_ENTRIES = 2000
OUTCOMES = {"agreed": "agreed", "not_agreed": "not agreed", "deferred": "deferred"}


def _offset(rec: Recording, at: datetime) -> float:
    return round(max(0.0, (at - rec.started_at).total_seconds()), 2)


def _within(rec: Recording, at: datetime | None) -> bool:
    return at is not None and rec.started_at <= at <= (rec.ended_at or at)


def _short(text: str, n: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def slides(rec: Recording) -> list[dict[str, Any]]:
    out = []
    for m in db.session.scalars(select(RecordingMark).where(RecordingMark.recording_id == rec.id)
                                .order_by(RecordingMark.at, RecordingMark.id)):
        if m.deck_id is None:
            continue
        out.append({"t": _offset(rec, m.at), "page": m.page, "deck_id": m.deck_id,
                    "url": url_for("meetings.deck_page", meeting_id=rec.meeting_id, deck_id=m.deck_id, page=m.page)})
    return out


def index(actor: User, meeting: Meeting, rec: Recording) -> dict[str, Any]:
    """{"slides": […], "entries": [{"t", "kind", "text"}…]} for one reader, in time order."""
    names = pseudonyms.names_for(actor, meeting, "recording")
    entries: list[dict[str, Any]] = []
    shown = slides(rec)
    for i, s in enumerate(shown):
        if i == 0 or s["page"] != shown[i - 1]["page"] or s["deck_id"] != shown[i - 1]["deck_id"]:
            entries.append({"t": s["t"], "kind": "slide", "text": f"Slide {s['page']}"})
    start, end = epoch(rec.started_at), epoch(rec.ended_at) if rec.ended_at else None
    if end is not None:
        spans = speaker_spans(read_timeline(folder(rec)), start, end)
        people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({a for _, _, a in spans})))}
        for a, _b, account in spans:
            who = pseudonyms.person(meeting, people.get(account), names) or {"name": pseudonyms.UNKNOWN}
            entries.append({"t": round(a, 2), "kind": "speaker", "text": f"{who['name']} speaks"})
    for h in db.session.scalars(select(Hand).where(Hand.meeting_id == meeting.id)):
        if _within(rec, h.raised_at):
            who = h.name if names or not pseudonyms.applies(meeting) else "A participant"
            entries.append({"t": _offset(rec, h.raised_at), "kind": "hand", "text": f"Hand raised: {who}"})
    kms = list(db.session.scalars(select(KeyMessage).where(KeyMessage.meeting_id == meeting.id)
                                  .order_by(KeyMessage.id)))
    for n, km in enumerate(kms, 1):
        if _within(rec, km.opened_at):
            entries.append({"t": _offset(rec, km.opened_at), "kind": "vote",
                            "text": f"Vote on key message {n}: {_short(km.text)}"})
        if _within(rec, km.closed_at):
            outcome = OUTCOMES.get(km.outcome, "closed")
            entries.append({"t": _offset(rec, km.closed_at), "kind": "outcome",
                            "text": f"Key message {n} {outcome}: {_short(km.text)}"})
    for c in db.session.scalars(select(ChatMessage).where(ChatMessage.meeting_id == meeting.id)
                                .order_by(ChatMessage.id)):
        if _within(rec, c.created_at):
            who = c.name if names or not pseudonyms.applies(meeting) else "A participant"
            entries.append({"t": _offset(rec, c.created_at), "kind": "chat", "text": f"{who}: {_short(c.body)}"})
    entries.sort(key=lambda e: e["t"])
    return {"id": rec.id, "status": rec.status, "progress": rec.progress, "message": rec.message,
            "started_at": iso(rec.started_at), "ended_at": iso(rec.ended_at), "duration": round(rec.duration, 2),
            "slides": shown, "entries": entries[:MAX_ENTRIES]}
