"""The meeting's record (issue 12): who attended, and what was decided.

Attendance begins when a person joins the call (their media token) and ends when they leave
it, their page closes or stops reporting, or the meeting ends; back within two minutes is the
same span; opening the page is not attending; a meeting before its time window records nobody.
The minutes thread and the minutes PDF are made from the same data and say the same.

Votes: closing needs the chair's outcome on every path (no default, a 1-1 tie included, and
ending the meeting closes nothing); a vote opened with its tally hidden shows the tally only to
the chairs and those who voted until it closes, on every channel.

Times are given to the services (`at`), never waited for."""
from __future__ import annotations

import inspect
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select

from collab.db import utcnow
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import trust_settings
from rooms.meetings import attendance, minutes, schedule, services, state, votes
from rooms.meetings.models import Attendance, KeyMessage
from rooms.models import Membership, Post
from tests.live_support import login_client, sock
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    joined,
    last_state,
    settle_live,
    setup_meeting,
)


def _start(minutes_ahead: int = 5) -> datetime:
    """A scheduled start on a whole minute a few minutes ahead: inside the meeting's window."""
    return utcnow().replace(second=0, microsecond=0) + timedelta(minutes=minutes_ahead)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


LONDON = ZoneInfo("Europe/London")   # the site's zone in the tests (COLLAB_TIME_ZONE's default)


def _hm(t: datetime, fmt: str = "%H:%M") -> str:
    """A stored (naive UTC) time as the minutes must print it: in the site's zone."""
    return t.replace(tzinfo=UTC).astimezone(LONDON).strftime(fmt)


def _pdf_text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    return " ".join(" ".join(doc[i].get_textpage().get_text_range().split()) for i in range(len(doc)))


def _stay(user, mid, start: datetime, end: datetime) -> None:
    """The page reports every 25 s from `start` to `end` (the meeting_here heartbeat)."""
    t = start
    while t <= end:
        attendance.here(user, mid, at=t)
        t += timedelta(seconds=25)


def _remote_spans(meeting, name: str, now: datetime | None = None) -> list[tuple[str, str | None]]:
    return [(a["joined_at"], a["left_at"]) for a in state.attendance(meeting, now=now)["remote"] if a["name"] == name]


# -- attendance ----------------------------------------------------------------------------------------

def test_scripted_join_leave_rejoin_minutes_thread_and_pdf_agree(app, make):
    T = _start()
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=_iso(T))
    mid = meeting.id
    m = lambda minutes_, seconds=0: T + timedelta(minutes=minutes_, seconds=seconds)  # noqa: E731

    # Bob only follows the page and its panels, the whole meeting long: he does not attend
    attendance.join(bob, mid, at=m(-10))
    _stay(bob, mid, m(-10), m(25))
    # Ann opens the page early (not attending), then joins the call at T
    attendance.join(ann, mid, at=m(-3))
    services.join(ann, mid, at=m(0))
    services.join(chair, mid, at=m(0, 10))
    _stay(chair, mid, m(0, 10), m(25))
    _stay(ann, mid, m(0), m(5))
    attendance.call_left(ann, mid, at=m(5))           # Leave ...
    services.join(ann, mid, at=m(5, 30))              # ... back after 30 s: the same span
    attendance.call_left(ann, mid, at=m(7))           # reconnect churn: seconds apart, no spans of its own
    services.join(ann, mid, at=m(7, 2))
    attendance.here(ann, mid, in_call=False, at=m(7, 3))
    attendance.here(ann, mid, in_call=True, at=m(7, 5))
    _stay(ann, mid, m(7, 5), m(10))                   # then her laptop sleeps: the page stops reporting
    assert _remote_spans(meeting, "Ann Able", now=m(12)) == [(_iso(m(0)), _iso(m(10)))]   # shown as left at 10:00
    services.join(ann, mid, at=m(13))                 # back three minutes later: a new span
    _stay(ann, mid, m(13), m(15))
    attendance.call_left(ann, mid, at=m(15))
    services.join(ann, mid, at=m(20))                 # back after five minutes: a new span
    _stay(ann, mid, m(20), m(24, 50))
    services.end_meeting(chair, mid, at=m(25))        # the chair ends the meeting: every span ends there

    # the stored record: one row per span, each closed; Bob's page row is no attendance
    rows = list(db.session.scalars(select(Attendance).where(Attendance.meeting_id == mid, Attendance.mode == "remote",
                                                            Attendance.user_id == ann.id).order_by(Attendance.id)))
    assert [(r.joined_at, r.left_at) for r in rows] == [(m(0), m(10)), (m(13), m(15)), (m(20), m(25))]
    assert _remote_spans(meeting, "Ann Able") == [(_iso(m(0)), _iso(m(10))), (_iso(m(13)), _iso(m(15))),
                                                 (_iso(m(20)), _iso(m(25)))]
    assert _remote_spans(meeting, "Chair Person") == [(_iso(m(0, 10)), _iso(m(25)))]
    assert _remote_spans(meeting, "Bob Baker") == []

    thread = minutes.post_minutes(chair, mid)
    body = db.session.scalar(select(Post.body).where(Post.thread_id == thread.id))
    _, data = minutes.pdf(chair, mid)
    pdf = _pdf_text(data)
    ann_line = f"- Ann Able ({_hm(m(0))}–{_hm(m(10))}, {_hm(m(13))}–{_hm(m(15))}, {_hm(m(20))}–{_hm(m(25))})"
    chair_line = f"- Chair Person ({_hm(m(0))}–{_hm(m(25))})"
    started = f"Started {_hm(m(0))} (the first to join), ended {_hm(m(25), '%H:%M %Z')}."
    for text in (ann_line, chair_line, started):
        assert text in body, (text, body)
        assert text in pdf, (text, pdf)
    # the same lines, from the same data, in both
    for line in minutes.content(meeting)["attendance"]:
        assert line in body and " ".join(line.split()) in pdf, line
    assert "Bob Baker" not in body and "Bob Baker" not in pdf
    assert "Ann Able" in body and body.count("Ann Able") == 1


def test_a_meeting_before_its_window_records_nobody(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make)        # scheduled for 2030
    mid = meeting.id
    attendance.join(ann, mid)
    services.join(ann, mid)                                      # trying the call early is allowed ...
    attendance.here(ann, mid, in_call=True)
    assert state.get_state(chair, mid)["attendance"] == {"remote": [], "in_room": [], "device": []}   # ... not recorded
    with pytest.raises(Forbidden) as e:
        attendance.mark_in_room(chair, mid, user_id=bob.id)
    assert "30 minutes before" in e.value.message
    dev = sock(app, login_client(app, chair))
    ack = dev.emit("meeting_join", {"meeting_id": mid, "device": True, "head_count": 2}, callback=True)
    assert ack["ok"] is False and "30 minutes before" in ack["error"]["message"]
    services.end_meeting(chair, mid)
    body = minutes.markdown(meeting)
    assert "Nobody joined the call" in body and "Remote (in the call): nobody" in body
    assert "In the room: nobody recorded" in body
    # an hour before a meeting of today is before its window too; 20 minutes before is inside it
    start = _start(60)
    later = schedule.schedule_meeting(chair, _room.id, title="Later today", starts_at=_iso(start))
    services.join(ann, later.id, at=start - timedelta(minutes=40))
    assert state.attendance(later, now=start - timedelta(minutes=40))["remote"] == []
    services.join(ann, later.id, at=start - timedelta(minutes=20))
    assert len(state.attendance(later, now=start - timedelta(minutes=20))["remote"]) == 1


def test_page_socket_and_http_paths_attendance(app, make):
    """Through the app: opening the page (meeting_join) is not attending; the token (Join) is; the
    Leave button (HTTP or meeting_call_leave) and the page closing (meeting_leave) end the span."""
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=_iso(_start()))
    mid = meeting.id
    sc_chair, _ = joined(app, chair, mid)
    c_ann = login_client(app, ann)
    sc_ann = sock(app, c_ann)
    assert sc_ann.emit("meeting_join", {"meeting_id": mid}, callback=True)["ok"]
    assert sc_ann.emit("meeting_here", {"meeting_id": mid}, callback=True)["ok"]
    sc_bob, st = joined(app, bob, mid)
    assert st["attendance"]["remote"] == []                       # two pages open, nobody attends
    assert c_ann.post(f"/meetings/{mid}/token").status_code == 200   # Ann presses Join
    assert [(a["name"], a["present"]) for a in last_state(sc_chair)["attendance"]["remote"]] == [("Ann Able", True)]
    bad = sc_ann.emit("meeting_here", {"meeting_id": mid, "in_call": "yes"}, callback=True)
    assert bad["ok"] is False and bad["error"]["field"] == "in_call"
    assert c_ann.post(f"/meetings/{mid}/call/leave").get_json() == {"ok": True}   # Leave; the page stays
    assert [a["present"] for a in last_state(sc_chair)["attendance"]["remote"]] == [False]
    assert sc_ann.emit("meeting_here", {"meeting_id": mid}, callback=True)["ok"]   # the page's heartbeat ...
    assert state.get_state(chair, mid)["attendance"]["remote"][0]["present"] is False   # ... is not the call
    assert sc_ann.emit("meeting_here", {"meeting_id": mid, "in_call": True}, callback=True)["ok"]
    assert [a["present"] for a in state.get_state(chair, mid)["attendance"]["remote"]] == [True]   # the same span
    assert sc_ann.emit("meeting_call_leave", {"meeting_id": mid}, callback=True)["ok"]
    assert state.get_state(chair, mid)["attendance"]["remote"][0]["present"] is False
    # Bob joins the call with an API token, then his page closes
    assert c_ann.post(f"/api/v1/meetings/{mid}/token", headers={"Authorization": f"Bearer {make.token(bob)}"}
                      ).status_code == 200
    assert {a["name"]: a["present"] for a in state.get_state(chair, mid)["attendance"]["remote"]}["Bob Baker"]
    sc_bob.emit("meeting_leave", {"meeting_id": mid}, callback=True)
    assert {a["name"]: a["present"] for a in state.get_state(chair, mid)["attendance"]["remote"]} == \
        {"Ann Able": False, "Bob Baker": False}
    # outsiders: 404 on the leave route too
    assert login_client(app, make.user()).post(f"/meetings/{mid}/call/leave").status_code == 404


def test_minutes_of_a_non_attributed_room_number_attendees(app, make):
    chair, ann, bob = make.user(name="Chair Person"), make.user(name="Ann Able"), make.user(name="Bob Baker")
    room = make.room(chair, members=[ann, bob])
    trust_settings.set_non_attributed(chair, room.id, True)
    meeting = schedule.schedule_meeting(chair, room.id, title="Quiet", starts_at=_iso(_start()))
    services.join(ann, meeting.id)
    services.end_meeting(chair, meeting.id)
    body = minutes.markdown(meeting)
    # One time, or a span when joining and ending fell in different minutes.
    assert "Ann Able" not in body and re.search(r"- Participant \d+ \(\d\d:\d\d(–\d\d:\d\d)?\)", body), body


# -- votes: the outcome is the chair's --------------------------------------------------------------

def test_closing_needs_an_outcome_on_every_path_and_ending_closes_nothing(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=_iso(_start()))
    mid = meeting.id
    tie = votes.draft(chair, mid, text="We ask for monthly data")["key_message_id"]
    votes.open_vote(chair, tie)
    votes.cast(ann, tie, choice="agree")
    votes.cast(bob, tie, choice="disagree")                     # 1-1
    for outcome in (None, "", "maybe", True):
        with pytest.raises(Invalid) as e:
            votes.close(chair, tie, outcome=outcome)
        assert e.value.field == "outcome"
    assert inspect.signature(votes.close).parameters["outcome"].default is inspect.Parameter.empty   # nor here
    sc_chair, _ = joined(app, chair, mid)
    for data in ({}, {"outcome": None}, {"outcome": ""}):
        ack = sc_chair.emit("km_close", dict(data, meeting_id=mid, key_message_id=tie), callback=True)
        assert ack["ok"] is False and ack["error"]["field"] == "outcome", ack
    c = login_client(app, chair)   # no HTTP or API route closes a vote
    closers = [r.rule for r in app.url_map.iter_rules()       # a poll's /close is not a key message's
               if ("close" in r.rule or "outcome" in r.rule) and ("meeting" in r.rule or "key-message" in r.rule)]
    assert closers == []
    assert c.post(f"/api/v1/key-messages/{tie}/close", json={}).status_code in (404, 405)
    km = db.session.get(KeyMessage, tie, populate_existing=True)
    assert (km.status, km.outcome) == ("open", "")
    # a second vote, closed by the chair's choice; a third still open when the meeting ends
    chosen = votes.draft(chair, mid, text="We defer the pilot")["key_message_id"]
    votes.open_vote(chair, chosen)
    votes.cast(ann, chosen, choice="agree")
    votes.cast(bob, chosen, choice="disagree")
    assert sc_chair.emit("km_close", {"meeting_id": mid, "key_message_id": chosen, "outcome": "not_agreed"},
                         callback=True)["ok"]
    assert c.post(f"/meetings/{mid}/finish").status_code == 302   # end and post the minutes
    km = db.session.get(KeyMessage, tie, populate_existing=True)
    assert (km.status, km.outcome) == ("open", "")               # ending closed nothing
    with pytest.raises(Forbidden):
        votes.close(chair, tie, outcome="agreed")                # and nobody can close it now
    with pytest.raises(votes.VoteClosed) as late:
        votes.cast(ann, tie, choice="abstain")
    assert "ended" in late.value.message
    body = minutes.markdown(meeting)
    assert f"**We ask for monthly data** — **{votes.ENDED_OPEN}**. 1 agree" in body
    assert "**We defer the pilot** — **Not agreed**. 1 agree" in body
    assert "Agreed**" not in body.replace("Not agreed**", "")
    text = _pdf_text(minutes.pdf(ann, mid)[1])
    assert votes.ENDED_OPEN in text and "Outcome: Not agreed" in text
    st = state.get_state(bob, mid)
    assert [k["outcome"] for k in st["key_messages"]] == ["", "not_agreed"]


# -- votes: a hidden tally -----------------------------------------------------------------------------

def _leaks(events: list[dict], kid: int) -> list:
    """Any tally of key message `kid` in what a socket received."""
    found = []
    for e in events:
        if e["name"] == "meeting.tally":
            found.append(e)
        for arg in e["args"]:
            for km in (arg.get("key_messages") or []) if isinstance(arg, dict) else []:
                if km["id"] == kid and km["tally"] is not None:
                    found.append(km)
    return found


def test_a_hidden_tally_reaches_only_voters_and_chairs_until_close(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=_iso(_start()))
    mid = meeting.id
    sc_chair, _ = joined(app, chair, mid)
    sc_ann, _ = joined(app, ann, mid)
    sc_bob, _ = joined(app, bob, mid)
    kid = sc_chair.emit("km_draft", {"meeting_id": mid, "text": "Publish stop and search data"},
                        callback=True)["key_message_id"]
    bad = sc_chair.emit("km_open", {"meeting_id": mid, "key_message_id": kid, "hide_tally": "yes"}, callback=True)
    assert bad["ok"] is False and bad["error"]["field"] == "hide_tally"
    assert sc_chair.emit("km_open", {"meeting_id": mid, "key_message_id": kid, "hide_tally": True},
                         callback=True)["ok"]
    for sc in (sc_chair, sc_ann, sc_bob):
        sc.get_received()
    ack = sc_ann.emit("km_vote", {"meeting_id": mid, "key_message_id": kid, "choice": "agree", "comment": "Yes"},
                      callback=True)
    assert ack["ok"] and ack["tally"]["total"]["agree"] == 1           # the voter sees it at once
    assert sc_chair.emit("km_room", {"meeting_id": mid, "key_message_id": kid, "agree": 4, "disagree": 3,
                                     "abstain": 0}, callback=True)["ok"]
    # the broadcast state: no tally for anyone, and it says why
    ann_events, bob_events, chair_events = sc_ann.get_received(), sc_bob.get_received(), sc_chair.get_received()
    for events in (ann_events, bob_events, chair_events):
        states = [e["args"][0] for e in events if e["name"] == "meeting.state"]
        assert states and all(st["key_messages"][0]["tally"] is None and st["key_messages"][0]["hide_tally"]
                              for st in states)
    assert _leaks(bob_events, kid) == []
    assert [e["args"][0]["tallies"][str(kid)]["total"] for e in ann_events if e["name"] == "meeting.tally"][-1] == \
        {"agree": 5, "disagree": 3, "abstain": 0}
    assert any(e["name"] == "meeting.tally" for e in chair_events)
    # every way of reading the state: Bob (has not voted) gets none, Ann (voted) and the chair get it
    c_bob = login_client(app, bob)
    bob_reads = [state.get_state(bob, mid), c_bob.get(f"/meetings/{mid}/state").get_json(),
                 c_bob.get(f"/api/v1/meetings/{mid}/state",
                           headers={"Authorization": f"Bearer {make.token(bob)}"}).get_json(),
                 sc_bob.emit("meeting_state", {"meeting_id": mid}, callback=True)["state"],
                 sock(app, c_bob).emit("meeting_join", {"meeting_id": mid}, callback=True)["state"]]
    for st in bob_reads:
        st = st.get("data", st)   # the API wraps its answer
        assert st["key_messages"][0]["tally"] is None and st["me"]["tallies"] == {}, st["key_messages"]
        assert "Yes" not in json.dumps(st["key_messages"])            # the comments are part of the tally
    for who in (ann, chair):
        st = state.get_state(who, mid)
        assert st["key_messages"][0]["tally"]["total"] == {"agree": 5, "disagree": 3, "abstain": 0}
        assert st["me"]["tallies"][str(kid)]["comments"] == ["Yes"]
    # the minutes, before the vote closes, do not give it away either
    thread = minutes.post_minutes(chair, mid)
    body = db.session.scalar(select(Post.body).where(Post.thread_id == thread.id))
    assert "The tally is hidden until the vote closes" in body and "5 agree" not in body and "Yes" not in body
    assert "5 agree" not in _pdf_text(minutes.pdf(bob, mid)[1])
    # Bob votes: from now on he gets it
    sc_bob.get_received()
    assert sc_bob.emit("km_vote", {"meeting_id": mid, "key_message_id": kid, "choice": "disagree"},
                       callback=True)["tally"]["total"]["disagree"] == 4
    assert state.get_state(bob, mid)["key_messages"][0]["tally"]["total"]["disagree"] == 4
    # at close, everybody gets it in the broadcast
    outsider_ish = make.user(name="Late Reader")
    db.begin_write()
    db.session.add(Membership(room_id=meeting.room_id, user_id=outsider_ish.id, role="member"))
    db.session.commit()
    sc_late, st = joined(app, outsider_ish, mid)
    assert st["key_messages"][0]["tally"] is None
    assert sc_chair.emit("km_close", {"meeting_id": mid, "key_message_id": kid, "outcome": "deferred"},
                         callback=True)["ok"]
    for sc in (sc_late, sc_bob, sc_ann):
        km = last_state(sc)["key_messages"][0]
        assert km["status"] == "closed" and km["tally"]["total"] == {"agree": 5, "disagree": 4, "abstain": 0}
    assert "5 agree" in minutes.markdown(meeting)


def test_a_visible_tally_is_for_everyone_and_a_hidden_one_shows_once_the_meeting_ends(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=_iso(_start()))
    mid = meeting.id
    shown = votes.draft(chair, mid, text="Shown")["key_message_id"]
    votes.open_vote(chair, shown)          # hide_tally defaults to False: the tally is for everyone
    hidden = votes.draft(chair, mid, text="Hidden")["key_message_id"]
    votes.open_vote(chair, hidden, hide_tally=True)
    votes.cast(ann, shown, choice="agree")
    votes.cast(ann, hidden, choice="agree")
    kms = {k["text"]: k for k in state.get_state(bob, mid)["key_messages"]}
    assert kms["Shown"]["tally"]["total"]["agree"] == 1 and kms["Hidden"]["tally"] is None
    with pytest.raises(Invalid):
        votes.open_vote(chair, votes.draft(chair, mid, text="x")["key_message_id"], hide_tally=1)
    services.end_meeting(chair, mid)
    kms = {k["text"]: k for k in state.get_state(bob, mid)["key_messages"]}
    assert kms["Hidden"]["tally"]["total"]["agree"] == 1 and kms["Hidden"]["status"] == "open"
