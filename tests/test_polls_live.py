"""Polls live (issue 13): tallies over Socket.IO only to those who may see the results, and no voter of an
anonymous poll named or identified in any response, event, search hit, e-mail or export, to anyone."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from collab import tasks
from collab.extensions import db
from rooms import services as rs
from rooms import trust_settings
from rooms.polls import services as polls
from tests.conftest import bearer
from tests.live_support import Collector, login_client, sock
from tests.test_search_support import search_ids, settle


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


@pytest.fixture
def w(make):
    org = make.org()
    owner = make.user(org=org, name="Olive Owner")
    mod = make.user(org=org, name="Mo Moderator")
    voter = make.user(org=org, name="Veronica Quillwhistle", email="veronica.quillwhistle@example.org")
    other = make.user(org=org, name="Ned Nonvoter")
    room = make.room(owner, members=[voter, other], moderator=[mod])
    return dict(owner=owner, mod=mod, voter=voter, other=other, room=room)


def follow(app, user, room) -> Collector:
    c = Collector(sock(app, login_client(app, user)))
    assert c.sc.emit("subscribe", {"room_id": room.id}, callback=True)["ok"]
    return c


def test_results_always_tally_reaches_the_room(app, w):
    p = polls.create_poll(w["owner"], w["room"].id, question="Q", kind="single", options=["A", "B"])
    other = follow(app, w["other"], w["room"])
    polls.vote(w["voter"], p.id, choices=[1])
    got = other.wait("poll.tally")
    assert got and got["results"]["totals"] == [0, 1] and got["poll_id"] == p.id
    assert other.wait("poll.voted")["voters"] == 1


def test_after_vote_tally_goes_to_voters_only(app, w):
    p = polls.create_poll(w["owner"], w["room"].id, question="Q", kind="single", options=["A", "B"],
                          results="after_vote")
    voter, other, mod = (follow(app, w[k], w["room"]) for k in ("voter", "other", "mod"))
    polls.vote(w["voter"], p.id, choices=[0])
    assert voter.wait("poll.tally")["results"]["totals"] == [1, 0]
    assert other.wait("poll.voted")["voters"] == 1   # told someone voted ...
    assert mod.wait("poll.voted")
    assert other.named("poll.tally") == [] and mod.named("poll.tally") == []   # ... never the tally
    # a later vote: both voters get the new tally, the non-voter still nothing
    polls.vote(w["mod"], p.id, choices=[1])
    assert voter.wait("poll.tally", lambda d: d["results"]["voters"] == 2)
    assert mod.wait("poll.tally", lambda d: d["results"]["voters"] == 2)
    other.wait("poll.voted", lambda d: d["voters"] == 2)
    assert other.named("poll.tally") == []


def test_after_close_tally_reaches_nobody_until_closed(app, w):
    p = polls.create_poll(w["owner"], w["room"].id, question="Q", kind="single", options=["A", "B"],
                          results="after_close")
    voter, owner = follow(app, w["voter"], w["room"]), follow(app, w["owner"], w["room"])
    polls.vote(w["voter"], p.id, choices=[0])
    assert owner.wait("poll.voted") and voter.wait("poll.voted")
    assert voter.named("poll.tally") == [] and owner.named("poll.tally") == []
    replay = owner.sc.emit("sync", {"room_id": w["room"].id, "after_seq": 0}, callback=True)
    assert '"totals"' not in json.dumps(replay)
    polls.close(w["owner"], p.id, outcome="A it is.")
    closed = voter.wait("poll.closed")
    assert closed["results"]["totals"] == [1, 0] and closed["poll"]["outcome"] == "A it is."


def _people(obj) -> set[int]:
    """Account ids anywhere a JSON value carries a person: `user_id`, or an object with an id and a name."""
    found: set[int] = set()
    if isinstance(obj, dict):
        if isinstance(obj.get("user_id"), int):
            found.add(obj["user_id"])
        if isinstance(obj.get("id"), int) and "name" in obj:
            found.add(obj["id"])
        for v in obj.values():
            found |= _people(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= _people(v)
    return found


def _leaks(text: str, voter) -> list[str]:
    found = [n for n in (voter.name, "Quillwhistle", voter.email) if n in text]
    try:
        if voter.id in _people(json.loads(text)):
            found.append(f"account id {voter.id}")
    except ValueError:
        pass
    return found


def _about_poll(events: list, p) -> list:
    """The events a poll caused: poll.*, and its thread's posts (the outcome)."""
    out = []
    for e in events:
        name = e.get("name") or e.get("event")
        data = (e.get("args") or [None])[0] if "args" in e else e.get("data")
        if name.startswith("poll.") or (name in ("post.created", "thread.created") and isinstance(data, dict)
                                        and (data.get("post") or {}).get("thread_id") == p.thread_id):
            out.append(e)
    return out


@pytest.mark.parametrize("non_attributed", [False, True])
def test_no_anonymous_voter_is_identified_anywhere(app, make, w, smtp, non_attributed):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
    away = make.user(name="Fay Faraway")   # offline: the outcome's mention reaches her by e-mail
    rs.add_member(w["owner"], w["room"].id, user_id=away.id, role="member")
    if non_attributed:
        trust_settings.set_non_attributed(w["owner"], w["room"].id, True)
    watchers = {k: follow(app, w[k], w["room"]) for k in ("owner", "mod", "other")}
    p = polls.create_poll(w["owner"], w["room"].id, question="Secret ballot on overtime", kind="proposal",
                          anonymous=True, results="always")
    tv = make.token(w["voter"])
    c = app.test_client()
    r = c.post(f"/api/v1/polls/{p.id}/votes", headers=bearer(tv),
               json={"choices": [3], "reason": "zorblequartz reasons of my own"})
    assert r.status_code == 201
    polls.close(w["mod"], p.id, outcome="Blocked; we talk again, @Fay Faraway.")
    tasks.settle(app)
    assert smtp.wait(1) and "Blocked" in smtp.messages[0]["body"]
    texts = []
    for k in ("owner", "mod", "other", "voter"):   # every response: moderators and the owner included
        body = c.get(f"/api/v1/polls/{p.id}", headers=bearer(make.token(w[k]))).get_data(as_text=True)
        assert "voters" not in json.loads(body) or json.loads(body)["voters"] is None
        if k != "voter":
            texts.append(body)
        texts.append(c.get(f"/api/v1/threads/{p.thread_id}", headers=bearer(make.token(w[k]))).get_data(as_text=True))
    texts.append(r.get_data(as_text=True))
    for k, col in watchers.items():   # every live event the poll caused, live and replayed
        live = _about_poll(col.pull(), p)
        assert any(e["name"] == "poll.tally" for e in live) and any(e["name"] == "poll.closed" for e in live)
        texts.append(json.dumps(live))
        replay = col.sc.emit("sync", {"room_id": w["room"].id, "after_seq": 0}, callback=True)
        replayed = _about_poll(replay["events"], p)
        assert {e["event"] for e in replayed} >= {"poll.created", "poll.closed", "post.created"}
        texts.append(json.dumps(replayed))
    settle(app)
    for k in ("owner", "mod", "other"):   # search: the reason is never indexed, the poll's thread names no voter
        assert search_ids(w[k], "zorblequartz") == []
    texts.append(json.dumps(smtp.messages))
    leaked = {i: _leaks(t, w["voter"]) for i, t in enumerate(texts)}
    assert not {i: v for i, v in leaked.items() if v}, leaked
    assert all("zorblequartz" not in t for t in texts[:-1] if '"my_vote"' not in t)
    # the stored row still has the account (one vote each), only the service never shows it
    from rooms.polls.models import PollVote
    assert db.session.scalar(select(PollVote.user_id).where(PollVote.poll_id == p.id)) == w["voter"].id
    assert rs.get_room(w["owner"], w["room"].id).last_seq > 0


def test_a_hidden_poll_sends_no_text_or_tally_to_the_room(app, w):
    from rooms import moderation

    p = polls.create_poll(w["owner"], w["room"].id, question="Wombatquestion?", kind="single",
                          options=["A", "B"])
    moderation.hide_post(w["mod"], p.post_id, "Off topic")
    other = follow(app, w["other"], w["room"])
    polls.vote(w["owner"], p.id, choices=[1])
    polls.close(w["mod"], p.id, outcome="Wombatoutcome")
    closed = other.wait("poll.closed")
    assert closed["poll"] == {"id": p.id, "room_id": w["room"].id, "thread_id": p.thread_id, "hidden": True,
                              "closed": True} and closed["results"] is None
    text = json.dumps(other.pull())
    assert other.named("poll.tally") == [] and "Wombatquestion" not in text
