"""Reading the audit log (auth/audit.py) for administrators: filters, pages and
a CSV export that is itself audited and safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from auth import audit
from auth.audit import ACTIONS, AuditEvent
from collab import validate
from collab.errors import Invalid
from collab.extensions import db

PER_PAGE = 50
CSV_COLUMNS = ("id", "at", "action", "description", "actor_id", "actor", "target_type", "target_id", "room_id",
               "ip", "user_agent", "detail")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Filters:
    action: str = ""
    actor: str = ""
    room: int | None = None
    since: date | None = None
    until: date | None = None

    def as_args(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items() if v not in (None, "")}


def _date(raw: str, name: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{label} must be a date like 2025-03-31.", name) from None


def parse_filters(args: Mapping[str, str]) -> Filters:
    action = (args.get("action") or "").strip()
    if action and (len(action) > 50 or not all(c.isalnum() or c in "._" for c in action)):
        raise Invalid("Choose an action from the list.", "action")
    actor = (args.get("actor") or "").strip()[:254]
    room_raw = (args.get("room") or "").strip()
    if room_raw and (not validate.digits(room_raw) or len(room_raw) > 12):
        raise Invalid("Room must be a room number.", "room")
    f = Filters(action=action, actor=actor, room=int(room_raw) if room_raw else None,
                since=_date((args.get("since") or "").strip(), "since", "From"),
                until=_date((args.get("until") or "").strip(), "until", "To"))
    if f.since and f.until and f.until < f.since:
        raise Invalid("The end date is before the start date.", "until")
    return f


def _select(f: Filters):
    q = select(AuditEvent)
    if f.action:
        q = q.where(AuditEvent.action == f.action)
    if f.actor:
        if validate.digits(f.actor):
            q = q.where(AuditEvent.actor_id == int(f.actor))
        else:
            like = "%" + f.actor.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            q = q.where(func.lower(AuditEvent.actor_name).like(like, escape="\\"))
    if f.room:
        q = q.where(AuditEvent.room_id == f.room)
    if f.since:
        q = q.where(AuditEvent.at >= datetime.combine(f.since, datetime.min.time()))
    if f.until:  # the whole of the last day
        q = q.where(AuditEvent.at < datetime.combine(f.until + timedelta(days=1), datetime.min.time()))
    return q


@dataclass
class Page:
    events: list[AuditEvent]
    number: int
    pages: int
    total: int


def page_of(f: Filters, page_raw: str | None) -> Page:
    q = _select(f)
    total = db.session.scalar(select(func.count()).select_from(q.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    number = int(page_raw) if page_raw and validate.digits(page_raw) and len(page_raw) < 9 else 1
    number = min(max(1, number), pages)
    events = list(db.session.scalars(q.order_by(AuditEvent.id.desc()).offset((number - 1) * PER_PAGE)
                                     .limit(PER_PAGE)))
    return Page(events=events, number=number, pages=pages, total=total)


def action_choices() -> dict[str, str]:
    """Every known action, plus any other action name found in the log."""
    seen = db.session.scalars(select(AuditEvent.action).distinct())
    return dict(ACTIONS, **{a: a for a in seen if a not in ACTIONS})


def describe(event: AuditEvent) -> str:
    return ACTIONS.get(event.action, event.action)


def detail_text(event: AuditEvent) -> str:
    try:
        d = json.loads(event.detail or "{}")
    except ValueError:
        return event.detail or ""
    return ", ".join(f"{k}: {v}" for k, v in d.items()) if isinstance(d, dict) else str(d)


def safe_cell(value: Any) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def record_export(actor, f: Filters) -> None:
    count = db.session.scalar(select(func.count()).select_from(_select(f).subquery())) or 0
    audit.record_now("audit.exported", actor=actor, target_type="audit_log",
                     detail={"filters": f.as_args(), "rows": count})


def csv_rows(f: Filters) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)

    def flush() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    writer.writerow(CSV_COLUMNS)
    yield flush()
    q = _select(f).order_by(AuditEvent.id).execution_options(yield_per=500)
    for ev in db.session.scalars(q):
        writer.writerow([safe_cell(v) for v in (
            ev.id, ev.at.isoformat(timespec="seconds") + "Z", ev.action, describe(ev), ev.actor_id, ev.actor_name,
            ev.target_type, ev.target_id, ev.room_id, ev.ip, ev.user_agent, ev.detail)])
        if buf.tell() > 64_000:
            yield flush()
    yield flush()
