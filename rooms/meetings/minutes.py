"""Minutes of a meeting: date, attendance (in the room and remote), agenda, decks,
key messages with outcomes and tallies, and actions. Posted by the chair as a
thread in the room (rooms.posts.create_thread), so the chair can edit it and
its history is kept like any post's; posting again updates that same post.
Also made as a PDF (fpdf2, with DejaVu Sans when installed for any script).

In a non-attributed room the minutes name nobody: the thread, which every reader
of the room sees, numbers people as the meeting does ("Participant n",
rooms/meetings/pseudonyms.py); the PDF shows names only to those who see names
there (a moderator's download is audited)."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from auth.models import User
from collab import timezones
from collab.errors import Forbidden
from collab.extensions import db
from rooms import policy
from rooms import posts as room_posts
from rooms.labels import label_of
from rooms.meetings import access, pseudonyms, state, votes
from rooms.meetings import services as meetings
from rooms.meetings.models import Meeting
from rooms.meetings.recordings import recordings_of
from rooms.models import Post, Thread
from rooms.polls import services as polls
from rooms.qa import services as qa_services

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def show(dt: datetime | None, fmt: str = "%H:%M") -> str:
    """A stored time (UTC, naive) as the minutes print it. The minutes are one document for everyone, so
    they are written in the site's time zone (COLLAB_TIME_ZONE, collab/timezones.py), which `%Z` names
    ("GMT"/"BST"). Every time in the minutes (thread and PDF) goes through here."""
    if dt is None:
        return ""
    return timezones.to_local(dt.replace(tzinfo=UTC), timezones.site_zone_name()).strftime(fmt)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.removesuffix("Z")) if value else None


def _span_text(start: datetime, end: datetime | None) -> str:
    if end is None:
        return f"{show(start)}–now"
    if show(start) == show(end):
        return show(start)
    return f"{show(start)}–{show(end)}"


def content(meeting: Meeting, names: bool = False) -> dict[str, Any]:
    """Everything the minutes say, as data and text: the thread and the PDF are both made from this,
    so they agree. The attendance is state.attendance, the register the live state shows (one span per
    time in the call, rejoins within two minutes merged; rooms/meetings/attendance.py). The meeting's
    start is the first join (the call or the meeting-room device), its end when the chair ended it,
    not the times it was scheduled for. `names`: for a reader who sees who is who (pseudonyms.names_for)."""
    plan = access.plan_for(meeting)
    snap = state.snapshot(meeting, names)
    att = snap["attendance"]
    remote: dict[str, dict] = {}
    joins: list[datetime] = []
    for a in att["remote"]:
        start, end = _parse(a["joined_at"]), _parse(a["left_at"])
        joins.append(start)
        key = str(a["number"] or a["user_id"] or a["name"])
        entry = remote.setdefault(key, {"name": a["name"], "spans": []})
        entry["spans"].append(_span_text(start, end))
    joins += [_parse(a["joined_at"]) for a in att["device"]]
    started = min(joins) if joins else None
    ended = meeting.ended_at
    day = started or (plan.starts_at if plan and plan.starts_at else meeting.created_at)
    if started is None:
        when = "Nobody joined the call" + (f"; ended {show(ended, '%H:%M %Z')}." if ended else ".")
    else:
        when = f"Started {show(started, '%H:%M')} (the first to join), " + \
            (f"ended {show(ended, '%H:%M %Z')}." if ended else f"not ended yet ({show(started, '%Z')}).")
    return {
        "label": label_of(meeting.room),
        "title": meeting.title,
        "room": meeting.room.name,
        "date": show(day, "%A %d %B %Y"),
        "started": started,
        "ended": ended,
        "time": when,
        "chairs": [c["name"] for c in snap["chairs"]] or ([pseudonyms.display(meeting, meeting.created_by, names)]
                                                          if meeting.created_by else []),
        "pseudonymous": pseudonyms.applies(meeting) and not names,
        "in_room": [a["name"] for a in att["in_room"]],
        "devices": [(a["name"], a["head_count"]) for a in att["device"]],
        "remote": list(remote.values()),
        "attendance": attendance_lines(att, remote.values()),
        "agenda": plan.agenda if plan else "",
        "decks": [d["filename"] + (f" ({d['pages']} pages)" if d["pages"] else "") for d in snap["decks"]],
        "key_messages": [dict(km, result=votes.result(km["status"], km["outcome"], meeting.ended))
                         for km in snap["key_messages"]],
        "actions": snap["actions"],
        # Q&A (issue 13): the questions the hosts answered aloud in this meeting's sessions (no names)
        "answered_aloud": qa_services.answered_aloud_in_meeting(meeting.id),
        "polls": [{"question": p.question, "lines": polls.outcome_lines(p)} for p in polls.meeting_polls(meeting)],
        # recordings (issue 16): when each ran and where to replay it (readers of the room's attachments)
        "recordings": [{"id": r.id, "from": show(r.started_at, "%H:%M"), "to": show(r.ended_at, "%H:%M %Z"),
                        "url": f"/meetings/{meeting.id}/recordings/{r.id}"} for r in recordings_of(meeting)],
    }


def attendance_lines(att: dict, remote) -> list[str]:
    """The attendance section's lines, the same in the thread and the PDF."""
    lines = [f"In the room: {', '.join(a['name'] for a in att['in_room']) or 'nobody recorded'}"]
    lines += [f"{a['name']}: head-count {a['head_count']}" for a in att["device"]]
    people = [f"- {r['name']} ({', '.join(r['spans'])})" for r in remote]
    lines.append("Remote (in the call): " + ("" if people else "nobody"))
    return lines + people


def _outcome(km: dict) -> str:
    return km["result"]


def _tally_text(km: dict) -> str:
    t = km["tally"]
    if t is None:
        return "The tally is hidden until the vote closes"
    parts = []
    for c, label in (("agree", "agree"), ("disagree", "disagree"), ("abstain", "abstain")):
        parts.append(f"{t['total'][c]} {label} ({t['remote'][c]} remote, {t['room'][c]} in the room)")
    return "; ".join(parts)


NUMBERED = "Names are not shown in this room: people are numbered for this meeting."


def markdown(meeting: Meeting) -> str:
    """The minutes thread's text: every reader of the room sees it, so it is made without names."""
    c = content(meeting)
    out = [f"**{c['label']}**", "", f"Minutes of **{c['title']}** ({c['room']}), {c['date']}. {c['time']}", "",
           f"Chair: {', '.join(c['chairs']) or '—'}", ""]
    if c["pseudonymous"]:
        out += [NUMBERED, ""]
    out += ["## Attendance", ""]
    for line in c["attendance"]:
        out += [line] if line.startswith("- ") else [line, ""]
    out += ["", "## Agenda", "", c["agenda"] or "No agenda was set.", "", "## Papers and decks", ""]
    out += [f"- {d}" for d in c["decks"]] or ["None."]
    out += ["", "## Key messages", ""]
    if not c["key_messages"]:
        out.append("None were recorded.")
    for i, km in enumerate(c["key_messages"], 1):
        out.append(f"{i}. **{km['text']}** — **{_outcome(km)}**. {_tally_text(km)}.")
        for comment in (km["tally"] or {}).get("comments", []):
            out.append(f"   - Comment: {comment}")
    out += ["", "## Polls and proposals", ""]
    out += [line for i, p in enumerate(c["polls"], 1)
            for line in [f"{i}. **{p['question']}**", *(f"   - {x}" for x in p["lines"])]] or ["None were taken."]
    out += ["", "## Actions", ""]
    out += [f"- {a['text']}" + (f" ({a['owner']})" if a["owner"] else "") for a in c["actions"]] or ["None."]
    if c["answered_aloud"]:
        out += ["", "## Questions answered aloud (Q&A)", ""]
        out += [f"- {' '.join(q.split())}" for q in c["answered_aloud"]]
    if c["recordings"]:
        out += ["", "## Recordings", ""]
        out += [f"- [Recording {r['from']}–{r['to']}]({r['url']})" for r in c["recordings"]]
    out += ["", f"[Download these minutes as a PDF](/meetings/{meeting.id}/minutes.pdf)"]
    return "\n".join(out)


def post_minutes(actor: User, meeting_id: object) -> Thread:
    """Post (or update) the minutes thread in the room: those who may end the meeting
    (access.may_end: the room's moderators, the chairs, whoever started it), so `/finish`
    works for everyone who may end it."""
    meeting = access.get_writable(actor, meeting_id)
    if not access.may_end(actor, meeting):
        raise Forbidden("Only the chair can post the minutes.")
    body = markdown(meeting)
    plan = access.plan_for(meeting)
    if plan is not None and plan.minutes_thread_id:
        thread = db.session.get(Thread, plan.minutes_thread_id)
        if thread is not None:
            first = db.session.scalar(
                select(Post).where(Post.thread_id == thread.id, Post.parent_id.is_(None))
                .order_by(Post.id).limit(1))
            if first is not None and first.body != body:
                room_posts.edit_post(actor, first.id, body=body)
            return thread
    thread = room_posts.create_thread(actor, meeting.room_id, title=f"Minutes: {meeting.title}"[:200], body=body)
    db.begin_write()
    plan = state.ensure_plan(meeting)
    plan.minutes_thread_id = thread.id
    state.publish(meeting)
    db.session.commit()
    return thread


def end_with_minutes(actor: User, meeting_id: object) -> Thread:
    """End the meeting (services.end_meeting, the one rule for who may) and post the minutes."""
    meetings.end_meeting(actor, meeting_id)
    return post_minutes(actor, meeting_id)


def pdf(actor: User, meeting_id: object) -> tuple[str, bytes]:
    from fpdf import FPDF  # here, not at the top: fpdf2 loads only when a PDF is made

    meeting = access.get_meeting(actor, meeting_id)
    if not policy.may_download_minutes_pdf(actor, meeting):
        raise Forbidden("Guests cannot download the minutes PDF in rooms with this confidentiality label.")
    c = content(meeting, pseudonyms.names_for(actor, meeting, "minutes_pdf"))
    class _Labelled(FPDF):
        """Every page carries the room's confidentiality label, top and bottom."""

        def header(self) -> None:
            self.set_font(family, "B", 10)
            self.cell(0, 6, c["label"], align="C", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            self.set_y(-14)
            self.set_font(family, "B", 10)
            self.cell(0, 6, f"{c['label']} · page {self.page_no()}", align="C")

    doc = _Labelled(format="A4")
    doc.set_auto_page_break(True, margin=18)
    doc.set_title(f"Minutes: {c['title']}")
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        doc.add_font("body", "", str(regular))
        doc.add_font("body", "B", str(bold))
        family = "body"

        def t(s: str) -> str:
            return s
    else:
        family = "helvetica"

        def t(s: str) -> str:
            return s.replace("–", "-").replace("—", "-").replace("“", '"').replace("”", '"').replace("’", "'") \
                .encode("latin-1", "replace").decode("latin-1")
    doc.add_page()
    w = doc.epw

    def head(text: str, size: int = 14) -> None:
        doc.ln(3)
        doc.set_font(family, "B", size)
        doc.multi_cell(w, 8, t(text), new_x="LMARGIN", new_y="NEXT")
        doc.set_font(family, "", 11)

    def para(text: str) -> None:
        doc.multi_cell(w, 6, t(text), new_x="LMARGIN", new_y="NEXT")

    head(f"Minutes: {c['title']}", 18)
    para(f"{c['room']} · {c['date']}. {c['time']}")
    para(f"Chair: {', '.join(c['chairs']) or '-'}")
    if c["pseudonymous"]:
        para(NUMBERED)
    head("Attendance")
    for line in c["attendance"]:
        para(line)
    head("Agenda")
    para(c["agenda"] or "No agenda was set.")
    head("Papers and decks")
    para("\n".join(f"• {d}" for d in c["decks"]) or "None.")
    head("Key messages")
    if not c["key_messages"]:
        para("None were recorded.")
    for i, km in enumerate(c["key_messages"], 1):
        doc.set_font(family, "B", 11)
        para(f"{i}. {km['text']}")
        doc.set_font(family, "", 11)
        para(f"Outcome: {_outcome(km)}. {_tally_text(km)}.")
        for comment in (km["tally"] or {}).get("comments", []):
            para(f"Comment: {comment}")
    head("Polls and proposals")
    if not c["polls"]:
        para("None were taken.")
    for i, p in enumerate(c["polls"], 1):
        doc.set_font(family, "B", 11)
        para(f"{i}. {p['question']}")
        doc.set_font(family, "", 11)
        para("\n".join(p["lines"]))
    head("Actions")
    para("\n".join(f"• {a['text']}" + (f" ({a['owner']})" if a["owner"] else "") for a in c["actions"]) or "None.")
    if c["answered_aloud"]:
        head("Questions answered aloud (Q&A)")
        para("\n".join(f"• {' '.join(q.split())}" for q in c["answered_aloud"]))
    name = "".join(ch if ch.isalnum() else "-" for ch in c["title"])[:60].strip("-") or "meeting"
    return f"minutes-{name}.pdf", bytes(doc.output())

