"""The live state of a meeting (issue 6): slides followed, hands in order, the chair handing
over, the meeting-room device and its head-count, through the services and the Socket.IO events
(reconnects restore everything; refusals are clear)."""
from __future__ import annotations

import time

import pytest

from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms.meetings import access, hands, minutes, schedule, services, state
from tests.live_support import login_client, sock
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    joined,
    last_state,
    ready_deck,
    settle_live,
    setup_meeting,
    soon,
)

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
    hands.raise_hand(bob, meeting.id)
    time.sleep(0.01)
    hands.raise_hand(ann, meeting.id)
    hands.raise_hand(bob, meeting.id)
    hands.add_room_hand(chair, meeting.id, name="Carol in the room")
    names = [h["name"] for h in state.get_state(ann, meeting.id)["hands"]]
    assert names == ["Bob Baker", "Ann Able", "Carol in the room"]
    raised = state.get_state(chair, meeting.id)["hands"]
    hands.give_floor(chair, meeting.id, hand_id=raised[0]["id"])
    assert state.get_state(chair, meeting.id)["hands"][0]["floor"] is True
    with pytest.raises(Forbidden):
        hands.lower_hand(ann, meeting.id, hand_id=raised[0]["id"])
    hands.lower_hand(ann, meeting.id)
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


# -- Socket.IO -------------------------------------------------------------------------------------------------

def test_socket_slide_follow_reconnect_and_refusals(app, make):
    chair, ann, bob, _room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=3)
    sc_chair, st = joined(app, chair, meeting.id)
    assert st["me"]["chair"] is True and st["decks"][0]["status"] == "ready"
    sc_ann, _ = joined(app, ann, meeting.id)
    sc_bob, _ = joined(app, bob, meeting.id)
    sc_ann.get_received(), sc_bob.get_received()
    ack = sc_chair.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 2}, callback=True)
    assert ack["ok"], ack
    for sc in (sc_ann, sc_bob):   # only that it arrives; the 300 ms target is measured by bench/slides.py
        got = last_state(sc)
        assert got and (got["deck_id"], got["page"]) == (deck.id, 2)
    # a participant cannot drive; the refusal is an ack and an error event
    ack = sc_ann.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 3}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    # hands over the socket, seen by everyone in order
    sc_bob.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    assert [h["name"] for h in last_state(sc_chair)["hands"]] == ["Bob Baker", "Ann Able"]
    # reconnecting gets the current state at once
    sc_ann.disconnect()
    _sc_ann2, st2 = joined(app, ann, meeting.id)
    assert (st2["deck_id"], st2["page"]) == (deck.id, 2) and next(h["name"] for h in st2["hands"]) == "Bob Baker"
    # outsiders get 404 and nothing
    outsider = make.user()
    sc_out = sock(app, login_client(app, outsider))
    ack = sc_out.emit("meeting_join", {"meeting_id": meeting.id}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    sc_chair.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 3}, callback=True)
    assert last_state(sc_out) is None


def test_socket_votes_give_floor_and_remove(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make, starts_at=soon())
    sc_chair, _ = joined(app, chair, meeting.id)
    sc_ann, _ = joined(app, ann, meeting.id)
    sc_bob, _ = joined(app, bob, meeting.id)
    ack = sc_chair.emit("km_draft", {"meeting_id": meeting.id, "text": "We support the pilot"}, callback=True)
    kid = ack["key_message_id"]
    sc_chair.emit("km_open", {"meeting_id": meeting.id, "key_message_id": kid}, callback=True)
    a = sc_ann.emit("km_vote", {"meeting_id": meeting.id, "key_message_id": kid, "choice": "agree"}, callback=True)
    assert a["ok"] and a["my_vote"]["choice"] == "agree"
    assert last_state(sc_bob)["key_messages"][0]["tally"]["total"]["agree"] == 1
    sc_chair.emit("km_close", {"meeting_id": meeting.id, "key_message_id": kid, "outcome": "deferred"},
                  callback=True)
    late = sc_bob.emit("km_vote", {"meeting_id": meeting.id, "key_message_id": kid, "choice": "agree"},
                       callback=True)
    assert late["ok"] is False and late["error"]["code"] == "vote_closed"
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    hid = last_state(sc_chair)["hands"][0]["id"]
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
    sc_chair, _ = joined(app, chair, meeting.id)
    sc_ann, _ = joined(app, ann, meeting.id)
    sc_bob, _ = joined(app, bob, meeting.id)
    other = schedule.schedule_meeting(chair, room.id, title="Another meeting", starts_at="2030-01-11T10:00:00Z")
    sc_other, _ = joined(app, ann, other.id)   # the same person in another meeting's page hears nothing of this one
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
    hands = last_state(sc_chair)["hands"]
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
    meeting = schedule.schedule_meeting(chair, room.id, title="Two chairs", starts_at=soon(),
                                        chairs=[chair.id, deputy.id])
    deck = ready_deck(chair, meeting, pages=3)
    sc_chair, _ = joined(app, chair, meeting.id)
    sc_ann, _ = joined(app, ann, meeting.id)
    sc_bob, _ = joined(app, bob, meeting.id)
    services.join(ann, meeting.id)   # both join the call (their media tokens): they attend
    services.join(bob, meeting.id)
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
    # Ann's page closes (her span in the call ends) and she comes back: everything is as it was
    sc_ann.emit("meeting_leave", {"meeting_id": meeting.id}, callback=True)
    sc_ann.disconnect()
    gone = [(a["name"], a["present"]) for a in state.get_state(chair, meeting.id)["attendance"]["remote"]]
    assert ("Ann Able", False) in gone and ("Bob Baker", True) in gone
    sc_ann2, st = joined(app, ann, meeting.id)          # a locked meeting still lets back those who were in
    assert [a["present"] for a in st["attendance"]["remote"] if a["name"] == "Ann Able"] == [False]
    services.join(ann, meeting.id)                      # back in the call within two minutes: the same span
    st = sc_ann2.emit("meeting_state", {"meeting_id": meeting.id}, callback=True)["state"]
    assert (st["deck_id"], st["page"], st["locked"]) == (deck.id, 2, True)
    km = st["key_messages"][0]
    assert km["status"] == "open" and km["tally"]["total"] == {"agree": 7, "disagree": 3, "abstain": 1}
    assert km["tally"]["room"] == {"agree": 7, "disagree": 2, "abstain": 1} and km["tally"]["comments"] == ["Not yet"]
    assert st["me"]["votes"][str(kid)] == {"choice": "disagree", "comment": "Not yet"}
    assert [c["body"] for c in st["chat"]] == ["Can we see slide 3 again?"]
    remote = sorted((a["name"], a["left_at"] is not None) for a in st["attendance"]["remote"])
    assert remote == [("Ann Able", False), ("Bob Baker", False)]
    assert {a["name"] for a in st["attendance"]["in_room"]} == {"Pat in the room", "Bob Baker"}
    assert all(a["joined_at"] for a in st["attendance"]["remote"])
    # the first chair drops; the second (a named chair, not a moderator) takes over the slides and the vote
    sc_chair.disconnect()
    sc_dep, st = joined(app, deputy, meeting.id)
    assert st["me"]["chair"] is True and (st["deck_id"], st["page"]) == (deck.id, 2)
    sc_ann2.get_received()
    assert sc_dep.emit("meeting_slide", {"meeting_id": meeting.id, "deck_id": deck.id, "page": 3},
                       callback=True)["ok"]
    assert last_state(sc_ann2)["page"] == 3
    closed = sc_dep.emit("km_close", {"meeting_id": meeting.id, "key_message_id": kid, "outcome": "not_agreed"},
                         callback=True)
    assert closed["ok"], closed
    assert last_state(sc_ann2)["key_messages"][0]["outcome"] == "not_agreed"


def test_meeting_room_device_head_count_and_the_chair_lowering_hands(app, make):
    """Only a chair registers the meeting-room device, and its head-count is at most the room's size
    (here three members), so nobody can put 500 people in the minutes."""
    chair, ann, bob, _room, meeting = setup_meeting(make, starts_at=soon())
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
    sc_ann, _ = joined(app, ann, meeting.id)
    no = sc_ann.emit("meeting_head_count", {"meeting_id": meeting.id, "head_count": 1}, callback=True)
    assert no["ok"] is False and no["error"]["code"] == "forbidden"
    device = state.get_state(chair, meeting.id)["attendance"]["device"]
    assert [(d["name"], d["head_count"]) for d in device] == [("Meeting room", 3)]
    # the chair lowers anyone's hand, a room hand included; others only their own
    sc_ann.emit("meeting_hand", {"meeting_id": meeting.id, "up": True}, callback=True)
    hands.add_room_hand(chair, meeting.id, name="Carol at the table")
    raised = state.get_state(chair, meeting.id)["hands"]
    sc_chair, _ = joined(app, chair, meeting.id)
    for h in raised:
        assert sc_chair.emit("meeting_hand_lower", {"meeting_id": meeting.id, "hand_id": h["id"]},
                             callback=True)["ok"]
    assert state.get_state(ann, meeting.id)["hands"] == []
