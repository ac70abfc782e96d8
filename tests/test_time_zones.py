"""Times in each person's time zone (issue 12, "Time"): the account's choice, else COLLAB_TIME_ZONE
(default Europe/London), always with the zone named; stored times stay UTC. British Summer Time
starts at 01:00 UTC on the last Sunday of March and ends at 01:00 UTC on the last Sunday of October."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import icalendar
import pytest
from lxml import html
from sqlalchemy import select

from auth import services as accounts
from auth.models import User
from collab import config, tasks, timezones
from collab.errors import Invalid
from collab.extensions import db
from rooms import notifications, notify_email
from rooms.meetings import access, attendance, minutes, schedule
from rooms.models import Post
from tests.live_support import login_client, wait_for

ROOT = Path(__file__).resolve().parent.parent
LONDON, NEW_YORK = "Europe/London", "America/New_York"


@pytest.fixture
def app_config(smtp):
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, "LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture(autouse=True)
def settle(app):
    yield
    tasks.settle(app)


# -- conversion across the clock changes -----------------------------------------------------------------

@pytest.mark.parametrize("utc, shown", [
    (datetime(2026, 3, 29, 0, 59), "29 Mar 2026, 00:59 GMT"),   # last Sunday of March, a minute before 01:00 UTC
    (datetime(2026, 3, 29, 1, 0), "29 Mar 2026, 02:00 BST"),    # the clocks go forward: 01:00 GMT becomes 02:00 BST
    (datetime(2026, 10, 25, 0, 59), "25 Oct 2026, 01:59 BST"),  # last Sunday of October, still summer time
    (datetime(2026, 10, 25, 1, 0), "25 Oct 2026, 01:00 GMT"),   # the clocks go back: 02:00 BST becomes 01:00 GMT
    (datetime(2027, 3, 28, 1, 0), "28 Mar 2027, 02:00 BST"),
    (datetime(2026, 6, 10, 9, 0), "10 Jun 2026, 10:00 BST"),
    (datetime(2026, 1, 10, 10, 0), "10 Jan 2026, 10:00 GMT"),
])
def test_utc_to_london_across_the_bst_changes(utc, shown):
    assert timezones.fmt(utc, LONDON) == shown


def test_other_zones_are_named_and_the_long_forms():
    summer = datetime(2026, 6, 10, 9, 0)
    assert timezones.fmt(summer, NEW_YORK) == "10 Jun 2026, 05:00 EDT"
    assert timezones.fmt(datetime(2026, 1, 10, 10, 0), NEW_YORK) == "10 Jan 2026, 05:00 EST"
    assert timezones.fmt(summer, "Asia/Kathmandu") == "10 Jun 2026, 14:45 UTC+05:45"   # no abbreviation: the offset
    assert timezones.fmt(summer, LONDON, "long") == "Wednesday 10 June 2026, 10:00 BST"
    assert timezones.span(summer, datetime(2026, 6, 10, 11, 0), LONDON) == "Wednesday 10 June 2026, 10:00–12:00 BST"
    # a meeting across the October change names both zones
    assert timezones.span(datetime(2026, 10, 25, 0, 0), datetime(2026, 10, 25, 2, 0), LONDON, "clock") \
        == "01:00 BST – 02:00 GMT"
    assert timezones.iso_utc(summer) == "2026-06-10T09:00:00Z"
    assert timezones.local_input(summer, LONDON) == "2026-06-10T10:00"
    assert timezones.names_by_offset(LONDON) == {"0": "GMT", "60": "BST"}


def test_local_to_utc_summer_winter_gap_and_repeated_hour():
    assert timezones.parse_local("2026-06-10T10:00", LONDON, "t") == datetime(2026, 6, 10, 9, 0)
    assert timezones.parse_local("2026-01-10T10:00", LONDON, "t") == datetime(2026, 1, 10, 10, 0)
    assert timezones.parse_local("2026-06-10T10:00", NEW_YORK, "t") == datetime(2026, 6, 10, 14, 0)
    assert timezones.parse_local("2026-03-29T00:59", LONDON, "t") == datetime(2026, 3, 29, 0, 59)
    assert timezones.parse_local("2026-03-29T02:00", LONDON, "t") == datetime(2026, 3, 29, 1, 0)
    # 01:30 on the last Sunday of March does not happen in London: refused, saying why
    with pytest.raises(Invalid) as e:
        timezones.parse_local("2026-03-29T01:30", LONDON, "starts_at", "Starts")
    assert e.value.field == "starts_at"
    assert "01:30 on 29 March 2026 does not exist in Europe/London" in e.value.message and "02:30" in e.value.message
    # 01:30 on the last Sunday of October happens twice: the first (still BST, 00:30 UTC) is meant
    assert timezones.parse_local("2026-10-25T01:30", LONDON, "t") == datetime(2026, 10, 25, 0, 30)
    assert timezones.parse_local("2026-10-25T02:00", LONDON, "t") == datetime(2026, 10, 25, 2, 0)
    # an explicit offset says which moment it is
    assert timezones.parse_local("2026-06-10T10:00:00Z", LONDON, "t") == datetime(2026, 6, 10, 10, 0)
    assert timezones.parse_local("", LONDON, "t") is None
    with pytest.raises(Invalid):
        timezones.parse_local("next tuesday", LONDON, "t")


# -- the site setting and the account's choice ------------------------------------------------------------

def test_bad_site_zone_stops_the_start_with_a_message(monkeypatch, tmp_path):
    monkeypatch.setenv("COLLAB_TIME_ZONE", "Europe/Londres")
    with pytest.raises(ValueError, match="COLLAB_TIME_ZONE “Europe/Londres” is not a time zone name"):
        config.from_env({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 40})
    monkeypatch.setenv("COLLAB_TIME_ZONE", "America/New_York")
    assert config.from_env({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 40})["TIME_ZONE"] == NEW_YORK
    monkeypatch.delenv("COLLAB_TIME_ZONE")
    assert config.from_env({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 40})["TIME_ZONE"] == LONDON
    # the real command: it stops, and says why
    env = {**os.environ, "COLLAB_TIME_ZONE": "Mars/Olympus_Mons", "COLLAB_DATA_DIR": str(tmp_path / "d"),
           "COLLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    run = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "COLLAB_TIME_ZONE “Mars/Olympus_Mons” is not a time zone name" in run.stderr


def test_account_page_sets_the_zone_and_refuses_a_bad_name(app, make):
    ann = make.user(name="Ann Able")
    c = login_client(app, ann)
    page = html.fromstring(c.get("/account").data)
    options = page.xpath("//select[@id='time_zone']/option")
    assert options[0].text == "Use the site's time zone (Europe/London)" and options[0].get("selected") is not None
    assert NEW_YORK in [o.text for o in options]
    assert "Times are shown to you in Europe/London" in page.text_content()
    r = c.post("/account", data={"action": "time_zone", "time_zone": "Mars/Olympus_Mons"})
    assert r.status_code == 200
    assert "“Mars/Olympus_Mons” is not a time zone name" in r.data.decode()
    assert db.session.scalar(select(User.time_zone).where(User.id == ann.id)) is None   # nothing changed
    r = c.post("/account", data={"action": "time_zone", "time_zone": NEW_YORK})
    assert r.status_code == 302
    assert db.session.scalar(select(User.time_zone).where(User.id == ann.id)) == NEW_YORK
    page = c.get("/account").data.decode()
    assert "Times are shown to you in America/New_York" in page and 'data-time-zone="America/New_York"' in page
    r = c.post("/account", data={"action": "time_zone", "time_zone": "America/Nowhere"})
    assert r.status_code == 200 and "is not a time zone name" in r.data.decode()
    assert db.session.scalar(select(User.time_zone).where(User.id == ann.id)) == NEW_YORK   # still the last good one
    assert c.post("/account", data={"action": "time_zone", "time_zone": ""}).status_code == 302
    assert db.session.scalar(select(User.time_zone).where(User.id == ann.id)) is None      # back to the site's
    with pytest.raises(Invalid):
        accounts.set_time_zone(ann, "../../etc/passwd")


# -- pages ----------------------------------------------------------------------------------------------

def test_a_reader_in_new_york_sees_post_and_meeting_times_in_new_york(app, make):
    chair, ann = make.user(name="Chair Person"), make.user(name="Ann Able")
    accounts.set_time_zone(ann, NEW_YORK)
    room = make.room(chair, members=[ann])
    t = make.thread(chair, room, title="Summer papers")
    db.begin_write()
    post = db.session.scalar(select(Post).where(Post.thread_id == t.id))
    post.created_at = datetime(2026, 6, 10, 9, 0)
    db.session.commit()
    m = schedule.schedule_meeting(chair, room.id, title="Plenary", starts_at="2030-07-10T09:00:00Z")

    ann_c, chair_c = login_client(app, ann), login_client(app, chair)
    mine = html.fromstring(ann_c.get(f"/threads/{t.id}").data)
    stamp = mine.xpath(f"//article[@id='post-{post.id}']//time")[0]
    assert stamp.text == "10 Jun 2026, 05:00 EDT" and stamp.get("datetime") == "2026-06-10T09:00:00Z"
    theirs = html.fromstring(chair_c.get(f"/threads/{t.id}").data)
    assert theirs.xpath(f"//article[@id='post-{post.id}']//time")[0].text == "10 Jun 2026, 10:00 BST"

    page = html.fromstring(ann_c.get(f"/meetings/{m.id}").data)
    when = page.xpath("//*[contains(@class, 'meeting-when')]//time")[0]
    assert when.text == "Wednesday 10 July 2030, 05:00–07:00 EDT" and when.get("datetime") == "2030-07-10T09:00:00Z"
    assert "Wednesday 10 July 2030, 10:00–12:00 BST" in chair_c.get(f"/meetings/{m.id}").data.decode()
    assert "Wed 10 Jul 2030, 05:00–07:00 EDT" in ann_c.get("/meetings").data.decode()
    assert "Wed 10 Jul 2030, 05:00 EDT" in ann_c.get(f"/rooms/{room.id}").data.decode()
    assert 'data-time-zone="America/New_York"' in ann_c.get("/meetings").data.decode()


def test_schedule_form_takes_local_time_and_shows_it_back(app, make):
    chair, ann = make.user(name="Chair Person"), make.user(name="Ann Able")
    room = make.room(chair, members=[ann])
    c = login_client(app, chair)
    form = c.get(f"/rooms/{room.id}/meetings/schedule").data.decode()
    assert "date and time, Europe/London" in form and "UTC" not in form

    def post(starts, ends=""):
        return c.post(f"/rooms/{room.id}/meetings/schedule",
                      data={"title": "Plenary", "starts_at": starts, "ends_at": ends, "audience": "all"})

    def stored(r):
        assert r.status_code == 302, r.data[:400]
        mid = int(r.headers["Location"].rsplit("/", 1)[1])
        plan = access.plan_for(access.get_meeting(chair, mid))
        return mid, plan.starts_at, plan.ends_at

    mid, start, end = stored(post("2030-07-10T10:00"))            # summer: 10:00 BST is 09:00 UTC
    assert (start, end) == (datetime(2030, 7, 10, 9, 0), datetime(2030, 7, 10, 11, 0))
    edit = html.fromstring(c.get(f"/meetings/{mid}/edit").data)   # editing shows the stored time in local time
    assert edit.xpath("//input[@id='starts_at']/@value") == ["2030-07-10T10:00"]
    assert edit.xpath("//input[@id='ends_at']/@value") == ["2030-07-10T12:00"]
    assert c.post(f"/meetings/{mid}/edit", data={"title": "Plenary", "agenda": "", "starts_at": "2030-07-10T10:00",
                                                 "ends_at": "2030-07-10T12:00"}).status_code == 302
    assert access.plan_for(access.get_meeting(chair, mid)).starts_at == datetime(2030, 7, 10, 9, 0)   # unmoved

    _, start, _ = stored(post("2030-01-10T10:00"))                 # winter: 10:00 GMT is 10:00 UTC
    assert start == datetime(2030, 1, 10, 10, 0)

    # the hour the clocks skip: a clear message, nothing scheduled
    before = len(schedule.room_meetings(chair, room))
    r = post("2030-03-31T01:30")
    assert r.status_code == 200
    assert "01:30 on 31 March 2030 does not exist in Europe/London" in html.fromstring(r.data).text_content()
    assert len(schedule.room_meetings(chair, room)) == before
    # the hour they repeat: the first time round (BST)
    _, start, end = stored(post("2030-10-27T01:30", "2030-10-27T03:00"))
    assert start == datetime(2030, 10, 27, 0, 30) and end == datetime(2030, 10, 27, 3, 0)

    # a chair in New York types New York time
    accounts.set_time_zone(chair, NEW_YORK)
    assert "date and time, America/New_York" in c.get(f"/rooms/{room.id}/meetings/schedule").data.decode()
    _, start, _ = stored(post("2030-07-10T10:00"))
    assert start == datetime(2030, 7, 10, 14, 0)
    # the API keeps ISO 8601: a time without an offset is UTC
    m = schedule.schedule_meeting(chair, room.id, title="By API", starts_at="2030-07-10T10:00:00")
    assert access.plan_for(m).starts_at == datetime(2030, 7, 10, 10, 0)


def test_invitation_email_and_ics_in_the_recipients_zone_notices_in_the_sites(app, make, smtp):
    chair = make.user(name="Chair Person")
    ann = make.user(name="Ann Able", email="ann@example.org")
    bob = make.user(name="Bob Baker", email="bob@example.org")
    accounts.set_time_zone(ann, NEW_YORK)
    room = make.room(chair, members=[ann, bob])
    m = schedule.schedule_meeting(chair, room.id, title="Summer plenary", starts_at="2030-07-10T09:00:00Z",
                                  invitees_=[ann.id, bob.id])
    tasks.settle(app)
    # Each invitee gets the invitation, and may also get an e-mail for the announcement that @mentions them
    # (they are not online); which arrives first is not fixed, so look for the invitations among them.
    def invitations() -> dict:
        return {msg["to"][0]: msg["body"] for msg in smtp.messages if "When:" in msg["body"]}
    wait_for(lambda: len(invitations()) >= 2, 10)
    mails = invitations()
    assert "When: Wednesday 10 July 2030, 05:00–07:00 EDT (your time zone, America/New_York)" in mails["ann@example.org"]
    assert "When: Wednesday 10 July 2030, 10:00–12:00 BST (your time zone, Europe/London)" in mails["bob@example.org"]
    # the announcement in the room is one text for everyone: the site's zone, named
    plan = access.plan_for(m)
    body = db.session.scalar(select(Post.body).where(Post.thread_id == plan.announce_thread_id))
    assert "Wednesday 10 July 2030, 10:00–12:00 BST, Europe/London time" in body and "UTC" not in body

    ev = icalendar.Calendar.from_ical(schedule.ics(ann, m.id)).walk("VEVENT")[0]
    assert ev.decoded("dtstart").isoformat() == "2030-07-10T09:00:00+00:00"   # UTC, portable
    assert b"DTSTART:20300710T090000Z" in schedule.ics(ann, m.id)
    assert "When: Wednesday 10 July 2030, 05:00–07:00 EDT (America/New_York time)" in str(ev["description"])
    bob_ev = icalendar.Calendar.from_ical(schedule.ics(bob, m.id)).walk("VEVENT")[0]
    assert "10:00–12:00 BST (Europe/London time)" in str(bob_ev["description"])

    # a change is e-mailed in each recipient's zone too
    smtp.messages.clear()
    schedule.edit_meeting(chair, m.id, starts_at="2030-12-10T15:00:00Z")
    tasks.settle(app)
    # Each invitee gets the invitation, and may also get an e-mail for the announcement that @mentions them
    # (they are not online); which arrives first is not fixed, so look for the invitations among them.
    def invitations() -> dict:
        return {msg["to"][0]: msg["body"] for msg in smtp.messages if "When:" in msg["body"]}
    wait_for(lambda: len(invitations()) >= 2, 10)
    mails = invitations()
    assert "When: Tuesday 10 December 2030, 10:00–12:00 EST (your time zone, America/New_York)" \
        in mails["ann@example.org"]
    assert "Tuesday 10 December 2030, 15:00–17:00 GMT" in mails["bob@example.org"]


def test_minutes_are_in_the_sites_zone_and_name_it(app, make):
    chair = make.user(name="Chair Person")
    accounts.set_time_zone(chair, NEW_YORK)     # the minutes are shared: not the chair's zone
    room = make.room(chair)
    summer = schedule.schedule_meeting(chair, room.id, title="Summer", starts_at="2030-07-10T09:00:00Z")
    winter = schedule.schedule_meeting(chair, room.id, title="Winter", starts_at="2030-01-10T10:00:00Z")
    # the minutes give the actual start (the first to join the call), here two minutes after each start
    db.begin_write()
    attendance.call_joined(chair, summer, at=datetime(2030, 7, 10, 9, 2))
    attendance.call_joined(chair, winter, at=datetime(2030, 1, 10, 10, 2))
    db.session.commit()
    s, w = minutes.content(summer), minutes.content(winter)
    assert (s["date"], s["time"]) == ("Wednesday 10 July 2030", "Started 10:02 (the first to join), not ended yet (BST).")
    assert (w["date"], w["time"]) == ("Thursday 10 January 2030", "Started 10:02 (the first to join), not ended yet (GMT).")
    assert any("Chair Person (10:02–now)" in line for line in s["attendance"]), s["attendance"]


def test_digest_gives_each_notification_time_in_the_recipients_zone(app, make, smtp):
    ann = make.user(name="Ann Able", email="ann.digest@example.org")
    bob = make.user(name="Bob Baker")
    accounts.set_time_zone(ann, "Asia/Tokyo")
    room = make.room(ann, members=[bob])
    t = make.thread(ann, room, title="Papers")
    reply = make.reply(bob, t, "A reply for the digest")
    tasks.settle(app)
    smtp.messages.clear()
    n = db.session.scalar(select(notifications.Notification).where(notifications.Notification.user_id == ann.id))
    assert n is not None
    assert notify_email.send_due_digests(is_online=lambda _uid: False) >= 1
    body = next(m["body"] for m in smtp.wait(1) if m["to"] == ["ann.digest@example.org"])
    assert f"({room.name}), {timezones.fmt(reply.created_at, 'Asia/Tokyo')}" in body and " JST" in body
