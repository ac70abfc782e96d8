"""Scheduling a meeting in a room: title, agenda (Markdown), start and end, chairs
and invitees; editing and cancelling it; the `.ics` invitation; "My meetings";
and the reminder before it starts.

Invitees hear about a meeting through the room's own notifications: scheduling
starts an announcement thread in the room that @mentions the invitees (or, for
"everyone in the room", notifies everyone following it), and each change,
cancellation and reminder is a reply there that mentions them again. So they
get the bell, and an e-mail when SMTP is set and they are not online
(rooms/notify_delivery.py), and the discussion of the pre-reads has a home.

In a non-attributed room nothing here names anyone to the room: the announcement
and notices say how many chairs and invitees there are and notify the invitees
without @naming them; the JSON shows "Participant n" of the meeting
(rooms/meetings/pseudonyms.py) unless the reader sees names. Chairs and invitees
are chosen from the member list the scheduler is shown (rooms.services.room_members:
in a non-attributed room only moderators see the others), and any other id gets
the same answer whether or not it is an account or a member, so scheduling tells
nobody who belongs to a room.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
from flask import current_app, has_request_context, url_for
from sqlalchemy import select, update

from auth.models import User
from collab import timezones, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import notify_email, policy
from rooms import services as room_services
from rooms import posts as room_posts
from rooms.markdown import render
from rooms.meetings import access, pseudonyms, state
from rooms.meetings import services as meetings
from rooms.meetings.models import Meeting, MeetingPerson, MeetingPlan
from rooms.models import Membership, Post, Room, Thread
from rooms.serialize import iso

log = logging.getLogger(__name__)

DEFAULT_LENGTH = timedelta(hours=2)
MAX_LENGTH = timedelta(hours=12)
REMINDER_BEFORE = timedelta(minutes=30)
EARLY_JOIN = timedelta(minutes=30)     # a scheduled meeting is listed "in progress" this long before it starts
MAX_AGENDA = 20_000
MAX_PEOPLE = 500


# -- reading ------------------------------------------------------------------------

def invitees(meeting: Meeting) -> list[User]:
    """Everyone invited: the chosen people, or every member of the room."""
    plan = access.plan_for(meeting)
    if plan is None or plan.all_members:
        return [m.user for m in room_services.room_members(None, meeting.room) if m.user.active]
    chosen = {u.id: u for u in access.people(meeting.id, "invitee")}
    for u in access.people(meeting.id, "chair"):
        chosen.setdefault(u.id, u)
    return sorted(chosen.values(), key=lambda u: u.name.casefold())


def is_invited(user: User, meeting: Meeting) -> bool:
    return any(u.id == user.id for u in invitees(meeting))


def status(meeting: Meeting, plan: MeetingPlan | None = None, now: datetime | None = None) -> str:
    plan = plan if plan is not None else access.plan_for(meeting)
    now = now or utcnow()
    if plan is not None and plan.cancelled_at:
        return "cancelled"
    if meeting.ended_at:
        return "ended"
    if plan is not None and plan.starts_at and plan.starts_at - EARLY_JOIN > now:
        return "scheduled"
    return "open"


def schedule_view(actor: User | None, meeting: Meeting, what: str = "api") -> dict[str, Any]:
    """schedule_dict as `actor` may see it (an audited reveal for a moderator of a non-attributed room)."""
    return schedule_dict(meeting, pseudonyms.names_for(actor, meeting, what))


def schedule_dict(meeting: Meeting, names: bool = False) -> dict[str, Any]:
    plan = access.plan_for(meeting)
    base = meetings.meeting_dict(meeting, names)
    base.update({
        "status": status(meeting, plan),
        "agenda": plan.agenda if plan else "",
        "agenda_html": render(plan.agenda) if plan and plan.agenda else "",
        "starts_at": iso(plan.starts_at) if plan else iso(meeting.created_at),
        "ends_at": iso(plan.ends_at) if plan else None,
        "cancelled_at": iso(plan.cancelled_at) if plan else None,
        "all_members": plan.all_members if plan else True,
        "chairs": [pseudonyms.person(meeting, u, names) for u in access.people(meeting.id, "chair")],
        "invitees": None if (plan is None or plan.all_members)
        else [pseudonyms.person(meeting, u, names) for u in access.people(meeting.id, "invitee")],
        "announcement_thread_id": plan.announce_thread_id if plan else None,
        "minutes_thread_id": plan.minutes_thread_id if plan else None,
    })
    return base


def room_meetings(actor: User, room: Room, *, limit: int = 10) -> list[tuple[Meeting, MeetingPlan]]:
    """Upcoming and recent scheduled meetings of a room (the room page lists them)."""
    if not policy.can_read_room(actor, room):
        return []
    since = utcnow() - timedelta(days=14)
    rows = db.session.execute(
        select(Meeting, MeetingPlan).join(MeetingPlan, MeetingPlan.meeting_id == Meeting.id)
        .where(Meeting.room_id == room.id, MeetingPlan.starts_at >= since)
        .order_by(MeetingPlan.starts_at).limit(limit)).all()
    return [(m, p) for m, p in rows]


def my_meetings(actor: User) -> tuple[list[tuple[Meeting, MeetingPlan]], list[tuple[Meeting, MeetingPlan]]]:
    """(upcoming, past) scheduled meetings the account is invited to or chairs."""
    rooms = policy.readable_room_ids(actor)
    since = utcnow() - timedelta(days=90)
    rows = db.session.execute(
        select(Meeting, MeetingPlan).join(MeetingPlan, MeetingPlan.meeting_id == Meeting.id)
        .where(Meeting.room_id.in_(rooms), MeetingPlan.starts_at >= since)
        .order_by(MeetingPlan.starts_at)).all()
    mine_ids = set(db.session.scalars(select(MeetingPerson.meeting_id).where(MeetingPerson.user_id == actor.id)))
    member_rooms = set(db.session.scalars(select(Membership.room_id).where(Membership.user_id == actor.id)))
    now = utcnow()
    upcoming, past = [], []
    for m, p in rows:
        if not (m.id in mine_ids or (p.all_members and m.room_id in member_rooms)):
            continue
        done = p.cancelled_at or m.ended_at or (p.ends_at and p.ends_at < now)
        (past if done else upcoming).append((m, p))
    past.reverse()
    return upcoming, past


# -- writing ------------------------------------------------------------------------------

def _when(value: object, field: str, label: str, zone: str | None) -> datetime:
    """A start or end as stored (naive UTC). With `zone` (the scheduling form), a time without an offset
    is local time there (collab/timezones.py: a time the clocks skip is refused, one they repeat is the
    first); without (the API), it is UTC, as ISO 8601 says for a time with Z or an offset."""
    if isinstance(value, datetime):
        return value
    if zone is not None:
        return timezones.parse_local(value, zone, field, label)
    return validate.iso_datetime(value, field)


def _times(starts_at: object, ends_at: object, *, default_start: datetime | None = None,
           zone: str | None = None) -> tuple[datetime, datetime]:
    if starts_at in (None, ""):
        if default_start is None:
            raise Invalid("Choose when the meeting starts.", "starts_at")
        start = default_start
    else:
        start = _when(starts_at, "starts_at", "Starts", zone)
    if ends_at in (None, ""):
        end = start + DEFAULT_LENGTH
    else:
        end = _when(ends_at, "ends_at", "Ends", zone)
    if end <= start:
        raise Invalid("The meeting must end after it starts.", "ends_at")
    if end - start > MAX_LENGTH:
        raise Invalid("A meeting may last at most 12 hours.", "ends_at")
    return start, end


CHOOSE_FROM_LIST = ("Choose chairs and invitees from this room's member list (in a room where names are not "
                    "shown, only its moderators can choose people other than themselves).")


def choosable(actor: User, room: Room) -> dict[int, User]:
    """Whom `actor` may name as chair or invitee: the active members they are shown
    (rooms.services.room_members, which asks rooms.policy.sees_names), and themselves."""
    out = {m.user_id: m.user for m in room_services.room_members(actor, room) if m.user.active}
    out.setdefault(actor.id, actor)
    return out


def _user_ids(value: object, field: str, room: Room, actor: User) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, int)):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_PEOPLE:
        raise Invalid(f"{field} must be a list of at most {MAX_PEOPLE} account ids.", field)
    allowed = choosable(actor, room)
    ids: list[int] = []
    for v in value:
        uid = validate.int_id(v, field)
        # One answer for "no such account", "not a member" and "a member you are not shown": no oracle.
        if uid not in allowed or not policy.can_read_room(allowed[uid], room):
            raise Invalid(CHOOSE_FROM_LIST, field)
        if uid not in ids:
            ids.append(uid)
    return ids


MENTION_LIMIT = 300   # invitees named (so notified, and e-mailed when offline) in each notice


def _mentions(users: Iterable[User]) -> str:
    return ", ".join(f"@{u.name}" for u in users)


def _invitee_line(meeting: Meeting, plan: MeetingPlan, exclude: int | None) -> str:
    """The invitees as @mentions, so every one of them is notified (and e-mailed when SMTP is set
    and they are not online), whether the meeting is for everyone in the room or for some. In a
    non-attributed room only how many (they are notified by `_notify_ids` instead)."""
    people = [u for u in invitees(meeting) if u.id != exclude]
    if not people:
        return ""
    if pseudonyms.applies(meeting):
        return ("Invited: everyone in this room." if plan.all_members
                else f"Invited: {len(people)} {'person' if len(people) == 1 else 'people'} (names are not shown "
                     "in this room; each invitee is notified).")
    if len(people) > MENTION_LIMIT:
        return f"Invited: everyone in this room ({len(people)} people)."
    head = "Invited: everyone in this room: " if plan.all_members else "Invited: "
    return head + _mentions(people)


def _when_text(start: datetime | None, end: datetime | None = None) -> str:
    """A notice in the room is read by everyone there: its times are in the site's zone, named
    ("Tuesday 10 June 2026, 10:00–12:00 BST, Europe/London time"). Each person's own pages,
    e-mails and .ics show their own zone."""
    if start is None:
        return "—"
    site = timezones.site_zone_name()
    return f"{timezones.span(start, end, site)}, {site} time"


def _path(endpoint: str, **kw: Any) -> str:
    if has_request_context():
        return url_for(endpoint, **kw)
    return {"meetings.meeting": "/meetings/{meeting_id}", "meetings.ics": "/meetings/{meeting_id}.ics"}[endpoint] \
        .format(**kw)


def _notify_ids(meeting: Meeting, exclude: int | None) -> list[int]:
    """In a non-attributed room: the invitees to notify without naming them in the text."""
    if not pseudonyms.applies(meeting):
        return []
    return [u.id for u in invitees(meeting) if u.id != exclude][:MENTION_LIMIT]


def _chair_line(meeting: Meeting) -> str:
    chairs = access.people(meeting.id, "chair")
    if pseudonyms.applies(meeting):
        n = len(chairs) or 1
        return f"Chair: {n} {'person' if n == 1 else 'people'} (names are not shown in this room)."
    return f"Chair: {', '.join(u.name for u in chairs) or (meeting.created_by.name if meeting.created_by else '—')}"


def _announcement(meeting: Meeting, plan: MeetingPlan) -> str:
    who = _invitee_line(meeting, plan, meeting.created_by_id) or "Invited: everyone in this room"
    lines = [f"**{meeting.title}** is scheduled for {_when_text(plan.starts_at, plan.ends_at)}.", "",
             _chair_line(meeting), "", who, "",
             (f"[Open the meeting page]({_path('meetings.meeting', meeting_id=meeting.id)}) · "
              f"[Add to your calendar (.ics)]({_path('meetings.ics', meeting_id=meeting.id)})")]
    if plan.agenda:
        lines += ["", "Agenda:", "", plan.agenda]
    return "\n".join(lines)


def _notice(actor: User, meeting: Meeting, plan: MeetingPlan, text: str) -> bool:
    """A reply in the announcement thread that mentions the invitees (so they are notified)."""
    thread_id = plan.announce_thread_id
    if thread_id is None:
        return False
    line = _invitee_line(meeting, plan, actor.id)
    who = "\n\n" + line if line else ""
    try:
        room_posts.create_post(actor, thread_id, body=text + who, notify=_notify_ids(meeting, actor.id))
    except Exception:
        log.exception("could not post the meeting notice")
        db.session.rollback()
        return False
    return True


def _reminder_author(meeting: Meeting) -> User | None:
    """Who the reminder is posted as: the first chair still able to post in the room, else the organiser."""
    for u in [*access.people(meeting.id, "chair"), meeting.created_by]:
        if u is not None and u.active and policy.can_post(u, meeting.room):
            return u
    return None


def schedule_meeting(actor: User, room_id: object, *, title: object, agenda: object = "", starts_at: object = None,
                     ends_at: object = None, chairs: object = None, invitees_: object = None,
                     time_zone: str | None = None) -> Meeting:
    """Schedule a meeting. `invitees_` None or empty means everyone in the room. `time_zone`: the
    scheduler's zone, in which times without an offset are meant (the form); None: such times are UTC."""
    room = room_services.get_room(actor, room_id)
    if not policy.can_post(actor, room):
        raise Forbidden("Only people who may post in this room can schedule a meeting in it.")
    title_v = validate.text(title, "title", max_len=200)
    agenda_v = validate.text(agenda or "", "agenda", max_len=MAX_AGENDA, required=False, multiline=True) or ""
    start, end = _times(starts_at, ends_at, zone=time_zone)
    chair_v = _user_ids(chairs, "chairs", room, actor) or [actor.id]
    for uid in chair_v:
        u = db.session.get(User, uid)
        if not policy.can_post(u, room):
            raise Invalid("A chair must be able to post in this room.", "chairs")
    invite_v = _user_ids(invitees_, "invitees", room, actor)
    url = meetings.pick_worker()
    db.begin_write()
    meeting = Meeting(room_id=room.id, title=title_v, created_by_id=actor.id, media_url=url)
    db.session.add(meeting)
    db.session.flush()
    plan = MeetingPlan(meeting_id=meeting.id, agenda=agenda_v, starts_at=start, ends_at=end,
                       all_members=not invite_v, locked=False, page=1, version=0, ics_sequence=0,
                       updated_at=utcnow())
    db.session.add(plan)
    for uid in chair_v:
        db.session.add(MeetingPerson(meeting_id=meeting.id, user_id=uid, role="chair"))
    for uid in invite_v:
        db.session.add(MeetingPerson(meeting_id=meeting.id, user_id=uid, role="invitee"))
    db.session.flush()
    pseudonyms.assign(meeting, [*chair_v, *invite_v, actor.id])
    room_services.record_event(room.id, "meeting.scheduled", {"meeting": meetings.meeting_dict(meeting)})
    db.session.commit()
    _announce(actor, meeting)
    return meeting


def _announce(actor: User, meeting: Meeting) -> None:
    """The meeting's announcement thread, linked to the meeting in the thread's own write: the invitees'
    e-mails go out after that commit, and each finds the meeting's time through the link (_email_time).
    (Linked in a second write, an e-mail sent in between went without its time.)"""
    plan = access.plan_for(meeting)

    def link(thread: Thread, _post: Post) -> None:
        db.session.get(MeetingPlan, meeting.id).announce_thread_id = thread.id

    try:
        room_posts.create_thread(actor, meeting.room_id, title=f"Meeting: {meeting.title}"[:200],
                                 body=_announcement(meeting, plan), notify=_notify_ids(meeting, actor.id),
                                 within=link)
    except Exception:
        log.exception("could not announce the meeting")


def get_scheduled(actor: User, meeting_id: object) -> tuple[Meeting, MeetingPlan]:
    meeting = access.get_meeting(actor, meeting_id)
    plan = access.plan_for(meeting)
    if plan is None:
        raise NotFound("This meeting was started on the spot and has no schedule.")
    return meeting, plan


def edit_meeting(actor: User, meeting_id: object, *, title: object = None, agenda: object = None,
                 starts_at: object = None, ends_at: object = None, time_zone: str | None = None) -> Meeting:
    """Change a meeting; times as for schedule_meeting."""
    meeting = access.get_meeting(actor, meeting_id)
    access.check_writable(actor, meeting)
    if not access.is_chair(actor, meeting):
        raise Forbidden("Only the chair can change this meeting.")
    if meeting.ended:
        raise Forbidden("This meeting has ended or was cancelled.")
    plan = access.plan_for(meeting)
    title_v = validate.text(title, "title", max_len=200) if title is not None else meeting.title
    agenda_v = (validate.text(agenda, "agenda", max_len=MAX_AGENDA, required=False, multiline=True) or ""
                if agenda is not None else (plan.agenda if plan else ""))
    start0 = plan.starts_at if plan and plan.starts_at else meeting.created_at
    start, end = _times(starts_at if starts_at not in (None, "") else start0,
                        ends_at if ends_at not in (None, "") else (plan.ends_at if plan and plan.ends_at and
                                                                   starts_at in (None, "") else None),
                        zone=time_zone)
    db.begin_write()
    plan = state.ensure_plan(meeting)
    moved = plan.starts_at != start or plan.ends_at != end
    meeting.title, plan.agenda, plan.starts_at, plan.ends_at = title_v, agenda_v, start, end
    plan.ics_sequence += 1
    if moved:
        plan.reminded_at = None
    plan.updated_at = utcnow()
    room_services.record_event(meeting.room_id, "meeting.updated", {"meeting": meetings.meeting_dict(meeting)})
    db.session.commit()
    _notice(actor, meeting, plan, f"**Changed**: “{meeting.title}” is now {_when_text(start, end)}. "
                                  f"[Updated invitation (.ics)]({_path('meetings.ics', meeting_id=meeting.id)})")
    return meeting


def cancel_meeting(actor: User, meeting_id: object) -> Meeting:
    """Call the meeting off: it ends (services.end_meeting, the one rule for who may) and the
    invitees are told in the announcement thread."""
    meeting = meetings.end_meeting(actor, meeting_id, cancel=True)
    plan = access.plan_for(meeting)   # made by end_meeting
    _notice(actor, meeting, plan, f"**Cancelled**: “{meeting.title}” on {_when_text(plan.starts_at)} will not take place.")
    return meeting


# -- calendar ------------------------------------------------------------------------------

def ics(actor: User, meeting_id: object) -> bytes:
    meeting = access.get_meeting(actor, meeting_id)
    plan = access.plan_for(meeting)
    start = plan.starts_at if plan and plan.starts_at else meeting.created_at
    end = plan.ends_at if plan and plan.ends_at else start + DEFAULT_LENGTH
    base = current_app.config.get("PUBLIC_URL", "").rstrip("/")
    host = base.split("//", 1)[-1].split("/", 1)[0] or "collab"
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Collab//Meetings//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    ev = icalendar.Event()
    ev.add("uid", f"meeting-{meeting.id}@{host}")
    ev.add("dtstamp", _aware(plan.updated_at if plan else meeting.created_at))
    ev.add("dtstart", _aware(start))
    ev.add("dtend", _aware(end))
    ev.add("summary", meeting.title)
    link = f"{base}/meetings/{meeting.id}"
    # DTSTART/DTEND are UTC (…Z), which every calendar shows in its own zone; the text is for a person: the
    # time in the zone of whoever downloads it, named.
    zone = timezones.zone_name_for(actor)
    when = f"When: {timezones.span(start, end, zone)} ({zone} time)\n\n"
    ev.add("description", when + ((plan.agenda + "\n\n") if plan and plan.agenda else "") + f"Join: {link}")
    ev.add("location", f"{meeting.room.name} (Collab) {link}")
    ev.add("url", link)
    ev.add("sequence", plan.ics_sequence if plan else 0)
    ev.add("status", "CANCELLED" if plan and plan.cancelled_at else "CONFIRMED")
    cal.add_component(ev)
    return cal.to_ical()


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC)


@notify_email.on_email
def _email_time(post: Post, user: User) -> str:
    """An e-mail about a post in a meeting's announcement thread (the invitation, a change, the reminder,
    the cancellation) gives the meeting's time in the recipient's own zone."""
    plan = db.session.scalar(select(MeetingPlan).where(MeetingPlan.announce_thread_id == post.thread_id))
    if plan is None or plan.starts_at is None:
        return ""
    zone = timezones.zone_name_for(user)
    return (f"When: {timezones.span(plan.starts_at, plan.ends_at, zone)} (your time zone, {zone})"
            + (" — cancelled" if plan.cancelled_at else ""))


# -- reminders -------------------------------------------------------------------------------

def send_due_reminders(now: datetime | None = None) -> int:
    """Remind the invitees of meetings starting within REMINDER_BEFORE. Each meeting is
    claimed with one conditional UPDATE, so several processes send it once."""
    now = now or utcnow()
    due = list(db.session.scalars(select(MeetingPlan.meeting_id).where(
        MeetingPlan.reminded_at.is_(None), MeetingPlan.cancelled_at.is_(None),
        MeetingPlan.starts_at > now, MeetingPlan.starts_at <= now + REMINDER_BEFORE)))
    db.session.rollback()
    sent = 0
    for mid in due:
        db.begin_write()
        claimed = db.session.execute(update(MeetingPlan).where(
            MeetingPlan.meeting_id == mid, MeetingPlan.reminded_at.is_(None)).values(reminded_at=now)).rowcount
        db.session.commit()
        if not claimed:
            continue
        meeting = db.session.get(Meeting, mid)
        plan = db.session.get(MeetingPlan, mid)
        author = _reminder_author(meeting) if meeting else None
        if meeting is None or meeting.ended or author is None or plan.announce_thread_id is None:
            continue
        minutes = max(1, int((plan.starts_at - now).total_seconds() // 60))
        if _notice(author, meeting, plan, f"**Reminder**: “{meeting.title}” starts in {minutes} minutes "
                                          f"({_when_text(plan.starts_at)}). "
                                          f"[Join]({_path('meetings.meeting', meeting_id=mid)})"):
            sent += 1
        else:   # not sent (the thread is gone, or the database failed): a later run tries again
            db.begin_write()
            db.session.execute(update(MeetingPlan).where(MeetingPlan.meeting_id == mid,
                                                         MeetingPlan.reminded_at == now).values(reminded_at=None))
            db.session.commit()
    return sent
