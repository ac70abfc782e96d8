"""Ending a meeting tells everyone on its page (issue 12): `end_meeting` sends one `meeting.ended`
after its commit to the meeting's channels (rooms/meetings/realtime.py), whichever route ended it;
the page treats it as final (tests/browser/test_meeting_lifecycle.py shows that end to end)."""
from __future__ import annotations

import pytest

from collab.errors import Forbidden
from rooms import trust_settings
from rooms.meetings import minutes, schedule, services
from tests.live_support import sock
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    joined,
    settle_live,
    setup_meeting,
)


def ended_events(sc) -> list[dict]:
    return [e["args"][0] for e in sc.get_received() if e["name"] == "meeting.ended"]


def test_ending_tells_everyone_on_the_meeting_page_once(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    outsider = make.user(name="Olly Outsider")
    other_room = make.room(outsider)
    watchers = [joined(app, u, meeting.id)[0] for u in (ann, bob)]
    elsewhere = sock(app, token=make.token(outsider))   # follows another room only: hears nothing
    assert elsewhere.emit("subscribe", {"room_id": other_room.id}, callback=True)["ok"]
    for sc in (*watchers, elsewhere):
        sc.get_received()

    services.end_meeting(chair, meeting.id)
    for sc in watchers:
        assert ended_events(sc) == [{"meeting_id": meeting.id, "reason": "ended",
                                     "message": "The chair ended the meeting.", "minutes_thread_id": None}]
    assert ended_events(elsewhere) == []
    services.end_meeting(chair, meeting.id)   # already over: nothing is said again
    assert [ended_events(sc) for sc in watchers] == [[], []]


def test_someone_who_may_not_end_it_sends_nothing(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    sc, _ = joined(app, bob, meeting.id)
    sc.get_received()
    with pytest.raises(Forbidden):
        services.end_meeting(ann, meeting.id)
    assert ended_events(sc) == []


def test_cancelling_says_cancelled(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    sc, _ = joined(app, ann, meeting.id)
    sc.get_received()
    services.end_meeting(chair, meeting.id, cancel=True)
    (ev,) = ended_events(sc)
    assert ev["reason"] == "cancelled" and ev["message"] == "The chair cancelled the meeting."


def test_minutes_posted_at_the_end_reach_the_page_in_the_next_state(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    sc, _ = joined(app, ann, meeting.id)
    sc.get_received()
    thread = minutes.end_with_minutes(chair, meeting.id)
    received = sc.get_received()
    names = [e["name"] for e in received]
    ended = names.index("meeting.ended")
    later = [e["args"][0] for e in received[ended + 1:] if e["name"] == "meeting.state"]
    assert later and later[-1]["ended"] is True and later[-1]["minutes_thread_id"] == thread.id


def test_minutes_posted_before_the_end_come_with_it(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    sc, _ = joined(app, ann, meeting.id)
    thread = minutes.post_minutes(chair, meeting.id)
    sc.get_received()
    services.end_meeting(chair, meeting.id)
    (ev,) = ended_events(sc)
    assert ev["minutes_thread_id"] == thread.id


def test_a_non_attributed_room_s_meeting_tells_both_channels_and_names_nobody(app, make):
    chair, ann = make.user(name="Chair Person"), make.user(name="Ann Able")
    room = make.room(chair, members=[ann])
    trust_settings.set_non_attributed(chair, room.id, True)   # before the meeting's announcement thread
    meeting = schedule.schedule_meeting(chair, room.id, title="Plenary", starts_at="2030-01-10T10:00:00Z")
    member_sc, member_state = joined(app, ann, meeting.id)
    chair_sc, chair_state = joined(app, chair, meeting.id)
    assert member_state["me"]["sees_names"] is False and chair_state["me"]["sees_names"] is True
    for sc in (member_sc, chair_sc):
        sc.get_received()
    services.end_meeting(chair, meeting.id)
    for sc in (member_sc, chair_sc):
        (ev,) = ended_events(sc)
        assert set(ev) == {"meeting_id", "reason", "message", "minutes_thread_id"}
        assert "Chair Person" not in str(ev)
