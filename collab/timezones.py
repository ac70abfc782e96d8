"""Times as people read them: in their own time zone, with the zone named.

Times are stored as naive UTC (collab/db.py `utcnow`) and stay so; they are turned
into local time only when shown. Whose zone:

1. the account's own choice (`users.time_zone`, set on the account page), else
2. the site's, `COLLAB_TIME_ZONE` (default Europe/London).

A shared document that many people read (the minutes, a meeting's announcement in
its room) uses the site's zone and names it; a page, an e-mail or an invitation
made for one person uses that person's.

Every time shown carries its zone's abbreviation ("10 Jun 2026, 10:00 BST"): the
tz database's name when it has one (GMT, BST, EST, CEST, JST), else the offset
("UTC+05:45"). The browser formats times that arrive live with the same rule
(static/js/dates.js), from the zone the page names on `<body data-time-zone>`,
whatever zone the computer itself is set to.

Local times typed into a form (`parse_local`) follow two documented rules at the
clock changes: a time that does not exist (the hour skipped when the clocks go
forward, e.g. 01:30 on the last Sunday of March in London) is refused with a
message saying so; a time that happens twice (the hour repeated when they go back,
01:30 on the last Sunday of October) means the first of the two (summer time).
"""
from __future__ import annotations

import functools
import json
import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from flask import Flask, current_app, has_app_context, has_request_context
from flask_login import current_user

from collab.errors import Invalid

DEFAULT_ZONE = "Europe/London"
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LIST_SKIP = ("Etc/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/", "posix", "right/")


# -- names --------------------------------------------------------------------------------------

@functools.cache
def available() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def choices() -> tuple[str, ...]:
    """The zones offered in a list: every "Region/City" name (and UTC), without the old aliases."""
    return tuple(sorted({n for n in available() if "/" in n and not n.startswith(_LIST_SKIP)} | {"UTC"}))


def bad_name_message(name: str, what: str = "Time zone") -> str:
    shown = name if len(name) <= 60 else name[:60] + "…"
    return (f"{what} “{shown}” is not a time zone name: use a name from the tz database, such as "
            "Europe/London, Europe/Paris or America/New_York.")


def check(name: object, field: str = "time_zone", what: str = "Time zone") -> str:
    """`name` if it is a zone the tz database knows; otherwise Invalid with a clear message."""
    if not isinstance(name, str) or name.strip() not in available():
        raise Invalid(bad_name_message(str(name).strip() if name is not None else "", what), field)
    return name.strip()


def site_setting(raw: str | None) -> str:
    """COLLAB_TIME_ZONE, checked when the app starts: a bad name stops it with a message."""
    name = (raw or "").strip() or DEFAULT_ZONE
    if name not in available():
        raise ValueError(bad_name_message(name, "COLLAB_TIME_ZONE"))
    return name


# -- whose zone ---------------------------------------------------------------------------------

@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def site_zone_name() -> str:
    if has_app_context():
        return current_app.config.get("TIME_ZONE") or DEFAULT_ZONE
    return DEFAULT_ZONE


def zone_name_for(user: Any = None) -> str:
    """The zone `user` reads times in: their own choice, else the site's."""
    own = getattr(user, "time_zone", None)
    if own and own in available():
        return own
    return site_zone_name()


def current_zone_name() -> str:
    """The zone of the person this request is for (the site's when nobody is signed in)."""
    if has_request_context() and current_user and current_user.is_authenticated:
        return zone_name_for(current_user)
    return site_zone_name()


def _zone(z: str | tzinfo | None) -> tzinfo:
    if z is None:
        return zone(current_zone_name())
    if isinstance(z, str):
        return zone(z)
    return z


# -- from UTC to local --------------------------------------------------------------------------

def to_local(dt: datetime, z: str | tzinfo | None = None) -> datetime:
    """A stored (naive UTC) or aware time, in zone `z` (default: the current reader's)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(_zone(z))


def abbreviation(local: datetime) -> str:
    """The zone's short name at that moment: GMT, BST, EDT, CEST…, else the offset ("UTC+05:45")."""
    name = local.tzname() or ""
    if any(c.isalpha() for c in name):
        return name
    return _offset_name(local.utcoffset() or timedelta(0))


def _offset_name(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h:02d}:{m:02d}"


def fmt(dt: datetime | None, z: str | tzinfo | None = None, style: str = "short") -> str:
    """A time as people read it, in zone `z` (default: the current reader's), with the zone named.

    short: "07 Mar 2025, 14:05 GMT"; long: "Friday 07 March 2025, 14:05 GMT";
    day: "Fri 07 Mar 2025, 14:05 GMT"; date: "07 Mar 2025"; clock: "14:05 GMT".
    """
    if dt is None:
        return ""
    loc = to_local(dt, z)
    ab = abbreviation(loc)
    if style == "short":
        return f"{loc.day:02d} {_MONTHS[loc.month]} {loc.year}, {loc.hour:02d}:{loc.minute:02d} {ab}"
    if style == "long":
        return f"{loc:%A %d %B %Y, %H:%M} {ab}"
    if style == "day":
        return f"{loc:%a %d %b %Y, %H:%M} {ab}"
    if style == "date":
        return f"{loc.day:02d} {_MONTHS[loc.month]} {loc.year}"
    if style == "longdate":
        return f"{loc:%A %d %B %Y}"
    if style == "clock":
        return f"{loc:%H:%M} {ab}"
    raise ValueError(f"unknown time style {style!r}")


def span(start: datetime | None, end: datetime | None, z: str | tzinfo | None = None,
         style: str = "long") -> str:
    """"Tuesday 10 June 2026, 10:00–12:00 BST"; both ends in full when they fall on different
    days or in different zone names (a meeting across a clock change)."""
    if start is None:
        return ""
    if end is None:
        return fmt(start, z, style)
    a, b = to_local(start, z), to_local(end, z)
    if a.date() == b.date() and abbreviation(a) == abbreviation(b):
        head = fmt(start, z, style)
        return f"{head[:-len(abbreviation(a)) - 1]}–{b:%H:%M} {abbreviation(b)}"
    return f"{fmt(start, z, style)} – {fmt(end, z, style)}"


def stamp(z: str | tzinfo | None = None):
    """A fast short formatter for one zone (a thread page formats hundreds of post times)."""
    tz = _zone(z)

    def one(dt: datetime) -> str:
        loc = dt.replace(tzinfo=UTC).astimezone(tz) if dt.tzinfo is None else dt.astimezone(tz)
        return f"{loc.day:02d} {_MONTHS[loc.month]} {loc.year}, {loc.hour:02d}:{loc.minute:02d} {abbreviation(loc)}"
    return one


def iso_utc(dt: datetime | None) -> str:
    """The machine value of a `<time datetime>`: UTC, "2026-06-10T09:00:00Z"."""
    if dt is None:
        return ""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.isoformat(timespec="seconds") + "Z"


def names_by_offset(z: str | None = None) -> dict[str, str]:
    """For the browser: the zone's abbreviation for each UTC offset (in minutes) it used in the
    five years either side of now, so static/js/dates.js names the zone as the server does."""
    return _names_by_offset(z or current_zone_name(), datetime.now(UTC).date().isoformat())


@functools.lru_cache(maxsize=256)
def _names_by_offset(name: str, today: str) -> dict[str, str]:
    tz = zone(name)
    now = datetime.fromisoformat(today).replace(tzinfo=UTC)
    out: dict[str, str] = {}
    t = now - timedelta(days=5 * 366)
    while t < now + timedelta(days=5 * 366):
        loc = t.astimezone(tz)
        out.setdefault(str(int((loc.utcoffset() or timedelta(0)).total_seconds() // 60)), abbreviation(loc))
        t += timedelta(days=14)
    return out


# -- from local to UTC --------------------------------------------------------------------------

def parse_local(value: object, z: str | tzinfo, field: str, label: str = "Time") -> datetime | None:
    """A local date and time typed into a form ("2026-06-10T10:00", as <input type=datetime-local>
    sends it) in zone `z`, as naive UTC for storage; None when empty. A time the clocks skip is
    refused with a message; a time they repeat is the first of the two (see the module docstring)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{label}: enter a date and time, like 2026-06-10T10:00.", field)
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{label}: enter a date and time, like 2026-06-10T10:00.", field) from None
    if naive.tzinfo is not None:   # an explicit offset or Z says which moment it is: honour it
        return naive.astimezone(UTC).replace(tzinfo=None)
    tz = _zone(z)
    local = naive.replace(tzinfo=tz, fold=0)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != naive:
        name = getattr(tz, "key", str(tz))
        raise Invalid(f"{label}: {naive:%H:%M} on {naive.day} {naive:%B %Y} does not exist in {name}, because the "
                      f"clocks go forward that night and skip it. Choose another time, such as "
                      f"{utc.astimezone(tz):%H:%M}.", field)
    return utc.replace(tzinfo=None)


def local_input(dt: datetime | None, z: str | tzinfo | None = None) -> str:
    """The value of a datetime-local input showing stored `dt` in zone `z`."""
    return to_local(dt, z).strftime("%Y-%m-%dT%H:%M") if dt else ""


# -- in templates -------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Check the site's zone, and give templates `|localtime`, `|localspan` and the page's zone."""
    app.config["TIME_ZONE"] = site_setting(app.config.get("TIME_ZONE"))
    app.add_template_filter(fmt, "localtime")
    app.add_template_filter(iso_utc, "isoutc")
    app.add_template_global(span, "localspan")
    app.add_template_global(current_zone_name, "time_zone_name")
    app.add_template_global(lambda: json.dumps(names_by_offset(), separators=(",", ":")), "time_zone_names")
    app.add_template_global(site_zone_name, "site_time_zone_name")
    app.add_template_global(lambda: datetime.now(UTC), "utc_now")
