"""Scheduling a meeting (issue 6): the announcement, invitees notified and e-mailed, edits,
cancellation, reminders (once, by a chair who can still post), the pages, the API and the `.ics`."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from collab import tasks
from rooms.meetings import access, schedule
from rooms.models import Post, Thread
from tests.conftest import bearer
from tests.live_support import login_client
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    settle_live,
    setup_meeting,
)

# -- scheduling ---------------------------------------------------------------------------------------------

def test_schedule_defaults_two_hours_announces_and_gives_ics(app, make):
    chair, ann, _bob, room, meeting = setup_meeting(make)
    plan = access.plan_for(meeting)
    assert (plan.ends_at - plan.starts_at).total_seconds() == 7200
    assert access.is_chair(chair, meeting) and not access.is_chair(ann, meeting)
    thread = db.session.get(Thread, plan.announce_thread_id)
    assert thread.room_id == room.id and "IAG plenary" in thread.title
    import icalendar

    cal = icalendar.Calendar.from_ical(schedule.ics(ann, meeting.id))
    ev = cal.walk("VEVENT")[0]
    assert str(ev["summary"]) == "IAG plenary" and ev.decoded("dtstart").hour == 10
    outsider = make.user()
    with pytest.raises(NotFound):
        schedule.ics(outsider, meeting.id)
    upcoming, _ = schedule.my_meetings(ann)
    assert [m.id for m, _ in upcoming] == [meeting.id]


def test_invitee_subset_are_mentioned_and_notified_edit_and_cancel_notify(app, make):
    from rooms.notifications import Notification

    chair, ann, bob, room, _meeting = setup_meeting(make, invitees_=None)
    m2 = schedule.schedule_meeting(chair, room.id, title="Small group", starts_at="2030-02-01T09:00:00Z",
                                   invitees_=[ann.id])
    assert {u.id for u in schedule.invitees(m2)} == {ann.id, chair.id}
    n_ann = db.session.scalar(select(Notification).where(Notification.user_id == ann.id,
                                                         Notification.kind == "mention"))
    assert n_ann is not None
    assert schedule.my_meetings(bob)[0] and m2.id not in [m.id for m, _ in schedule.my_meetings(bob)[0]]
    schedule.edit_meeting(chair, m2.id, starts_at="2030-02-01T11:00:00Z")
    plan = access.plan_for(m2)
    assert plan.starts_at.hour == 11 and plan.ends_at.hour == 13 and plan.ics_sequence == 1
    with pytest.raises(Forbidden):
        schedule.edit_meeting(ann, m2.id, title="Mine now")
    schedule.cancel_meeting(chair, m2.id)
    bodies = [p.body for p in db.session.scalars(select(Post).where(Post.thread_id == plan.announce_thread_id))]
    assert any("Changed" in b for b in bodies) and any("Cancelled" in b for b in bodies)
    from sqlalchemy import func

    assert db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == ann.id, Notification.kind == "mention")) >= 3
    assert b"STATUS:CANCELLED" in schedule.ics(ann, m2.id)


def test_bad_times_are_refused(app, make):
    chair, *_ , room, _m = setup_meeting(make)
    with pytest.raises(Invalid) as e:
        schedule.schedule_meeting(chair, room.id, title="x", starts_at="tomorrow")
    assert e.value.field == "starts_at"
    with pytest.raises(Invalid):
        schedule.schedule_meeting(chair, room.id, title="x", starts_at="2030-01-01T10:00:00Z",
                                  ends_at="2030-01-01T09:00:00Z")


def test_reminder_is_sent_once(app, make):
    from datetime import timedelta

    from collab.db import utcnow

    chair, ann, _bob, room, _ = setup_meeting(make)
    soon = (utcnow() + timedelta(minutes=20)).isoformat()
    m = schedule.schedule_meeting(chair, room.id, title="Soon", starts_at=soon, invitees_=[ann.id])
    assert schedule.send_due_reminders() == 1
    assert schedule.send_due_reminders() == 0
    bodies = [p.body for p in db.session.scalars(select(Post).where(
        Post.thread_id == access.plan_for(m).announce_thread_id))]
    assert any("Reminder" in b and "@Ann Able" in b for b in bodies)


def test_reminder_through_the_cron_command_once_only_and_never_for_cancelled_or_far_meetings(app, make, runner):
    from datetime import timedelta

    from collab.db import utcnow
    from rooms.notifications import Notification

    chair, ann, bob, room, far = setup_meeting(make)      # everyone in the room; starts in 2030
    soon = schedule.schedule_meeting(chair, room.id, title="Soon",
                                     starts_at=(utcnow() + timedelta(minutes=25)).isoformat())
    off = schedule.schedule_meeting(chair, room.id, title="Off",
                                    starts_at=(utcnow() + timedelta(minutes=10)).isoformat())
    schedule.cancel_meeting(chair, off.id)

    def reminders(m):
        return [p.body for p in db.session.scalars(select(Post).where(
            Post.thread_id == access.plan_for(m).announce_thread_id)) if "**Reminder**" in p.body]

    def notes(user, m):
        return db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.thread_id == access.plan_for(m).announce_thread_id))

    from sqlalchemy import func

    before = notes(ann, soon), notes(bob, soon)
    r = runner.invoke(args=["meetings", "remind"])
    assert r.exit_code == 0 and r.output.strip() == "Sent 1 reminder.", r.output
    assert runner.invoke(args=["meetings", "remind"]).output.strip() == "Sent 0 reminders."
    assert schedule.send_due_reminders() == 0
    assert len(reminders(soon)) == 1 and reminders(far) == [] and reminders(off) == []
    assert "@Ann Able" in reminders(soon)[0] and "@Bob Baker" in reminders(soon)[0]
    assert (notes(ann, soon), notes(bob, soon)) == (before[0] + 1, before[1] + 1)
    # moving the meeting makes a new reminder due (for the new time), once
    schedule.edit_meeting(chair, soon.id, starts_at=(utcnow() + timedelta(minutes=15)).isoformat())
    assert schedule.send_due_reminders() == 1 and schedule.send_due_reminders() == 0
    assert len(reminders(soon)) == 2


def test_reminder_is_posted_by_a_chair_who_can_still_post(app, make):
    from datetime import timedelta

    from collab.db import utcnow

    organiser, deputy, ann = make.user(name="Olive Organiser"), make.user(name="Dee Deputy"), make.user(name="Ann Able")
    room = make.room(organiser, members=[deputy, ann])
    m = schedule.schedule_meeting(organiser, room.id, title="Soon", chairs=[deputy.id],
                                  starts_at=(utcnow() + timedelta(minutes=5)).isoformat())
    db.begin_write()
    db.session.get(type(organiser), organiser.id).active = False     # the organiser has left the force
    db.session.commit()
    assert schedule.send_due_reminders() == 1
    post = db.session.scalars(select(Post).where(Post.thread_id == access.plan_for(m).announce_thread_id)
                              .order_by(Post.id.desc())).first()
    assert "**Reminder**" in post.body and post.author_id == deputy.id and "@Ann Able" in post.body


class TestEmail:
    """Invitees offline are e-mailed: the invitation, a change, the reminder and a cancellation."""

    @pytest.fixture
    def smtp(self):
        from tests.live_support import SmtpSink

        sink = SmtpSink()
        yield sink
        sink.stop()

    @pytest.fixture
    def app_config(self, smtp):
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, "LIVE_PRESENCE_DELAY": 0.02}

    def test_schedule_edit_remind_cancel_are_emailed(self, app, make, smtp):
        from datetime import timedelta

        from collab.db import utcnow

        chair = make.user(name="Chair Person")
        ann = make.user(name="Ann Able", email="ann.able@example.org")
        bob = make.user(name="Bob Baker", email="bob.baker@example.org")
        room = make.room(chair, members=[ann, bob])
        m = schedule.schedule_meeting(chair, room.id, title="IAG plenary",
                                      starts_at=(utcnow() + timedelta(minutes=20)).isoformat())
        tasks.settle(app)
        smtp.wait(2)
        schedule.edit_meeting(chair, m.id, agenda="1. Welcome")
        tasks.settle(app)
        smtp.wait(4)
        assert schedule.send_due_reminders() == 1
        tasks.settle(app)
        smtp.wait(6)
        schedule.cancel_meeting(chair, m.id)
        tasks.settle(app)
        msgs = smtp.wait(8)
        for who in ("ann.able@example.org", "bob.baker@example.org"):
            bodies = [x["body"] for x in msgs if x["to"] == [who]]
            assert len(bodies) == 4, (who, bodies)
            for word in ("is scheduled for", "Changed", "Reminder", "Cancelled"):
                assert any(word in b for b in bodies), (who, word)
        assert not any(x["to"] == [chair.email] for x in msgs)


def test_api_schedules_with_agenda_and_times_and_still_starts_on_the_spot(app, make, client):
    chair, ann, _bob, room, _ = setup_meeting(make)
    tok = make.token(chair)
    r = client.post(f"/api/v1/rooms/{room.id}/meetings", headers=bearer(tok),
                    json={"title": "By API", "agenda": "- one", "starts_at": "2030-03-01T10:00:00+01:00"})
    assert r.status_code == 201, r.json
    assert r.json["starts_at"] == "2030-03-01T09:00:00Z" and r.json["ends_at"] == "2030-03-01T11:00:00Z"
    assert "<li>one</li>" in r.json["agenda_html"]
    r = client.post(f"/api/v1/rooms/{room.id}/meetings", headers=bearer(tok), json={"title": "Now"})
    assert r.status_code == 201 and r.json["title"] == "Now"
    bad = client.post(f"/api/v1/rooms/{room.id}/meetings", headers=bearer(tok),
                      json={"title": "x", "starts_at": "not a date"})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "starts_at"
    ics = client.get(f"/api/v1/meetings/{r.json['id']}.ics", headers=bearer(make.token(ann)))
    assert ics.status_code == 200 and b"BEGIN:VCALENDAR" in ics.data
    assert client.get(f"/api/v1/meetings/{r.json['id']}.ics", headers=bearer(make.token(make.user()))).status_code == 404


def test_schedule_edit_cancel_through_the_pages_room_listing_my_meetings_and_ics(app, make):
    import icalendar

    chair, ann, bob = make.user(name="Chair Person"), make.user(name="Ann Able"), make.user(name="Bob Baker")
    room = make.room(chair, members=[ann, bob])
    c = login_client(app, chair)
    form = c.get(f"/rooms/{room.id}/meetings/schedule")
    assert form.status_code == 200 and "Schedule a meeting in" in form.data.decode()
    # bad input: the form comes back with the message, nothing is scheduled
    r = c.post(f"/rooms/{room.id}/meetings/schedule", data={"title": "Plenary", "starts_at": "2030-05-01T10:00",
                                                             "ends_at": "2030-05-01T09:00", "audience": "all"})
    assert r.status_code == 200 and "must end after it starts" in r.data.decode()
    r = c.post(f"/rooms/{room.id}/meetings/schedule", data={"title": "Plenary", "starts_at": "2030-05-01T10:00",
                                                             "audience": "some"})
    assert r.status_code == 200 and "Choose at least one person" in r.data.decode()
    assert schedule.room_meetings(chair, room) == []
    r = c.post(f"/rooms/{room.id}/meetings/schedule",
               data={"title": "Plenary", "agenda": "1. Welcome\n2. Stop and search", "starts_at": "2030-05-01T10:00",
                     "audience": "some", "invitees": [str(ann.id)]})
    assert r.status_code == 302, r.data[:500]
    mid = int(r.headers["Location"].rsplit("/", 1)[1])
    page = c.get(f"/meetings/{mid}").data.decode()
    assert "<li>Stop and search</li>" in page and "Invited: Ann Able, Chair Person" in page
    assert "Plenary" in c.get(f"/rooms/{room.id}").data.decode()
    ann_c, bob_c = login_client(app, ann), login_client(app, bob)
    assert "Plenary" in ann_c.get("/meetings").data.decode()
    assert "Plenary" not in bob_c.get("/meetings").data.decode()     # in the room, but not invited
    ics = ann_c.get(f"/meetings/{mid}.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    ev = icalendar.Calendar.from_ical(ics.data).walk("VEVENT")[0]
    # the form takes local time (the site's zone, Europe/London): 10:00 BST on 1 May is 09:00 UTC in the .ics
    assert ev.decoded("dtstart").isoformat() == "2030-05-01T09:00:00+00:00"
    assert ev.decoded("dtend").isoformat() == "2030-05-01T11:00:00+00:00" and int(ev["sequence"]) == 0
    assert login_client(app, make.user()).get(f"/meetings/{mid}.ics").status_code == 404
    # only the chair may change it; a change and a cancellation show in the invitation
    assert ann_c.get(f"/meetings/{mid}/edit").status_code == 403
    r = c.post(f"/meetings/{mid}/edit", data={"title": "Plenary (moved)", "agenda": "1. Welcome",
                                              "starts_at": "2030-05-02T14:00", "ends_at": ""})
    assert r.status_code == 302
    ev = icalendar.Calendar.from_ical(ann_c.get(f"/meetings/{mid}.ics").data).walk("VEVENT")[0]
    assert str(ev["summary"]) == "Plenary (moved)" and ev.decoded("dtstart").hour == 13 and int(ev["sequence"]) == 1
    assert ann_c.post(f"/meetings/{mid}/cancel").status_code == 403
    assert c.post(f"/meetings/{mid}/cancel").status_code == 302
    ev = icalendar.Calendar.from_ical(ann_c.get(f"/meetings/{mid}.ics").data).walk("VEVENT")[0]
    assert str(ev["status"]) == "CANCELLED" and int(ev["sequence"]) == 2
    assert "Plenary (moved)" in ann_c.get("/meetings").data.decode()          # under "past and cancelled"


def test_api_edit_and_cancel(app, make, client):
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    tok, ann_tok = make.token(chair), make.token(ann)
    r = client.patch(f"/api/v1/meetings/{meeting.id}", headers=bearer(tok),
                     json={"starts_at": "2030-01-10T12:00:00Z", "agenda": "- new"})
    assert r.status_code == 200 and r.json["starts_at"] == "2030-01-10T12:00:00Z"
    assert r.json["ends_at"] == "2030-01-10T14:00:00Z" and "<li>new</li>" in r.json["agenda_html"]
    bad = client.patch(f"/api/v1/meetings/{meeting.id}", headers=bearer(tok), json={"ends_at": "2030-01-10T11:00:00Z"})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "ends_at"
    assert client.patch(f"/api/v1/meetings/{meeting.id}", headers=bearer(ann_tok), json={"title": "x"}).status_code == 403
    assert client.post(f"/api/v1/meetings/{meeting.id}/cancel", headers=bearer(ann_tok)).status_code == 403
    r = client.post(f"/api/v1/meetings/{meeting.id}/cancel", headers=bearer(tok))
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    mine = client.get("/api/v1/meetings", headers=bearer(ann_tok)).json
    assert [m["id"] for m in mine["past"]] == [meeting.id] and mine["upcoming"] == []
