"""Votes over Socket.IO (issue 13): `idea.vote`, `idea.withdraw` and `poll.vote` call the same services
as the pages and the JSON API, answer through the ack with the result or a clear error, and follow
the same rules (one vote each, budgets, closed polls, observers, outsiders told "not found" exactly as
for something that does not exist). Live tallies: a watcher who may not see a poll's results gets no
tally; tallies are coalesced by commit order and the last one equals the stored tally."""
from __future__ import annotations

import pytest

from collab import events, tasks
from collab.extensions import db
from rooms.ideas import services as ideas
from rooms.live import coalesce
from rooms.polls import services as polls
from tests.live_support import Collector, login_client, sock


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
    voter = make.user(org=org, name="Vera Voter")
    other = make.user(org=org, name="Ned Nonvoter")
    observer = make.user(org=org, name="Obi Observer")
    outsider = make.user(org=org, name="Otto Outsider")
    room = make.room(owner, members=[voter, other], observer=[observer])
    ideas.update_settings(owner, room.id, enabled=True, vote_budget=1)
    return dict(owner=owner, voter=voter, other=other, observer=observer, outsider=outsider, room=room,
                make=make)


def follow(app, user, room) -> Collector:
    c = Collector(sock(app, login_client(app, user)))
    assert c.sc.emit("subscribe", {"room_id": room.id}, callback=True)["ok"]
    return c


def by_token(app, make, user) -> Collector:
    return Collector(sock(app, token=make.token(user)))


def test_idea_votes_over_socket_follow_every_rule(app, w):
    first = ideas.create_idea(w["owner"], w["room"].id, title="Shorter handover forms", body="One page.")
    second = ideas.create_idea(w["owner"], w["room"].id, title="Body cameras on charge", body="Docks.")
    watcher = follow(app, w["other"], w["room"])
    v = by_token(app, w["make"], w["voter"])
    ack = v.sc.emit("idea.vote", {"idea_id": first.id}, callback=True)
    assert ack["ok"] and ack["idea"]["votes"] == 1 and ack["idea"]["my_vote"] is True
    assert ack["idea"]["budget"] == {"total": 1, "used": 1, "left": 0}
    assert watcher.wait("idea.voted", lambda d: d["idea_id"] == first.id)["votes"] == 1
    again = v.sc.emit("idea.vote", {"idea_id": first.id}, callback=True)
    assert again["ok"] is False and again["error"]["code"] == "conflict" and "already voted" in again["error"]["message"]
    over = v.sc.emit("idea.vote", {"idea_id": second.id}, callback=True)
    assert over["error"]["code"] == "conflict" and "all 1 of your votes" in over["error"]["message"]
    bad = v.sc.emit("idea.vote", {"idea_id": "one"}, callback=True)
    assert bad["error"]["code"] == "invalid" and bad["error"]["field"] == "idea_id"
    back = v.sc.emit("idea.withdraw", {"idea_id": first.id}, callback=True)
    assert back["ok"] and back["idea"]["votes"] == 0 and back["idea"]["budget"]["left"] == 1
    assert v.sc.emit("idea.withdraw", {"idea_id": first.id}, callback=True)["error"]["code"] == "conflict"
    # an observer may read but not vote; an outsider is told "not found", as for no idea at all
    obs = by_token(app, w["make"], w["observer"]).sc.emit("idea.vote", {"idea_id": first.id}, callback=True)
    assert obs["error"]["code"] == "forbidden"
    out = by_token(app, w["make"], w["outsider"])
    real = out.sc.emit("idea.vote", {"idea_id": first.id}, callback=True)
    missing = out.sc.emit("idea.vote", {"idea_id": 999_999}, callback=True)
    assert real["error"]["code"] == "not_found" and real["error"] == missing["error"]
    assert ideas.get_idea(w["owner"], first.id).vote_count == 0 and ideas.get_idea(w["owner"], second.id).vote_count == 0


def test_poll_votes_over_socket_and_who_hears_the_tally(app, w):
    always = polls.create_poll(w["owner"], w["room"].id, question="Which shift?", kind="single",
                               options=["Earlies", "Lates"])
    hidden = polls.create_poll(w["owner"], w["room"].id, question="Rest days?", kind="single",
                               options=["Yes", "No"], results="after_close")
    after = polls.create_poll(w["owner"], w["room"].id, question="Uniform?", kind="single",
                              options=["Yes", "No"], results="after_vote")
    watcher = follow(app, w["other"], w["room"])
    observer = follow(app, w["observer"], w["room"])
    v = by_token(app, w["make"], w["voter"])
    ack = v.sc.emit("poll.vote", {"poll_id": always.id, "choices": [1]}, callback=True)
    assert ack["ok"] and ack["created"] is True and ack["poll"]["my_vote"] == {"choices": [1], "reason": None}
    assert ack["poll"]["results"]["totals"] == [0, 1]
    changed = v.sc.emit("poll.vote", {"poll_id": always.id, "choices": [0]}, callback=True)
    assert changed["ok"] and changed["created"] is False and changed["poll"]["results"]["totals"] == [1, 0]
    # an "always" tally reaches every reader of the room, observers included; the last one is the stored one
    assert watcher.wait("poll.tally", lambda d: d["poll_id"] == always.id and d["results"]["totals"] == [1, 0])
    assert observer.wait("poll.tally", lambda d: d["poll_id"] == always.id and d["results"]["totals"] == [1, 0])
    # hidden until close: the voter's ack and every watcher carry no tally, only that someone voted
    h = v.sc.emit("poll.vote", {"poll_id": hidden.id, "choices": [0]}, callback=True)
    assert h["ok"] and h["poll"]["results"] is None
    assert watcher.wait("poll.voted", lambda d: d["poll_id"] == hidden.id)["voters"] == 1
    # after voting: the voter sees it, a watcher who has not voted gets no tally
    a = v.sc.emit("poll.vote", {"poll_id": after.id, "choices": [1]}, callback=True)
    assert a["poll"]["results"]["totals"] == [0, 1]
    assert watcher.wait("poll.voted", lambda d: d["poll_id"] == after.id)
    tasks.settle(app)
    assert all(d["poll_id"] == always.id for d in watcher.named("poll.tally") + observer.named("poll.tally"))
    # refusals: bad ballots, observers, outsiders (as for no poll), closed polls
    bad = v.sc.emit("poll.vote", {"poll_id": always.id, "choices": [0, 1]}, callback=True)
    assert bad["ok"] is False and bad["error"]["code"] == "invalid" and bad["error"]["field"] == "choices"
    assert observer.sc.emit("poll.vote", {"poll_id": always.id, "choices": [0]},
                            callback=True)["error"]["code"] == "forbidden"
    out = by_token(app, w["make"], w["outsider"])
    real = out.sc.emit("poll.vote", {"poll_id": always.id, "choices": [0]}, callback=True)
    assert real["error"]["code"] == "not_found"
    assert real["error"] == out.sc.emit("poll.vote", {"poll_id": 999_999, "choices": [0]}, callback=True)["error"]
    polls.close(w["owner"], always.id, outcome="Earlies it is.")
    shut = v.sc.emit("poll.vote", {"poll_id": always.id, "choices": [1]}, callback=True)
    assert shut["error"]["code"] == "conflict" and "closed" in shut["error"]["message"]
    assert polls.tally(polls.get_poll(w["owner"], always.id))["totals"] == [1, 0]


def test_counts_are_coalesced_by_commit_order_and_the_last_is_the_stored_one(app, w, monkeypatch):
    p = polls.create_poll(w["owner"], w["room"].id, question="Which shift?", kind="single",
                          options=["Earlies", "Lates"])
    watcher = follow(app, w["other"], w["room"])
    monkeypatch.setattr(coalesce, "EVERY", 0.3)

    def tally(order: int, totals: list[int]) -> None:   # what a vote's commit hands the listeners
        for fn in events._listeners:
            fn(events.Event("poll.tally", {"poll_id": p.id, "thread_id": p.thread_id,
                                           "results": {"totals": totals, "voters": sum(totals)}},
                            None, {"to_room": w["room"].id, "order": order}))

    tally(10**9, [1, 0])   # goes at once
    tally(10**9 + 2, [2, 1])   # a later commit: waits for its turn, or goes at once if the turn has come
    tally(10**9 + 1, [2, 0])   # committed before 12, heard after it: never sent
    tasks.settle(app)
    assert watcher.wait("poll.tally", lambda d: d["results"]["totals"] == [2, 1])
    assert [d["results"]["totals"] for d in watcher.named("poll.tally")] == [[1, 0], [2, 1]]

    # real votes in a burst (another poll): at most one tally per vote, never an older after a newer,
    # and the last equals the stored tally
    q = polls.create_poll(w["owner"], w["room"].id, question="Which day?", kind="single", options=["Mon", "Tue"])
    for i, u in enumerate([w["voter"], w["other"], w["owner"]]):
        polls.vote(u, q.id, choices=[i % 2])
    stored = polls.tally(polls.get_poll(w["owner"], q.id))
    assert watcher.wait("poll.tally", lambda d: d["poll_id"] == q.id and d["results"]["voters"] == 3)
    tasks.settle(app)
    seen = [d["results"] for d in watcher.named("poll.tally") if d["poll_id"] == q.id]
    assert 1 <= len(seen) <= 3 and [s["voters"] for s in seen] == sorted(s["voters"] for s in seen)
    assert seen[-1]["totals"] == stored["totals"] == [2, 1]
    voted = [d["voters"] for d in watcher.named("poll.voted") if d["poll_id"] == q.id]
    assert 1 <= len(voted) <= 3 and voted == sorted(voted) and voted[-1] == 3
    # an idea's count likewise: the last idea.voted carries the stored count
    idea = ideas.create_idea(w["owner"], w["room"].id, title="Quieter radios", body="Please.")
    for u in (w["voter"], w["other"], w["owner"]):
        ideas.vote(u, idea.id)
    ideas.withdraw(w["other"], idea.id)
    assert watcher.wait("idea.voted", lambda d: d["idea_id"] == idea.id and d["votes"] == 2)
    tasks.settle(app)
    counts = [d["votes"] for d in watcher.named("idea.voted") if d["idea_id"] == idea.id]
    assert 1 <= len(counts) <= 4 and counts[-1] == ideas.get_idea(w["owner"], idea.id).vote_count == 2
    db.session.commit()


def test_a_persons_poll_and_idea_votes_are_in_their_export_and_nobody_elses(app, w):
    import io
    import json
    import zipfile

    named = polls.create_poll(w["owner"], w["room"].id, question="Which shift?", kind="single",
                              options=["Earlies", "Lates"])
    secret = polls.create_poll(w["owner"], w["room"].id, question="Secret ballot", kind="proposal", anonymous=True)
    idea = ideas.create_idea(w["owner"], w["room"].id, title="Shorter handover forms", body="One page.")
    polls.vote(w["voter"], named.id, choices=[1])
    polls.vote(w["voter"], secret.id, choices=[3], reason="my own quibblewort reason")
    polls.vote(w["other"], named.id, choices=[0])
    polls.vote(w["other"], secret.id, choices=[0])
    ideas.vote(w["voter"], idea.id)
    ideas.vote(w["other"], idea.id)

    def export(user) -> dict:
        r = login_client(app, user).post("/account/export")
        z = zipfile.ZipFile(io.BytesIO(r.data))
        return {n: z.read(n).decode() for n in ("poll_votes.json", "idea_votes.json", "README.txt")}

    mine = export(w["voter"])
    votes = json.loads(mine["poll_votes.json"])
    assert [(v["poll_id"], v["choices"], v["anonymous"]) for v in votes] == [(named.id, [1], False), (secret.id, [3], True)]
    assert votes[0]["question"] == "Which shift?" and votes[0]["options"] == ["Earlies", "Lates"]
    assert votes[1]["reason"] == "my own quibblewort reason" and votes[1]["options"][3] == "Block"
    assert [(v["idea_id"], v["idea"]) for v in json.loads(mine["idea_votes.json"])] == \
        [(idea.id, "Shorter handover forms")]
    assert "poll_votes.json" in mine["README.txt"]
    theirs = export(w["other"])
    assert [(v["poll_id"], v["choices"]) for v in json.loads(theirs["poll_votes.json"])] == \
        [(named.id, [0]), (secret.id, [0])]
    for text in (mine["poll_votes.json"], mine["idea_votes.json"]):   # nobody else's identity or ballot
        assert "Ned Nonvoter" not in text and str(w["other"].id) not in json.dumps(
            [v.get("user_id") for v in json.loads(text)])
        assert "user" not in text
    assert "quibblewort" not in theirs["poll_votes.json"]
