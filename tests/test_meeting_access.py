"""Who may do what in a meeting (rooms/meetings/access.py): ending it, the chair's removal, and
an archived room's meetings read-only for everyone.

Ending a meeting: one rule (rooms/meetings/access.py `may_end`: the room's moderators, the
chairs, and whoever started it) and one function (rooms/meetings/services.py `end_meeting`) for
every route that ends one: `/end`, `/finish` (then the minutes), `/cancel` and the API's cancel.

Before, the rule was written three times: a member who scheduled a meeting and named someone
else to chair it could end it at `/meetings/<id>/end` but not at `/finish` or `/cancel`."""
from __future__ import annotations

import io

import pytest

from collab.errors import Forbidden
from collab.extensions import db
from rooms.meetings import access, attendance, schedule, state
from rooms.meetings.models import Meeting
from tests.conftest import bearer
from tests.live_support import login_client
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    joined,
    settle_live,
    setup_meeting,
)

ROUTES = ("end", "finish", "cancel", "api_cancel")


def _setup(make):
    owner, starter, chair, other = (make.user(name=n) for n in ("Owner", "Starter", "Named Chair", "Other"))
    room = make.room(owner, members=[starter, chair, other])
    meeting = schedule.schedule_meeting(starter, room.id, title="Plenary", starts_at="2030-01-10T10:00:00Z",
                                        chairs=[chair.id])
    return owner, starter, chair, other, meeting


def _end(app, make, user, meeting, route: str):
    if route == "api_cancel":
        return app.test_client().post(f"/api/v1/meetings/{meeting.id}/cancel", headers=bearer(make.token(user)))
    return login_client(app, user).post(f"/meetings/{meeting.id}/{route}")


def _ended(meeting_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(Meeting, meeting_id).ended_at is not None


@pytest.mark.parametrize("route", ROUTES)
def test_whoever_started_a_meeting_may_end_it_on_every_route_after_naming_another_chair(app, make, route):
    _owner, starter, chair, _other, meeting = _setup(make)
    assert not access.is_chair(starter, meeting) and access.is_chair(chair, meeting)
    r = _end(app, make, starter, meeting, route)
    assert r.status_code in (200, 302), (route, r.status_code, r.data[:300])
    assert _ended(meeting.id)


@pytest.mark.parametrize("route", ROUTES)
def test_the_chair_and_the_room_s_moderators_may_end_it_and_nobody_else(app, make, route):
    owner, _starter, chair, other, meeting = _setup(make)
    r = _end(app, make, other, meeting, route)
    assert r.status_code == 403, (route, r.status_code)
    assert not _ended(meeting.id)
    assert _end(app, make, chair, meeting, route).status_code in (200, 302)
    assert _ended(meeting.id)
    # and the room's owner (a moderator) on a second meeting
    second = schedule.schedule_meeting(chair, meeting.room_id, title="Second", starts_at="2030-01-11T10:00:00Z")
    assert _end(app, make, owner, second, route).status_code in (200, 302)
    assert _ended(second.id)


def test_the_meeting_page_offers_end_to_exactly_those_who_may_end_it(app, make):
    _owner, starter, chair, other, meeting = _setup(make)
    for user, shown in ((starter, True), (chair, True), (other, False)):
        page = login_client(app, user).get(f"/meetings/{meeting.id}").get_data(as_text=True)
        assert (f"/meetings/{meeting.id}/end" in page) is shown, user.name


# -- removed and archived ---------------------------------------------------------------------------

def test_removed_participant_gets_no_media_token(app, make):
    from rooms.meetings import services as meetings

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    attendance.remove_participant(chair, meeting.id, user_id=ann.id)
    with pytest.raises(Forbidden):
        meetings.join(ann, meeting.id)


def test_an_archived_room_s_meetings_are_read_only_for_chairs_too(app, make):
    """Archived means read-only everywhere: the chair (a moderator) can no longer draft key messages,
    mute everyone, vote, tick attendance, raise hands, chat, move slides, record actions, post
    minutes, attach papers or change the meeting; each answer is a 403 that says why, and nothing
    is recorded. The state can still be read."""
    from rooms import services as rs

    chair, ann, _bob, room, meeting = setup_meeting(make)
    sc_chair, _ = joined(app, chair, meeting.id)
    sc_ann, _ = joined(app, ann, meeting.id)
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
        (sc_chair, "meeting_mute", dict(m, user_id=ann.id)),
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
