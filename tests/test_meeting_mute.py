"""The chair mutes one person (issue 12, People tab): `hands.mute_person` and the `meeting_mute`
socket event. Only that person's page is told (`meeting.mute_you`, after the commit); only the
chair may ask; bad ids, the chair themself, someone removed and someone outside the room are
refused with a clear message, never a 500. A non-attributed room's chair names people by number."""
from __future__ import annotations

import pytest

from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import trust_settings
from rooms.meetings import attendance, hands, minutes, pseudonyms, schedule
from tests.live_support import login_client, sock
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    joined,
    settle_live,
    setup_meeting,
    soon,
)


def _mutes(sc) -> list[dict]:
    return [e["args"][0] for e in sc.get_received() if e["name"] in ("meeting.mute_you", "meeting.mute")]


def test_mute_person_service_refusals(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make, starts_at=soon())
    stranger = make.user(name="Stan Stranger")   # not a member of the private room
    hands.mute_person(chair, meeting.id, user_id=ann.id)   # allowed: no error, nothing written
    with pytest.raises(Forbidden, match="Only the chair"):
        hands.mute_person(ann, meeting.id, user_id=bob.id)
    with pytest.raises(Invalid, match="Choose whose microphone"):
        hands.mute_person(chair, meeting.id)
    with pytest.raises(Invalid, match="own Mute button"):
        hands.mute_person(chair, meeting.id, user_id=chair.id)
    for bad in (999_999, stranger.id):
        with pytest.raises(Invalid, match="Nobody with that id"):
            hands.mute_person(chair, meeting.id, user_id=bad)
    for bad in ("abc", -3, True, {"x": 1}):
        with pytest.raises(Invalid):
            hands.mute_person(chair, meeting.id, user_id=bad)
    with pytest.raises(Invalid, match="Nobody has that number"):
        hands.mute_person(chair, meeting.id, participant=42)
    attendance.remove_participant(chair, meeting.id, user_id=bob.id)
    with pytest.raises(Invalid, match="Nobody with that id"):
        hands.mute_person(chair, meeting.id, user_id=bob.id)
    minutes.end_with_minutes(chair, meeting.id)
    with pytest.raises(Forbidden, match="has ended"):
        hands.mute_person(chair, meeting.id, user_id=ann.id)


def test_socket_mute_reaches_only_that_person(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make, starts_at=soon())
    sc_chair, _ = joined(app, chair, meeting.id)
    sc_ann, _ = joined(app, ann, meeting.id)
    sc_ann2, _ = joined(app, ann, meeting.id)   # Ann's second page (a phone) is her too
    sc_bob, _ = joined(app, bob, meeting.id)
    for sc in (sc_chair, sc_ann, sc_ann2, sc_bob):
        sc.get_received()
    # a participant may not mute someone; nobody hears of the attempt
    no = sc_bob.emit("meeting_mute", {"meeting_id": meeting.id, "user_id": ann.id}, callback=True)
    assert no["ok"] is False and no["error"]["code"] == "forbidden"
    assert "Only the chair" in no["error"]["message"]
    assert _mutes(sc_ann) == []
    ok = sc_chair.emit("meeting_mute", {"meeting_id": meeting.id, "user_id": ann.id}, callback=True)
    assert ok["ok"] is True, ok
    for sc in (sc_ann, sc_ann2):
        got = _mutes(sc)
        assert got == [{"meeting_id": meeting.id,
                        "message": "The chair muted your microphone. Unmute when you want to speak."}]
    assert _mutes(sc_bob) == [] and _mutes(sc_chair) == []
    # bad ids: a clear refusal in the ack, no 500, nobody told
    for bad, words in (({"user_id": "nobody"}, "user_id"), ({"user_id": 999_999}, "Nobody with that id"),
                       ({}, "Choose whose microphone"), ({"user_id": chair.id}, "own Mute button"),
                       ({"participant": 7}, "Nobody has that number"), ({"meeting_id": 999_999, "user_id": ann.id}, "Meeting not found")):
        ack = sc_chair.emit("meeting_mute", {"meeting_id": meeting.id, **bad}, callback=True)
        assert ack["ok"] is False and ack["error"]["code"] in ("invalid", "not_found"), (bad, ack)
        assert words in ack["error"]["message"], (bad, ack)
    assert _mutes(sc_ann) == [] and _mutes(sc_bob) == []
    # someone who cannot see the meeting cannot even ask
    outsider = make.user(name="Out Sider")
    so = sock(app, login_client(app, outsider))
    ack = so.emit("meeting_mute", {"meeting_id": meeting.id, "user_id": ann.id}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] in ("not_found", "forbidden")
    assert _mutes(sc_ann) == []


def test_non_attributed_chair_mutes_by_number_without_naming_anyone(app, make):
    owner, zeb, phil = make.user(name="Olive Owner"), make.user(name="Zeb Quill"), make.user(name="Phil Stop")
    room = make.room(owner, members=[zeb, phil])
    trust_settings.set_non_attributed(owner, room.id, True)
    meeting = schedule.schedule_meeting(owner, room.id, title="Plenary", starts_at=soon(), chairs=[zeb.id])
    zs, _ = joined(app, zeb, meeting.id)
    ps, pst = joined(app, phil, meeting.id)
    assert pst["me"]["sees_names"] is False
    db.begin_write()
    pseudonyms.assign(meeting, [phil.id])
    db.session.commit()
    number = pseudonyms.number(meeting, phil.id)
    assert number is not None
    ps.get_received(), zs.get_received()
    ok = zs.emit("meeting_mute", {"meeting_id": meeting.id, "participant": number}, callback=True)
    assert ok["ok"], ok
    got = _mutes(ps)
    assert len(got) == 1 and got[0]["message"].startswith("The chair muted your microphone")
    assert "Zeb" not in str(got) and "Phil" not in str(got)
    assert _mutes(zs) == []
