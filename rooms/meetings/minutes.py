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

from datetime import datetime
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
from rooms.meetings import access, pseudonyms, state
from rooms.meetings import services as meetings
from rooms.meetings.models import Meeting
from rooms.meetings.votes import OUTCOME_LABELS
from rooms.models import Post, Thread

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _dt(iso: str | None) -> str:
    """A time as the minutes give it, "2026-06-10 10:00 BST": the minutes are one document for everyone,
    so in the site's time zone (COLLAB_TIME_ZONE), which they name (collab/timezones.py)."""
    if not iso:
        return ""
    loc = timezones.to_local(datetime.fromisoformat(iso.replace("Z", "+00:00")), timezones.site_zone_name())
    return f"{loc:%Y-%m-%d %H:%M} {timezones.abbreviation(loc)}"


def content(meeting: Meeting, names: bool = False) -> dict[str, Any]:
    """Everything the minutes say, as data (the thread text and the PDF are made from it).
    `names`: for a reader who sees who is who (pseudonyms.names_for)."""
    plan = access.plan_for(meeting)
    snap = state.snapshot(meeting, names)
    att = snap["attendance"]
    start = plan.starts_at if plan and plan.starts_at else meeting.created_at
    remote: dict[str, dict] = {}
    for a in att["remote"]:
        key = str(a["number"] or a["user_id"] or a["name"])
        entry = remote.setdefault(key, {"name": a["name"], "spans": []})
        entry["spans"].append((a["joined_at"], a["left_at"]))
    return {
        "label": label_of(meeting.room),
        "title": meeting.title,
        "room": meeting.room.name,
        "date": timezones.fmt(start, timezones.site_zone_name(), "longdate"),
        "time": f"{timezones.span(start, plan.ends_at if plan else None, timezones.site_zone_name(), 'clock')} "
                f"({timezones.site_zone_name()} time)",
        "chairs": [c["name"] for c in snap["chairs"]] or ([pseudonyms.display(meeting, meeting.created_by, names)]
                                                          if meeting.created_by else []),
        "pseudonymous": pseudonyms.applies(meeting) and not names,
        "in_room": [a["name"] for a in att["in_room"]],
        "devices": [(a["name"], a["head_count"]) for a in att["device"]],
        "remote": list(remote.values()),
        "agenda": plan.agenda if plan else "",
        "decks": [d["filename"] + (f" ({d['pages']} pages)" if d["pages"] else "") for d in snap["decks"]],
        "key_messages": snap["key_messages"],
        "actions": snap["actions"],
    }


def _outcome(km: dict) -> str:
    if km["status"] != "closed":
        return "Not put to a decision"
    return OUTCOME_LABELS.get(km["outcome"], km["outcome"])


def _tally_text(km: dict) -> str:
    t = km["tally"]
    parts = []
    for c, label in (("agree", "agree"), ("disagree", "disagree"), ("abstain", "abstain")):
        parts.append(f"{t['total'][c]} {label} ({t['remote'][c]} remote, {t['room'][c]} in the room)")
    return "; ".join(parts)


NUMBERED = "Names are not shown in this room: people are numbered for this meeting."


def markdown(meeting: Meeting) -> str:
    """The minutes thread's text: every reader of the room sees it, so it is made without names."""
    c = content(meeting)
    out = [f"**{c['label']}**", "", f"Minutes of **{c['title']}** ({c['room']}), {c['date']}, {c['time']}.", "",
           f"Chair: {', '.join(c['chairs']) or '—'}", ""]
    if c["pseudonymous"]:
        out += [NUMBERED, ""]
    out += ["## Attendance", ""]
    out.append(f"In the room: {', '.join(c['in_room']) or 'nobody recorded'}")
    for name, heads in c["devices"]:
        out.append(f"{name}: head-count {heads}")
    out += ["", "Remote:"] + ([""] if c["remote"] else [" nobody"])
    for r in c["remote"]:
        spans = ", ".join(f"{_dt(j)[11:16]}–{_dt(lft)[11:16] if lft else 'end'}" for j, lft in r["spans"])
        out.append(f"- {r['name']} ({spans})")
    out += ["", "## Agenda", "", c["agenda"] or "No agenda was set.", "", "## Papers and decks", ""]
    out += [f"- {d}" for d in c["decks"]] or ["None."]
    out += ["", "## Key messages", ""]
    if not c["key_messages"]:
        out.append("None were recorded.")
    for i, km in enumerate(c["key_messages"], 1):
        out.append(f"{i}. **{km['text']}** — **{_outcome(km)}**. {_tally_text(km)}.")
        for comment in km["tally"]["comments"]:
            out.append(f"   - Comment: {comment}")
    out += ["", "## Actions", ""]
    out += [f"- {a['text']}" + (f" ({a['owner']})" if a["owner"] else "") for a in c["actions"]] or ["None."]
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
    para(f"{c['room']} · {c['date']}, {c['time']}")
    para(f"Chair: {', '.join(c['chairs']) or '-'}")
    if c["pseudonymous"]:
        para(NUMBERED)
    head("Attendance")
    para(f"In the room: {', '.join(c['in_room']) or 'nobody recorded'}")
    for name, heads in c["devices"]:
        para(f"{name}: head-count {heads}")
    para("Remote: " + ("; ".join(
        f"{r['name']} ({', '.join(_dt(j)[11:16] + '-' + (_dt(lft)[11:16] if lft else 'end') for j, lft in r['spans'])})"
        for r in c["remote"]) or "nobody"))
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
        for comment in km["tally"]["comments"]:
            para(f"Comment: {comment}")
    head("Actions")
    para("\n".join(f"• {a['text']}" + (f" ({a['owner']})" if a["owner"] else "") for a in c["actions"]) or "None.")
    name = "".join(ch if ch.isalnum() else "-" for ch in c["title"])[:60].strip("-") or "meeting"
    return f"minutes-{name}.pdf", bytes(doc.output())

