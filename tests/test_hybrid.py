"""Hybrid meetings (issue 6): scheduling, the live state machine (slides, hands,
attendance, chair hand-over), key-message votes and minutes, through the
services, the pages and the Socket.IO events, on SQLite and PostgreSQL."""
from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import select

from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import realtime
from rooms.meetings import access, decks, minutes, schedule, state, votes
from rooms.meetings import realtime as meeting_realtime  # noqa: F401  (registers the events before any app exists)
from rooms.meetings.models import Deck
from rooms.models import Post, Thread
from tests.conftest import bearer
from tests.live_support import login_client, sock


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    realtime.settle(app)


def pdf_bytes(pages: int = 3) -> bytes:
    """A real PDF with `pages` pages, each saying its number (fpdf2)."""
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("helvetica", size=48)
    for i in range(pages):
        doc.add_page()
        doc.cell(text=f"Slide {i + 1}")
    return bytes(doc.output())


def ready_deck(chair, meeting, pages: int = 3) -> Deck:
    deck = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(pages)), "plenary.pdf", background=False)
    assert decks.convert(deck.id) == "ready"
    return db.session.get(Deck, deck.id, populate_existing=True)


def setup_meeting(make, **kw):
    chair, ann, bob = make.user(name="Chair Person"), make.user(name="Ann Able"), make.user(name="Bob Baker")
    room = make.room(chair, members=[ann, bob])
    meeting = schedule.schedule_meeting(chair, room.id, title="IAG plenary", agenda="1. Welcome\n2. Stop and search",
                                        starts_at="2030-01-10T10:00:00Z", **kw)
    return chair, ann, bob, room, meeting


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
        realtime.settle(app)
        smtp.wait(2)
        schedule.edit_meeting(chair, m.id, agenda="1. Welcome")
        realtime.settle(app)
        smtp.wait(4)
        assert schedule.send_due_reminders() == 1
        realtime.settle(app)
        smtp.wait(6)
        schedule.cancel_meeting(chair, m.id)
        realtime.settle(app)
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
    assert ev.decoded("dtstart").isoformat() == "2030-05-01T10:00:00+00:00"
    assert ev.decoded("dtend").isoformat() == "2030-05-01T12:00:00+00:00" and int(ev["sequence"]) == 0
    assert login_client(app, make.user()).get(f"/meetings/{mid}.ics").status_code == 404
    # only the chair may change it; a change and a cancellation show in the invitation
    assert ann_c.get(f"/meetings/{mid}/edit").status_code == 403
    r = c.post(f"/meetings/{mid}/edit", data={"title": "Plenary (moved)", "agenda": "1. Welcome",
                                              "starts_at": "2030-05-02T14:00", "ends_at": ""})
    assert r.status_code == 302
    ev = icalendar.Calendar.from_ical(ann_c.get(f"/meetings/{mid}.ics").data).walk("VEVENT")[0]
    assert str(ev["summary"]) == "Plenary (moved)" and ev.decoded("dtstart").hour == 14 and int(ev["sequence"]) == 1
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


# -- decks ---------------------------------------------------------------------------------------------------

def test_pdf_deck_renders_pages_served_to_members_only(app, make):
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=3)
    assert (deck.status, deck.pages, deck.done) == ("ready", 3, 3)
    c = login_client(app, ann)
    r = c.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/2.png")
    assert r.status_code == 200 and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/4.png").status_code == 404
    outsider = login_client(app, make.user())
    assert outsider.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/1.png").status_code == 404
    assert outsider.get(f"/meetings/{meeting.id}/decks/{deck.id}/file").status_code == 404
    assert c.get(f"/meetings/{meeting.id}/decks/{deck.id}/file").data[:5] == b"%PDF-"
    # nothing but the finished folder is left in the slides folder
    assert [p.name for p in decks.slides_root().iterdir()] == [str(deck.id)]


def test_corrupt_and_encrypted_pdfs_fail_cleanly(app, make):
    from pypdf import PdfReader, PdfWriter

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    bad = decks.upload(chair, meeting.id, io.BytesIO(b"%PDF-1.4\nthis is not really a pdf\n"), "broken.pdf",
                       background=False)
    assert decks.convert(bad.id) == "failed"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(2))))
    writer.encrypt(user_password="secret", owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    locked = decks.upload(chair, meeting.id, io.BytesIO(buf.getvalue()), "locked.pdf", background=False)
    assert decks.convert(locked.id) == "failed"
    got = {d["filename"]: d for d in state.get_state(ann, meeting.id)["decks"]}
    assert "not a readable PDF" in got["broken.pdf"]["message"]
    assert "password" in got["locked.pdf"]["message"]
    assert list(decks.slides_root().iterdir()) == []          # nothing half-made
    with pytest.raises(Invalid):
        decks.upload(chair, meeting.id, io.BytesIO(b"MZ..."), "virus.exe")
    with pytest.raises(Forbidden):
        decks.upload(ann, meeting.id, io.BytesIO(pdf_bytes(1)), "mine.pdf")
    # the meeting page still works and says why
    page = login_client(app, ann).get(f"/meetings/{meeting.id}")
    assert page.status_code == 200


def test_more_than_300_pages_is_refused(app, make):
    """A real 301-page PDF: refused after counting its pages (none is drawn), with a message."""
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    d = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(301)), "everything.pdf", background=False)
    assert decks.convert(d.id) == "failed"
    deck = state.get_state(ann, meeting.id)["decks"][0]
    assert "301 pages; at most 300" in deck["message"] and deck["pages"] == 0
    assert list(decks.slides_root().iterdir()) == []
    ok = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(2)), "short.pdf", background=False)
    assert decks.convert(ok.id) == "ready"                      # the meeting goes on with the next file


def test_drawing_that_runs_too_long_is_stopped(app, make, monkeypatch, tmp_path_factory):
    """A drawing child that never ends (a script that sleeps, in place of render.py): stopped at the limit
    with everything it started, however fast the machine is."""
    hang = tmp_path_factory.mktemp("hang-render") / "render"
    hang.write_text("#!/bin/sh\nsleep 3600 &\nwait\n")
    hang.chmod(0o755)
    monkeypatch.setattr(decks, "RENDERER", [str(hang)])
    monkeypatch.setattr(decks, "RENDER_TIMEOUT", 1)
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    d = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(3)), "slow.pdf", background=False)
    assert decks.convert(d.id) == "failed"
    assert "took longer than 1 seconds and was stopped" in state.get_state(ann, meeting.id)["decks"][0]["message"]
    assert list(decks.slides_root().iterdir()) == []
    assert _gone(str(hang)) and _gone(f".work-{d.id}-")


def test_progress_is_sent_live_while_the_slides_are_drawn(app, make, monkeypatch):
    monkeypatch.setattr(decks, "PROGRESS_EVERY", 0)
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    sc, _ = _joined(app, ann, meeting.id)
    d = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(4)), "plenary.pdf", background=False)
    decks.start(app, d.id).join(timeout=60)
    seen = [(x["status"], x["done"], x["pages"]) for e in sc.get_received() if e["name"] == "meeting.state"
            for x in e["args"][0]["decks"]]
    assert seen[0] == ("queued", 0, 0) and seen[-1] == ("ready", 4, 4)
    steps = [done for status, done, pages in seen if status == "converting" and pages == 4]
    assert steps == sorted(steps) and len(set(steps)) >= 3, seen   # 0, 1, 2, 3 … of 4 as they are drawn
    # this test's session still holds the deck as it was before the background job: read it again
    assert db.session.get(Deck, d.id, populate_existing=True).status == "ready"
    r = login_client(app, ann).get(f"/meetings/{meeting.id}/decks/{d.id}/pages/1.png")
    assert r.status_code == 200, r.data[:300]
    assert r.headers["Cache-Control"] == "no-store"   # room content: stored by neither browser nor proxy


def test_office_file_without_soffice_is_a_download(app, make, monkeypatch):
    """Without LibreOffice on the PATH (a real absence: PATH points nowhere) the file is a download with a note."""
    monkeypatch.setenv("PATH", "/nonexistent")
    assert decks.soffice() is None
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    d = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 not really"), "deck.pptx", background=False)
    assert decks.convert(d.id) == "download"
    d = db.session.get(Deck, d.id, populate_existing=True)
    assert "LibreOffice" in d.message and d.pages == 0
    c = login_client(app, ann)
    assert c.get(f"/meetings/{meeting.id}/decks/{d.id}/file").data.startswith(b"PK")
    assert "LibreOffice" in c.get(f"/meetings/{meeting.id}/state").json["decks"][0]["message"]


def test_files_that_are_not_what_their_name_says_are_refused_before_anything_is_stored(app, make):
    chair, _ann, _bob, _room, meeting = setup_meeting(make)
    for name, data, what in (("slides.pptx", b"\x00\x01 random bytes", "PowerPoint"),
                             ("paper.docx", b"%PDF-1.4 a pdf renamed", "Word"),
                             ("old.ppt", b"PK\x03\x04zip", "PowerPoint"),
                             ("deck.pdf", b"GIF89a not a pdf", "PDF"),
                             ("empty.pdf", b"", "empty")):
        with pytest.raises(Invalid) as e:
            decks.upload(chair, meeting.id, io.BytesIO(data), name, background=False)
        assert name in e.value.message and what in e.value.message and e.value.field == "file"
    assert state.get_state(chair, meeting.id)["decks"] == []
    # through the page: the meeting page says why, and still works
    c = login_client(app, chair)
    r = c.post(f"/meetings/{meeting.id}/decks", data={"file": (io.BytesIO(b"junk"), "slides.odp")},
               content_type="multipart/form-data", follow_redirects=True)
    assert r.status_code == 200 and "is not a readable OpenDocument presentation file" in r.data.decode()
    # and through the API: 422 with the field
    r = app.test_client().post(f"/api/v1/meetings/{meeting.id}/decks", headers=bearer(make.token(chair)),
                               data={"file": (io.BytesIO(b"junk"), "slides.pptx")}, content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["error"]["field"] == "file"


def _office_files() -> dict[str, bytes]:
    """A real two-slide PPTX (python-pptx) and a real DOCX (python-docx), made here."""
    import docx
    from pptx import Presentation

    prs = Presentation()
    for i in range(2):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Slide {i + 1}"
        slide.placeholders[1].text = "Stop and search: the quarterly figures"
    pptx = io.BytesIO()
    prs.save(pptx)
    doc = docx.Document()
    doc.add_heading("Briefing paper", 0)
    doc.add_paragraph("Stop and search data, explained for the IAG.")
    docx_buf = io.BytesIO()
    doc.save(docx_buf)
    return {"plenary.pptx": pptx.getvalue(), "briefing.docx": docx_buf.getvalue()}


def _gone(fragment: str) -> bool:
    """Wait (generously) until no process mentions `fragment`: a killed process may take a moment to be reaped."""
    deadline = time.monotonic() + 30
    while _processes_with(fragment) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _processes_with(fragment) == []


def _processes_with(fragment: str) -> list[str]:
    """Command lines of running processes that mention `fragment` (e.g. a deck's work folder)."""
    import os

    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd:
            out.append(cmd)
    return out


needs_soffice = pytest.mark.skipif(not decks.soffice(), reason="LibreOffice (soffice) is not installed: "
                                   "apt-get install --no-install-recommends libreoffice-impress libreoffice-writer")


@needs_soffice
def test_pptx_odp_and_docx_are_converted_by_libreoffice_side_by_side(app, make, tmp_path):
    """A real PPTX, ODP and DOCX, converted at the same time (each LibreOffice run has its own profile)."""
    import subprocess

    files = _office_files()
    # an OpenDocument presentation: the PPTX saved as ODP by LibreOffice itself
    (tmp_path / "plenary.pptx").write_bytes(files["plenary.pptx"])
    subprocess.run([decks.soffice(), f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "odp", "--outdir", str(tmp_path), str(tmp_path / "plenary.pptx")],
                   check=True, capture_output=True, timeout=120)
    files["agenda.odp"] = (tmp_path / "plenary.odp").read_bytes()
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    ids = {}
    for name, data in files.items():
        ids[name] = decks.upload(chair, meeting.id, io.BytesIO(data), name, background=False).id
    tasks = [decks.start(app, did) for did in ids.values()]
    for t in tasks:
        t.join(timeout=240)
    got = {d["filename"]: d for d in state.get_state(ann, meeting.id)["decks"]}
    assert (got["plenary.pptx"]["status"], got["plenary.pptx"]["pages"]) == ("ready", 2), got
    assert got["briefing.docx"]["status"] == "ready" and got["briefing.docx"]["pages"] >= 1, got
    assert (got["agenda.odp"]["status"], got["agenda.odp"]["pages"]) == ("ready", 2), got
    c = login_client(app, ann)
    png = c.get(f"/meetings/{meeting.id}/decks/{ids['plenary.pptx']}/pages/2.png")
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(io.BytesIO(png.data)).size[0] == decks.PAGE_WIDTH
    # nothing but the finished folders is left, and no LibreOffice is still running for them
    assert sorted(p.name for p in decks.slides_root().iterdir()) == sorted(str(i) for i in ids.values())
    for did in ids.values():
        assert _gone(f".work-{did}-") and _gone(f"collab-convert-{did}-")


@needs_soffice
def test_damaged_office_file_fails_with_a_message(app, make):
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    # a ZIP that is no presentation: LibreOffice's PowerPoint filter refuses it (rather than reading it as text)
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "this is not a presentation " * 200)
    d = decks.upload(chair, meeting.id, io.BytesIO(buf.getvalue()), "broken.pptx", background=False)
    assert decks.convert(d.id) == "failed"
    deck = state.get_state(ann, meeting.id)["decks"][0]
    assert "LibreOffice could not read this PowerPoint file" in deck["message"] and deck["pages"] == 0
    assert list(decks.slides_root().iterdir()) == []
    assert login_client(app, ann).get(f"/meetings/{meeting.id}").status_code == 200


# The converter's time limit: tests/test_deck_safety.py::test_a_hanging_converter_is_killed_at_the_time_limit
# (a converter that really hangs, so the kill path is proven on any machine).


# -- decks left half-done by a stopped server --------------------------------------------------------------

def _set_deck(did: int, **values) -> None:
    from sqlalchemy import update

    db.begin_write()
    db.session.execute(update(Deck).where(Deck.id == did).values(**values))
    db.session.commit()


def test_decks_a_stopped_server_left_converting_are_resumed_or_failed(app, make, runner):
    import os
    import socket
    from datetime import timedelta

    from collab.db import utcnow
    from rooms.meetings import jobs

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    host = socket.gethostname()
    up = [decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(2)), f"d{i}.pdf", background=False).id
          for i in range(5)]
    now = utcnow()
    # 0: "converting" by a process of this host that has gone (the server was restarted), with a work folder left
    _set_deck(up[0], status="converting", worker=f"{host}:999999999:1", updated_at=now, attempts=1, done=1, pages=2)
    (decks.slides_root() / f".work-{up[0]}-old").mkdir(parents=True)
    # 1: "queued" on another host, reporting recently: maybe still alive there, left alone
    _set_deck(up[1], status="queued", worker="elsewhere:12:34", updated_at=now)
    # 2: on another host but silent for longer than any conversion can take: resumed
    _set_deck(up[2], status="converting", worker="elsewhere:12:34", updated_at=now - decks.DEAD_AFTER
              - timedelta(seconds=1), attempts=1)
    # 3: interrupted MAX_ATTEMPTS times already: failed with a message, not tried again
    _set_deck(up[3], status="converting", worker=f"{host}:999999999:1", updated_at=now,
              attempts=decks.MAX_ATTEMPTS)
    # 4: being converted by a process of this host that is alive (the parent of this test)
    ppid = os.getppid()
    _set_deck(up[4], status="converting", worker=f"{host}:{ppid}:{decks._start_ticks(ppid)}", updated_at=now)
    assert decks.worker_alive(f"{host}:{ppid}:{decks._start_ticks(ppid)}") is True
    assert decks.worker_alive(f"{host}:999999999:1") is False

    out = jobs.run_once(app, background=False)
    assert out["decks"] == 2
    got = {d["filename"]: d for d in state.get_state(ann, meeting.id)["decks"]}
    assert (got["d0.pdf"]["status"], got["d0.pdf"]["pages"]) == ("ready", 2)
    assert got["d1.pdf"]["status"] == "queued"
    assert got["d2.pdf"]["status"] == "ready"
    assert got["d3.pdf"]["status"] == "failed" and "interrupted 3 times" in got["d3.pdf"]["message"]
    assert got["d4.pdf"]["status"] == "converting"
    assert not (decks.slides_root() / f".work-{up[0]}-old").exists()
    assert db.session.get(Deck, up[0], populate_existing=True).attempts == 2
    # running the jobs again changes nothing; the cron command does the same work
    assert jobs.run_once(app, background=False)["decks"] == 0
    _set_deck(up[1], updated_at=now - decks.DEAD_AFTER - timedelta(seconds=1))
    r = runner.invoke(args=["meetings", "jobs"])
    assert r.exit_code == 0 and "Resumed 1 deck;" in r.output, r.output
    assert db.session.get(Deck, up[1], populate_existing=True).status == "ready"


def test_the_server_jobs_loop_resumes_decks_and_sends_reminders_without_being_asked(app, make, monkeypatch):
    """What `flask serve` starts in each web process (there under gevent; here in a thread)."""
    import socket
    from datetime import timedelta

    from collab.db import utcnow
    from rooms.meetings import jobs

    monkeypatch.setattr(jobs, "FIRST_RUN", 0.05)
    chair, ann, _bob, room, meeting = setup_meeting(make)
    did = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(1)), "left.pdf", background=False).id
    _set_deck(did, status="converting", worker=f"{socket.gethostname()}:999999999:1", updated_at=utcnow())
    soon = schedule.schedule_meeting(chair, room.id, title="Soon", invitees_=[ann.id],
                                     starts_at=(utcnow() + timedelta(minutes=10)).isoformat())
    jobs.ensure_loop(app)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.rollback()
            deck = db.session.get(Deck, did, populate_existing=True)
            plan = access.plan_for(soon)
            db.session.refresh(plan)
            if deck.status == "ready" and plan.reminded_at is not None:
                break
            time.sleep(0.2)
        assert deck.status == "ready" and plan.reminded_at is not None
    finally:
        app.extensions.pop("meeting_jobs_pid", None)   # the loop ends at its next turn
    realtime.settle(app)


# -- the live state machine ---------------------------------------------------------------------------------

def test_slide_follow_hands_order_and_chair_hand_over(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=3)
    s = state.set_slide(chair, meeting.id, deck_id=deck.id, page=2)
    assert (s["deck_id"], s["page"]) == (deck.id, 2)
    with pytest.raises(Forbidden):
        state.set_slide(ann, meeting.id, deck_id=deck.id, page=3)
    with pytest.raises(Invalid):
        state.set_slide(chair, meeting.id, deck_id=deck.id, page=4)
    state.set_presenter(chair, meeting.id, user_id=ann.id)
    assert state.set_slide(ann, meeting.id, deck_id=deck.id, page=3)["page"] == 3
    # hands: first raised first; raising twice keeps the place
    state.raise_hand(bob, meeting.id)
    time.sleep(0.01)
    state.raise_hand(ann, meeting.id)
    state.raise_hand(bob, meeting.id)
    state.add_room_hand(chair, meeting.id, name="Carol in the room")
    names = [h["name"] for h in state.get_state(ann, meeting.id)["hands"]]
    assert names == ["Bob Baker", "Ann Able", "Carol in the room"]
    hands = state.get_state(chair, meeting.id)["hands"]
    state.give_floor(chair, meeting.id, hand_id=hands[0]["id"])
    assert state.get_state(chair, meeting.id)["hands"][0]["floor"] is True
    with pytest.raises(Forbidden):
        state.lower_hand(ann, meeting.id, hand_id=hands[0]["id"])
    state.lower_hand(ann, meeting.id)
    assert [h["name"] for h in state.get_state(ann, meeting.id)["hands"]] == ["Bob Baker", "Carol in the room"]
    # a moderator of the room can take over as presenter when the chair drops
    mod = make.user(name="Mo Derator")
    from rooms.models import Membership

    db.begin_write()
    db.session.add(Membership(room_id=room.id, user_id=mod.id, role="moderator"))
    db.session.commit()
    assert access.is_chair(mod, meeting)
    state.set_presenter(mod, meeting.id, user_id=mod.id)
    assert state.set_slide(mod, meeting.id, deck_id=deck.id, page=1)["page"] == 1


def test_votes_one_per_person_changeable_refused_after_close_and_minutes(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=1)
    kid = votes.draft(chair, meeting.id, text="Stop and search data should be published monthly")["key_message_id"]
    with pytest.raises(Forbidden):
        votes.cast(ann, kid, choice="agree")            # not open yet
    votes.edit(chair, kid, text="Stop and search data must be published monthly")
    votes.open_vote(chair, kid)
    votes.cast(ann, kid, choice="disagree")
    votes.cast(ann, kid, choice="agree", comment="Weekly would be better")
    votes.cast(bob, kid, choice="abstain")
    with pytest.raises(Invalid):
        votes.cast(bob, kid, choice="maybe")
    votes.room_counts(chair, kid, agree=5, disagree=1, abstain=0)
    km = state.get_state(ann, meeting.id)["key_messages"][0]
    assert km["tally"]["total"] == {"agree": 6, "disagree": 1, "abstain": 1}
    assert km["tally"]["remote"] == {"agree": 1, "disagree": 0, "abstain": 1}
    with pytest.raises(Forbidden):
        votes.close(ann, kid, outcome="agreed")
    votes.close(chair, kid, outcome="agreed")
    with pytest.raises(votes.VoteClosed) as e:
        votes.cast(bob, kid, choice="agree")
    assert "closed" in e.value.message
    assert state.get_state(ann, meeting.id)["me"]["votes"][str(kid)]["choice"] == "agree"
    state.mark_in_room(chair, meeting.id, user_id=bob.id)
    state.mark_in_room(chair, meeting.id, name="Dee Visitor")
    state.join(ann, meeting.id)
    state.add_action(chair, meeting.id, text="Publish the March data", owner="Chair Person")
    thread = minutes.end_with_minutes(chair, meeting.id)
    post = db.session.scalar(select(Post).where(Post.thread_id == thread.id))
    assert thread.title == "Minutes: IAG plenary"
    for text in ("Stop and search data must be published monthly", "**Agreed**", "6 agree", "Bob Baker",
                 "Dee Visitor", "Ann Able", "Stop and search", "plenary.pdf", "Publish the March data",
                 "Weekly would be better"):
        assert text in post.body, text
    # the chair can edit the minutes (normal post editing keeps the history)
    from rooms import services as rs

    rs.edit_post(chair, post.id, body=post.body + "\n\nCorrected.")
    name, data = minutes.pdf(ann, meeting.id)
    assert data[:5] == b"%PDF-" and name.endswith(".pdf")
    import pypdfium2 as pdfium

    text = pdfium.PdfDocument(data)[0].get_textpage().get_text_range()
    assert "IAG plenary" in text and "Agreed" in text
    # The room's confidentiality label is on the minutes thread and on every PDF page.
    assert post.body.startswith("**OFFICIAL**")
    pdf = pdfium.PdfDocument(data)
    for i in range(len(pdf)):
        assert pdf[i].get_textpage().get_text_range().count("OFFICIAL") >= 2, f"page {i + 1}"
    assert deck.id


# -- Socket.IO -------------------------------------------------------------------------------------------------

def _joined(app, user, meeting_id):
    c = login_client(app, user)
    sc = sock(app, c)
    ack = sc.emit("meeting_join", {"meeting_id": meeting_id}, callback=True)
    assert ack["ok"], ack
    return sc, ack["state"]


def _last_state(sc) -> dict | None:
    states = [e["args"][0] for e in sc.get_received() if e["name"] == "meeting.state"]
    return states[-1] if states else None


def test_socket_slide_follow_reconnect_and_refusals(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=3)
    sc_chair, st = _joined(app, chair, meeting.id)
    assert st["me"]["chair"] is True and st["decks"][0]["status"] == "ready"
    sc_ann, _ = _joined(app, ann, meeting.id)
    sc_bob, _ = _joined(app, bob, meeting.id)
    sc_ann.get_received(), sc_bob.get_received()
    ack = sc_chair.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 2}, callback=True)
    assert ack["ok"], ack
    for sc in (sc_ann, sc_bob):   # only that it arrives; the 300 ms target is measured by bench/slides.py
        got = _last_state(sc)
        assert got and (got["deck_id"], got["page"]) == (deck.id, 2)
    # a participant cannot drive; the refusal is an ack and an error event
    ack = sc_ann.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 3}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    # hands over the socket, seen by everyone in order
    sc_bob.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    assert [h["name"] for h in _last_state(sc_chair)["hands"]] == ["Bob Baker", "Ann Able"]
    # reconnecting gets the current state at once
    sc_ann.disconnect()
    _sc_ann2, st2 = _joined(app, ann, meeting.id)
    assert (st2["deck_id"], st2["page"]) == (deck.id, 2) and next(h["name"] for h in st2["hands"]) == "Bob Baker"
    # outsiders get 404 and nothing
    outsider = make.user()
    sc_out = sock(app, login_client(app, outsider))
    ack = sc_out.emit("meeting_join", {"meeting_id": meeting.id}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    sc_chair.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 3}, callback=True)
    assert _last_state(sc_out) is None


def test_socket_votes_give_floor_and_remove(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    sc_chair, _ = _joined(app, chair, meeting.id)
    sc_ann, _ = _joined(app, ann, meeting.id)
    sc_bob, _ = _joined(app, bob, meeting.id)
    ack = sc_chair.emit("km_draft", {"meeting_id": meeting.id, "text": "We support the pilot"}, callback=True)
    kid = ack["key_message_id"]
    sc_chair.emit("km_open", {"meeting_id": meeting.id, "key_message_id": kid}, callback=True)
    a = sc_ann.emit("km_vote", {"meeting_id": meeting.id, "key_message_id": kid, "choice": "agree"}, callback=True)
    assert a["ok"] and a["my_vote"]["choice"] == "agree"
    assert _last_state(sc_bob)["key_messages"][0]["tally"]["total"]["agree"] == 1
    sc_chair.emit("km_close", {"meeting_id": meeting.id, "key_message_id": kid, "outcome": "deferred"},
                  callback=True)
    late = sc_bob.emit("km_vote", {"meeting_id": meeting.id, "key_message_id": kid, "choice": "agree"},
                       callback=True)
    assert late["ok"] is False and late["error"]["code"] == "vote_closed"
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    hid = _last_state(sc_chair)["hands"][0]["id"]
    sc_ann.get_received()
    sc_chair.emit("meeting_floor", {"meeting_id": meeting.id, "hand_id": hid}, callback=True)
    assert any(e["name"] == "meeting.floor" for e in sc_ann.get_received())
    assert not any(e["name"] == "meeting.floor" for e in sc_bob.get_received())
    sc_chair.emit("meeting_remove", {"meeting_id": meeting.id, "user_id": bob.id}, callback=True)
    assert any(e["name"] == "meeting.removed" for e in sc_bob.get_received())
    again = sc_bob.emit("meeting_join", {"meeting_id": meeting.id}, callback=True)
    assert again["ok"] is False and "removed" in again["error"]["message"]
    sc_chair.emit("meeting_lock", {"meeting_id": meeting.id, "locked": True}, callback=True)
    late_comer = make.user()
    from rooms.models import Membership

    db.begin_write()
    db.session.add(Membership(room_id=room.id, user_id=late_comer.id, role="member"))
    db.session.commit()
    refused = sock(app, login_client(app, late_comer)).emit("meeting_join", {"meeting_id": meeting.id}, callback=True)
    assert refused["ok"] is False and "locked" in refused["error"]["message"]
    # a meeting-room device with its head-count (at most the room's four members)
    dev = sock(app, login_client(app, chair))
    st = dev.emit("meeting_join", {"meeting_id": meeting.id, "device": True, "head_count": 4}, callback=True)
    assert st["state"]["attendance"]["device"][0]["name"] == "Meeting room"
    assert st["state"]["attendance"]["device"][0]["head_count"] == 4


def test_socket_mute_all_reaches_everyone_but_the_chair_and_give_floor_asks_one_person(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    sc_chair, _ = _joined(app, chair, meeting.id)
    sc_ann, _ = _joined(app, ann, meeting.id)
    sc_bob, _ = _joined(app, bob, meeting.id)
    other = schedule.schedule_meeting(chair, room.id, title="Another meeting", starts_at="2030-01-11T10:00:00Z")
    sc_other, _ = _joined(app, ann, other.id)   # the same person in another meeting's page hears nothing of this one
    for sc in (sc_chair, sc_ann, sc_bob, sc_other):
        sc.get_received()
    # a participant may not mute everyone
    no = sc_ann.emit("meeting_mute_all", {"meeting_id": meeting.id}, callback=True)
    assert no["ok"] is False and no["error"]["code"] == "forbidden"
    assert [e for e in sc_bob.get_received() if e["name"] == "meeting.mute"] == []
    ok = sc_chair.emit("meeting_mute_all", {"meeting_id": meeting.id}, callback=True)
    assert ok["ok"], ok
    for sc in (sc_ann, sc_bob):
        got = [e["args"][0] for e in sc.get_received() if e["name"] == "meeting.mute"]
        assert len(got) == 1 and got[0]["meeting_id"] == meeting.id
        assert got[0]["by"] == "Chair Person" and got[0]["except"] == chair.id   # the page mutes itself, says who
    mine = [e["args"][0] for e in sc_chair.get_received() if e["name"] == "meeting.mute"]
    assert all(m["except"] == chair.id for m in mine)                            # ...and the chair's page ignores it
    assert not any(e["args"][0].get("meeting_id") == meeting.id for e in sc_other.get_received()
                   if e["name"] == "meeting.mute")
    # give the floor: the hand is marked in everyone's state, only that person is asked to unmute
    sc_bob.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    hands = _last_state(sc_chair)["hands"]
    assert [h["name"] for h in hands] == ["Bob Baker", "Ann Able"]
    for sc in (sc_ann, sc_bob):
        sc.get_received()
    sc_chair.emit("meeting_floor", {"meeting_id": meeting.id, "hand_id": hands[1]["id"]}, callback=True)
    asked = [e["args"][0] for e in sc_ann.get_received() if e["name"] == "meeting.floor"]
    assert len(asked) == 1 and "Chair Person gives you the floor" in asked[0]["message"]
    assert "unmute" in asked[0]["message"]
    assert not any(e["name"] == "meeting.floor" for e in sc_bob.get_received())
    st = state.get_state(bob, meeting.id)
    assert [(h["name"], h["floor"]) for h in st["hands"]] == [("Bob Baker", False), ("Ann Able", True)]
    # the floor passes on: whoever had it is done (their hand goes down)
    sc_chair.emit("meeting_floor", {"meeting_id": meeting.id, "hand_id": hands[0]["id"]}, callback=True)
    assert [(h["name"], h["floor"]) for h in state.get_state(bob, meeting.id)["hands"]] == [("Bob Baker", True)]
    # after the meeting ends, nobody can mute anyone
    minutes.end_with_minutes(chair, meeting.id)
    late = sc_chair.emit("meeting_mute_all", {"meeting_id": meeting.id}, callback=True)
    assert late["ok"] is False and "ended" in late["error"]["message"]


def test_reconnect_restores_votes_attendance_chat_lock_and_a_second_chair_takes_over(app, make):
    chair, ann, bob, room, _ = setup_meeting(make)
    deputy = make.user(name="Dee Deputy")
    from rooms.models import Membership

    db.begin_write()
    db.session.add(Membership(room_id=room.id, user_id=deputy.id, role="member"))
    db.session.commit()
    meeting = schedule.schedule_meeting(chair, room.id, title="Two chairs", starts_at="2030-01-10T10:00:00Z",
                                        chairs=[chair.id, deputy.id])
    deck = ready_deck(chair, meeting, pages=3)
    sc_chair, _ = _joined(app, chair, meeting.id)
    sc_ann, _ = _joined(app, ann, meeting.id)
    sc_bob, _ = _joined(app, bob, meeting.id)
    sc_chair.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 2}, callback=True)
    kid = sc_chair.emit("km_draft", {"meeting_id": meeting.id, "text": "We back the pilot"},
                        callback=True)["key_message_id"]
    sc_chair.emit("km_open", {"meeting_id": meeting.id, "key_message_id": kid}, callback=True)
    sc_ann.emit("km_vote", {"meeting_id": meeting.id, "key_message_id": kid, "choice": "disagree",
                            "comment": "Not yet"}, callback=True)
    r = sc_chair.emit("km_room", {"meeting_id": meeting.id, "key_message_id": kid, "agree": 7, "disagree": 2,
                                  "abstain": 1}, callback=True)
    assert r["ok"], r
    bad = sc_chair.emit("km_room", {"meeting_id": meeting.id, "key_message_id": kid, "agree": -1, "disagree": 0,
                                    "abstain": 0}, callback=True)
    assert bad["ok"] is False and bad["error"]["field"] == "agree"
    sc_chair.emit("meeting_attend", {"meeting_id": meeting.id, "name": "Pat in the room", "present": True},
                  callback=True)
    sc_chair.emit("meeting_attend", {"meeting_id": meeting.id, "user_id": bob.id, "present": True}, callback=True)
    sent = sc_bob.emit("meeting_chat", {"meeting_id": meeting.id, "body": "Can we see slide 3 again?"},
                       callback=True)
    assert sent["ok"], sent
    assert any(e["name"] == "meeting.chat" for e in sc_ann.get_received())
    too_long = sc_bob.emit("meeting_chat", {"meeting_id": meeting.id, "body": "x" * 2001}, callback=True)
    assert too_long["ok"] is False and too_long["error"]["field"] == "body"
    sc_chair.emit("meeting_lock", {"meeting_id": meeting.id, "locked": True}, callback=True)
    # Ann leaves (her register line gets a leave time) and comes back: everything is as it was
    sc_ann.emit("meeting_leave", {"meeting_id": meeting.id}, callback=True)
    sc_ann.disconnect()
    sc_ann2, st = _joined(app, ann, meeting.id)          # a locked meeting still lets back those who were in
    assert (st["deck_id"], st["page"], st["locked"]) == (deck.id, 2, True)
    km = st["key_messages"][0]
    assert km["status"] == "open" and km["tally"]["total"] == {"agree": 7, "disagree": 3, "abstain": 1}
    assert km["tally"]["room"] == {"agree": 7, "disagree": 2, "abstain": 1} and km["tally"]["comments"] == ["Not yet"]
    assert st["me"]["votes"][str(kid)] == {"choice": "disagree", "comment": "Not yet"}
    assert [c["body"] for c in st["chat"]] == ["Can we see slide 3 again?"]
    remote = [(a["name"], a["left_at"] is not None) for a in st["attendance"]["remote"]]
    assert ("Ann Able", True) in remote and ("Ann Able", False) in remote and ("Bob Baker", False) in remote
    assert {a["name"] for a in st["attendance"]["in_room"]} == {"Pat in the room", "Bob Baker"}
    assert all(a["joined_at"] for a in st["attendance"]["remote"])
    # the first chair drops; the second (a named chair, not a moderator) takes over the slides and the vote
    sc_chair.disconnect()
    sc_dep, st = _joined(app, deputy, meeting.id)
    assert st["me"]["chair"] is True and (st["deck_id"], st["page"]) == (deck.id, 2)
    sc_ann2.get_received()
    assert sc_dep.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 3},
                       callback=True)["ok"]
    assert _last_state(sc_ann2)["page"] == 3
    closed = sc_dep.emit("km_close", {"meeting_id": meeting.id, "key_message_id": kid, "outcome": "not_agreed"},
                         callback=True)
    assert closed["ok"], closed
    assert _last_state(sc_ann2)["key_messages"][0]["outcome"] == "not_agreed"


def test_meeting_room_device_head_count_and_the_chair_lowering_hands(app, make):
    """Only a chair registers the meeting-room device, and its head-count is at most the room's size
    (here three members), so nobody can put 500 people in the minutes."""
    chair, ann, bob, _room, meeting = setup_meeting(make)
    bobs = sock(app, login_client(app, bob))         # a participant cannot make their laptop the meeting room
    no = bobs.emit("meeting_join", {"meeting_id": meeting.id, "device": True, "head_count": 2}, callback=True)
    assert no["ok"] is False and no["error"]["code"] == "forbidden" and "chair" in no["error"]["message"]
    assert state.get_state(chair, meeting.id)["attendance"]["device"] == []
    dev = sock(app, login_client(app, chair))        # the chair's laptop on the table is the meeting room
    big = dev.emit("meeting_join", {"meeting_id": meeting.id, "device": True, "head_count": 500}, callback=True)
    assert big["ok"] is False and big["error"]["field"] == "head_count" and "from 0 to 3" in big["error"]["message"]
    st = dev.emit("meeting_join", {"meeting_id": meeting.id, "device": True, "head_count": 2}, callback=True)
    assert st["ok"] and st["state"]["attendance"]["device"][0]["head_count"] == 2
    r = dev.emit("meeting_head_count", {"meeting_id": meeting.id, "head_count": 3}, callback=True)
    assert r["ok"], r
    bad = dev.emit("meeting_head_count", {"meeting_id": meeting.id, "head_count": "lots"}, callback=True)
    assert bad["ok"] is False and bad["error"]["field"] == "head_count"
    bad = dev.emit("meeting_head_count", {"meeting_id": meeting.id, "head_count": 4}, callback=True)
    assert bad["ok"] is False and bad["error"]["field"] == "head_count"
    sc_ann, _ = _joined(app, ann, meeting.id)
    no = sc_ann.emit("meeting_head_count", {"meeting_id": meeting.id, "head_count": 1}, callback=True)
    assert no["ok"] is False and no["error"]["code"] == "forbidden"
    device = state.get_state(chair, meeting.id)["attendance"]["device"]
    assert [(d["name"], d["head_count"]) for d in device] == [("Meeting room", 3)]
    # the chair lowers anyone's hand, a room hand included; others only their own
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    state.add_room_hand(chair, meeting.id, name="Carol at the table")
    hands = state.get_state(chair, meeting.id)["hands"]
    sc_chair, _ = _joined(app, chair, meeting.id)
    for h in hands:
        assert sc_chair.emit("meeting_hand_lower", {"meeting_id": meeting.id, "hand_id": h["id"]},
                             callback=True)["ok"]
    assert state.get_state(ann, meeting.id)["hands"] == []


def test_minutes_thread_is_editable_by_the_chair_with_history(app, make):
    from rooms import services as rs
    from rooms.models import PostRevision

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    kid = votes.draft(chair, meeting.id, text="Publish the data monthly")["key_message_id"]
    votes.open_vote(chair, kid)
    votes.cast(ann, kid, choice="agree")
    votes.close(chair, kid, outcome="deferred")
    thread = minutes.end_with_minutes(chair, meeting.id)
    post = db.session.scalar(select(Post).where(Post.thread_id == thread.id))
    assert "**Deferred**" in post.body and "1 agree" in post.body
    rs.edit_post(chair, post.id, body=post.body + "\n\nCorrected: Dee sent apologies.")
    with pytest.raises(Forbidden):
        rs.edit_post(ann, post.id, body="Mine now")
    revisions = list(db.session.scalars(select(PostRevision).where(PostRevision.post_id == post.id)))
    assert len(revisions) == 1 and "Corrected" not in revisions[0].body
    c = login_client(app, ann)
    page = c.get(f"/threads/{thread.id}").data.decode()
    assert "Corrected: Dee sent apologies." in page
    pdf = c.get(f"/meetings/{meeting.id}/minutes.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    assert login_client(app, make.user()).get(f"/meetings/{meeting.id}/minutes.pdf").status_code == 404
    # votes after the meeting ended are refused with a message, and change nothing
    with pytest.raises(votes.VoteClosed) as e:
        votes.cast(ann, kid, choice="disagree")
    assert "closed" in e.value.message
    assert state.get_state(ann, meeting.id)["key_messages"][0]["tally"]["total"]["agree"] == 1


def test_removed_participant_gets_no_media_token(app, make):
    from rooms.meetings import services as meetings

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    state.remove_participant(chair, meeting.id, user_id=ann.id)
    with pytest.raises(Forbidden):
        meetings.join(ann, meeting.id)


def test_an_archived_room_s_meetings_are_read_only_for_chairs_too(app, make):
    """Archived means read-only everywhere: the chair (a moderator) can no longer draft key messages,
    mute everyone, vote, tick attendance, raise hands, chat, move slides, record actions, post
    minutes, attach papers or change the meeting; each answer is a 403 that says why, and nothing
    is recorded. The state can still be read."""
    from rooms import services as rs

    chair, ann, _bob, room, meeting = setup_meeting(make)
    sc_chair, _ = _joined(app, chair, meeting.id)
    sc_ann, _ = _joined(app, ann, meeting.id)
    kid = sc_chair.emit("km_draft", {"meeting_id": meeting.id, "text": "Before the archive"},
                        callback=True)["key_message_id"]
    sc_chair.emit("km_open", {"meeting_id": meeting.id, "key_message_id": kid}, callback=True)
    before = state.get_state(chair, meeting.id)
    rs.set_archived(chair, room.id, True)
    m = {"meeting_id": meeting.id}
    attempts = [
        (sc_chair, "km_draft", dict(m, text="After the archive")),
        (sc_chair, "km_close", dict(m, key_message_id=kid, outcome="agreed")),
        (sc_chair, "km_room", dict(m, key_message_id=kid, agree=1, disagree=0, abstain=0)),
        (sc_ann, "km_vote", dict(m, key_message_id=kid, choice="agree")),
        (sc_chair, "meeting_mute_all", m),
        (sc_chair, "meeting_attend", dict(m, name="Someone at the table", present=True)),
        (sc_ann, "meeting_hand", dict(m, up=True)),
        (sc_chair, "meeting_hand_add", dict(m, name="Carol")),
        (sc_ann, "meeting_chat", dict(m, body="Still here?")),
        (sc_chair, "meeting_lock", dict(m, locked=True)),
        (sc_chair, "meeting_action", dict(m, text="An action")),
        (sc_chair, "meeting_minutes", m),
        (sc_chair, "meeting_join", dict(m, device=True, head_count=1)),
    ]
    for sc, event, data in attempts:
        ack = sc.emit(event, data, callback=True)
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", (event, ack)
        assert "archived" in ack["error"]["message"], (event, ack)
    api = app.test_client()
    tok = make.token(chair)
    r = api.post(f"/api/v1/meetings/{meeting.id}/key-messages", headers=bearer(tok), json={"text": "Via the API"})
    assert r.status_code == 403 and "archived" in r.json["error"]["message"]
    r = api.patch(f"/api/v1/meetings/{meeting.id}", headers=bearer(tok), json={"title": "Renamed"})
    assert r.status_code == 403
    r = api.post(f"/api/v1/meetings/{meeting.id}/decks", headers=bearer(tok),
                 data={"file": (io.BytesIO(b"%PDF-1.4"), "late.pdf")}, content_type="multipart/form-data")
    assert r.status_code == 403
    assert login_client(app, chair).post(f"/meetings/{meeting.id}/minutes").status_code == 403
    # nothing changed, and the state still reads (joining only reads it now)
    after = state.get_state(chair, meeting.id)
    for key in ("key_messages", "hands", "attendance", "chat", "actions", "locked", "minutes_thread_id"):
        assert after[key] == before[key], key
    again = sc_ann.emit("meeting_join", m, callback=True)
    assert again["ok"] and again["state"]["me"]["writable"] is False and again["state"]["me"]["chair"] is False
