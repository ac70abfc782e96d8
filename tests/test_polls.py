"""Polls and proposals (issue 13): every rule of the services and the JSON API, on SQLite and PostgreSQL.
Each refusal is checked to leave the poll as it was (nothing changed)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from collab.db import utcnow
from collab.errors import Conflict, Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import policy
from rooms import services as rs
from rooms.models import Post
from rooms.polls import services as polls
from rooms.polls import tally
from rooms.polls.models import Poll, PollVote
from tests.conftest import bearer


@pytest.fixture
def w(make):
    org = make.org()
    owner, mod, alice, bob, carol, obs = (make.user(org=org, name=n) for n in
                                          ("Olive Owner", "Mo Moderator", "Alice Archer", "Bob Baker",
                                           "Carol Cole", "Oscar Observer"))
    outsider = make.user(org=org, name="Xavier Outsider")
    room = make.room(owner, members=[alice, bob, carol], moderator=[mod], observer=[obs])
    return dict(owner=owner, mod=mod, alice=alice, bob=bob, carol=carol, obs=obs, outsider=outsider, room=room)


def new(w, who="alice", **kw):
    args = dict(question="Where shall we meet?", kind="single", options=["Hall", "Canteen", "Online"])
    args.update(kw)
    return polls.create_poll(w[who], w["room"].id, **args)


def votes(poll) -> list[tuple[int, str]]:
    db.session.rollback()
    return [(v.user_id, v.choices) for v in db.session.scalars(select(PollVote).where(PollVote.poll_id == poll.id)
                                                                 .order_by(PollVote.user_id))]


def refused(exc, fn, *a, match="", **kw):
    with pytest.raises(exc) as e:
        fn(*a, **kw)
    assert match in e.value.message, e.value.message
    return e.value


# -- creation ----------------------------------------------------------------------------------------

def test_a_poll_lives_in_a_thread_with_its_question_and_options(app, w):
    p = new(w)
    thread = rs.get_thread(w["bob"], p.thread_id)
    opening = db.session.get(Post, p.post_id)
    assert thread.title == "Where shall we meet?" and opening.thread_id == thread.id and opening.parent_id is None
    assert "Canteen" in opening.body and "Single choice" in opening.body
    assert p.created_by_id == w["alice"].id and p.results == "always" and not p.anonymous


@pytest.mark.parametrize("kw,field,match", [
    (dict(kind="poll"), "kind", "Kind"),
    (dict(options=["Only one"]), "options", "at least two"),
    (dict(options=["Hall", "hall"]), "options", "the same"),
    (dict(options="Hall, Canteen"), "options", "list"),
    (dict(results="never"), "results", "Results"),
    (dict(anonymous="yes"), "anonymous", "true or false"),
    (dict(quorum=0), "quorum", "Quorum"),
    (dict(dots=5), "dots", "Only dot votes"),
    (dict(kind="dot", dots=1000), "dots", "Dots"),
    (dict(closes_at="yesterday"), "closes_at", "ISO 8601"),
    (dict(closes_at="2001-01-01T00:00:00Z"), "closes_at", "future"),
    (dict(kind="proposal", options=["Yes", "No"]), "options", "Agree, Abstain"),
    (dict(question=""), "question", ""),
])
def test_bad_poll_settings_are_refused_and_nothing_is_written(app, w, kw, field, match):
    before = db.session.scalar(select(Post.id).order_by(Post.id.desc()).limit(1))
    err = refused(Invalid, new, w, match=match, **kw)
    assert err.field == field
    assert db.session.scalar(select(Poll.id)) is None
    assert db.session.scalar(select(Post.id).order_by(Post.id.desc()).limit(1)) == before


def test_observers_and_outsiders_cannot_create_polls(app, w):
    refused(Forbidden, new, w, "obs")
    refused(NotFound, new, w, "outsider")
    assert db.session.scalar(select(Poll.id)) is None


def test_anonymity_results_kind_and_options_are_locked_at_creation(app, w):
    p = new(w, anonymous=True, results="after_close")
    for change in ({"anonymous": False}, {"results": "always"}, {"kind": "multiple"}, {"options": ["A", "B"]},
                   {"dots": 3}):
        refused(Conflict, polls.change_poll, w["alice"], p.id, change, match="locked")
        refused(Conflict, polls.change_poll, w["mod"], p.id, change, match="locked")
        refused(Forbidden, polls.change_poll, w["bob"], p.id, change)
    db.session.rollback()
    p = db.session.get(Poll, p.id)
    assert p.anonymous is True and p.results == "after_close" and p.kind == "single"
    later = utcnow() + timedelta(days=2)
    refused(Forbidden, polls.change_poll, w["bob"], p.id, {"closes_at": later.isoformat() + "Z"})
    assert polls.change_poll(w["alice"], p.id, {"closes_at": later.isoformat() + "Z"}).closes_at is not None


# -- voting --------------------------------------------------------------------------------------------

def test_one_vote_per_person_changeable_until_close(app, w):
    p = new(w)
    assert polls.vote(w["bob"], p.id, choices=[1])[1] is True
    assert polls.vote(w["bob"], p.id, choices=[2])[1] is False  # changed, not a second vote
    assert votes(p) == [(w["bob"].id, "[2]")]
    assert polls.tally(p)["totals"] == [0, 0, 1]
    polls.close(w["alice"], p.id, outcome="Online it is.")
    refused(Conflict, polls.vote, w["bob"], p.id, choices=[0], match="closed")
    refused(Conflict, polls.vote, w["carol"], p.id, choices=[0], match="closed")
    assert votes(p) == [(w["bob"].id, "[2]")]


def test_observers_and_outsiders_cannot_vote(app, w):
    p = new(w)
    refused(Forbidden, polls.vote, w["obs"], p.id, choices=[0])
    refused(NotFound, polls.vote, w["outsider"], p.id, choices=[0])
    assert votes(p) == []


@pytest.mark.parametrize("kind,options,extra,choices,match", [
    ("single", ["A", "B"], {}, [0, 1], "exactly one"),
    ("single", ["A", "B"], {}, [2], "no option 2"),
    ("single", ["A", "B"], {}, ["0"], "whole numbers"),
    ("single", ["A", "B"], {}, [], "non-empty"),
    ("multiple", ["A", "B", "C"], {}, [0, 0], "only once"),
    ("ranked", ["A", "B", "C"], {}, [0, 1, 1], "more than once"),
    ("ranked", ["A", "B", "C"], {}, [0, 1], "leaves out 1"),
    ("ranked", ["A", "B", "C"], {}, [0, 1, 3], "no option 3"),
    ("score", ["A", "B"], {}, [6, 0], "0 to 5"),
    ("score", ["A", "B"], {}, [-1, 0], "0 to 5"),
    ("score", ["A", "B"], {}, [3], "one number per option"),
    ("dot", ["A", "B"], {"dots": 8}, [5, 4], "9 dots: you have 8"),
    ("dot", ["A", "B"], {"dots": 8}, [0, 0], "at least one"),
    ("dot", ["A", "B"], {"dots": 8}, [-1, 9], "negative"),
    ("proposal", None, {}, [3], "block needs a reason"),
])
def test_bad_ballots_are_refused_clearly_and_nothing_changes(app, w, kind, options, extra, choices, match):
    p = new(w, kind=kind, options=options, **extra)
    good = {"single": [0], "multiple": [1], "ranked": [2, 1, 0], "score": [1, 2], "dot": [1, 1], "proposal": [0]}
    polls.vote(w["bob"], p.id, choices=good[kind])
    err = refused(Invalid, polls.vote, w["bob"], p.id, choices=choices, match=match)
    assert err.field in ("choices", "reason")
    assert votes(p) == [(w["bob"].id, json.dumps(good[kind]))]


def test_every_kind_is_counted(app, w):
    s = new(w, kind="score", options=["A", "B"])
    polls.vote(w["bob"], s.id, choices=[5, 1])
    polls.vote(w["carol"], s.id, choices=[2, 4])
    assert polls.tally(s) | {} == {"voters": 2, "means": [3.5, 2.5], "totals": [7, 5]}
    d = new(w, kind="dot", options=["A", "B", "C"])
    assert d.dots == 8  # the default budget
    polls.vote(w["bob"], d.id, choices=[8, 0, 0])
    polls.vote(w["carol"], d.id, choices=[1, 3, 4])
    assert polls.tally(d)["totals"] == [9, 3, 4]
    m = new(w, kind="multiple", options=["A", "B", "C"])
    polls.vote(w["bob"], m.id, choices=[2, 0])
    polls.vote(w["carol"], m.id, choices=[0])
    assert polls.tally(m)["totals"] == [2, 0, 1]
    pr = new(w, kind="proposal", options=None)
    polls.vote(w["bob"], pr.id, choices=[3], reason="It breaks the duty rota.")
    polls.vote(w["carol"], pr.id, choices=[0])
    assert polls.tally(pr)["totals"] == [1, 0, 0, 1]


def test_instant_runoff_shows_each_round():
    # 5 ballots over A, B, C: A 2, B 2, C 1 first preferences; C goes, its ballot moves to B.
    ballots = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 1, 0]]
    rounds, winner = tally.instant_runoff(ballots, 3)
    assert rounds == [{"counts": [2, 2, 1], "eliminated": 2}, {"counts": [2, 3, None], "eliminated": None}]
    assert winner == 1
    assert tally.instant_runoff([], 3) == ([{"counts": [0, 0, 0], "eliminated": None}], None)
    assert tally.instant_runoff([[0, 1]], 2)[1] == 0  # a majority in the first round


def test_ranked_poll_results_carry_the_rounds_and_quorum(app, w):
    p = new(w, kind="ranked", options=["A", "B", "C"], quorum=3)
    for who, ranking in (("bob", [0, 1, 2]), ("carol", [1, 2, 0])):
        polls.vote(w[who], p.id, choices=ranking)
    r = polls.view(w["alice"], p)["results"]
    assert r["quorum_reached"] is False and r["voters"] == 2 and r["rounds"][0]["counts"] == [1, 1, 0]
    polls.vote(w["alice"], p.id, choices=[1, 0, 2])
    r = polls.view(w["alice"], p)["results"]
    assert r["quorum_reached"] is True and r["winner"] == 1


# -- results visibility ------------------------------------------------------------------------------------

def test_results_after_vote_only_to_those_who_voted(app, w):
    p = new(w, results="after_vote")
    polls.vote(w["bob"], p.id, choices=[0])
    assert polls.view(w["bob"], p)["results"]["totals"] == [1, 0, 0]
    for who in ("carol", "alice", "mod", "owner", "obs"):  # the creator and the moderators too
        v = polls.view(w[who], p)
        assert v["results"] is None and "once you have voted" in v["results_hidden_reason"], who
    assert policy.may_see_poll_results(w["outsider"], p) is False


def test_results_after_close_hidden_from_everyone_until_closed(app, w):
    p = new(w, results="after_close")
    polls.vote(w["bob"], p.id, choices=[0])
    for who in ("bob", "alice", "mod", "owner"):
        assert polls.view(w[who], p)["results"] is None, who
    polls.close(w["mod"], p.id, outcome="The hall.")
    for who in ("bob", "carol", "obs"):
        assert polls.view(w[who], p)["results"]["totals"] == [1, 0, 0], who


# -- closing -----------------------------------------------------------------------------------------------

def test_close_by_creator_or_moderator_posts_the_outcome_in_the_thread(app, w):
    p = new(w)
    polls.vote(w["bob"], p.id, choices=[1])
    refused(Forbidden, polls.close, w["bob"], p.id, outcome="Mine now")
    refused(Forbidden, polls.close, w["obs"], p.id)
    assert db.session.get(Poll, p.id).closed_at is None
    polls.close(w["mod"], p.id, outcome="We meet in the canteen.")
    db.session.rollback()
    p = db.session.get(Poll, p.id)
    assert p.closed and p.closed_by_id == w["mod"].id and p.outcome == "We meet in the canteen."
    post = db.session.get(Post, p.outcome_post_id)
    assert post.thread_id == p.thread_id and post.author_id == w["mod"].id
    assert "We meet in the canteen." in post.body and "Canteen: 1 votes" in post.body
    refused(Conflict, polls.close, w["alice"], p.id, match="already closed")


def test_polls_close_themselves_at_their_closing_time(app, w):
    p = new(w, closes_at=(utcnow() + timedelta(hours=1)).isoformat() + "Z", results="after_close")
    polls.vote(w["bob"], p.id, choices=[2])
    assert polls.close_due() == 0
    assert polls.close_due(utcnow() + timedelta(hours=2)) == 1
    db.session.rollback()
    p = db.session.get(Poll, p.id)
    assert p.closed and p.closed_by_id is None and "automatically" in p.outcome
    assert db.session.get(Post, p.outcome_post_id).author_id == w["alice"].id
    assert polls.close_due(utcnow() + timedelta(hours=3)) == 0
    assert polls.view(w["carol"], p)["results"]["totals"] == [0, 0, 1]


def test_no_vote_once_the_closing_time_has_passed(app, w):
    p = new(w, closes_at=(utcnow() + timedelta(hours=1)).isoformat() + "Z")
    db.session.execute(Poll.__table__.update().values(closes_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    refused(Conflict, polls.vote, w["bob"], p.id, choices=[0], match="closed")
    assert votes(p) == []


def test_close_due_cli(app, w, runner):
    p = new(w)
    db.session.execute(Poll.__table__.update().values(closes_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    r = runner.invoke(args=["polls", "close-due"])
    assert r.exit_code == 0 and "Closed 1 poll." in r.output
    db.session.rollback()
    assert db.session.get(Poll, p.id).closed


# -- the JSON API ----------------------------------------------------------------------------------------

def test_api_create_vote_get_close(app, make, w, client):
    ta, tb, tc = (make.token(w[k]) for k in ("alice", "bob", "carol"))
    r = client.post(f"/api/v1/rooms/{w['room'].id}/polls", headers=bearer(ta), json={
        "question": "Rank the shift patterns", "kind": "ranked", "options": ["Earlies", "Lates", "Nights"],
        "closes_at": (utcnow() + timedelta(days=1)).isoformat() + "Z", "anonymous": False,
        "results": "after_vote"})
    assert r.status_code == 201, r.json
    body = r.json
    pid = body["id"]
    assert body["thread_id"] and body["results"] is None and body["results_visibility"] == "after_vote"
    r = client.post(f"/api/v1/polls/{pid}/votes", headers=bearer(tb), json={"choices": [2, 0, 1]})
    assert r.status_code == 201 and r.json["my_vote"]["choices"] == [2, 0, 1]
    assert r.json["results"]["rounds"][0]["counts"] == [0, 0, 1]
    r = client.post(f"/api/v1/polls/{pid}/votes", headers=bearer(tb), json={"choices": [1, 0, 2]})
    assert r.status_code == 200 and r.json["results"]["voters"] == 1
    r = client.post(f"/api/v1/polls/{pid}/votes", headers=bearer(tc), json={"choices": [1, 1, 2]})
    assert r.status_code == 422 and "more than once" in r.json["error"]["message"]
    assert client.get(f"/api/v1/polls/{pid}", headers=bearer(tc)).json["results"] is None
    r = client.patch(f"/api/v1/polls/{pid}", headers=bearer(ta), json={"results": "always"})
    assert r.status_code == 409 and "locked" in r.json["error"]["message"]
    r = client.post(f"/api/v1/polls/{pid}/close", headers=bearer(tb), json={"outcome": "x"})
    assert r.status_code == 403
    r = client.post(f"/api/v1/polls/{pid}/close", headers=bearer(ta), json={"outcome": "Lates win."})
    assert r.status_code == 200 and r.json["closed"] and r.json["outcome"] == "Lates win."
    r = client.post(f"/api/v1/polls/{pid}/votes", headers=bearer(tc), json={"choices": [0, 1, 2]})
    assert r.status_code == 409 and "closed" in r.json["error"]["message"]
    g = client.get(f"/api/v1/polls/{pid}", headers=bearer(tc)).json
    assert g["results"]["winner"] == 1 and g["voters"] == [
        {"user": {"id": w["bob"].id, "name": "Bob Baker"}, "choices": [1, 0, 2], "reason": None}]
    to = make.token(w["outsider"])
    assert client.get(f"/api/v1/polls/{pid}", headers=bearer(to)).status_code == 404
    assert client.get("/api/v1/polls/999999", headers=bearer(ta)).status_code == 404


def test_api_bad_input_is_a_clear_4xx(app, make, w, client):
    t = make.token(w["alice"])
    url = f"/api/v1/rooms/{w['room'].id}/polls"
    for data in ({}, {"question": "Q", "kind": "single"}, {"question": "Q", "kind": "single", "options": [1, 2]},
                 {"question": "Q", "kind": "dot", "options": ["a", "b"], "dots": "lots"}):
        r = client.post(url, headers=bearer(t), json=data)
        assert r.status_code == 422 and r.json["error"]["message"], (data, r.json)
    p = new(w)
    for data in ({}, {"choices": "0"}, {"choices": [True]}, {"choices": [[0]]}, {"choices": [0], "reason": 5}):
        r = client.post(f"/api/v1/polls/{p.id}/votes", headers=bearer(t), json=data)
        assert r.status_code == 422, (data, r.json)
    assert votes(p) == []


# -- pages ---------------------------------------------------------------------------------------------------

def test_pages_create_vote_by_rank_selects_and_close(app, w):
    from tests.live_support import login_client

    c = login_client(app, w["alice"])
    r = c.post(f"/rooms/{w['room'].id}/polls/new", data={"question": "Rank the rotas", "kind": "ranked",
                                                          "options": "Earlies\nLates\n\nNights", "results": "always"})
    assert r.status_code == 302
    p = db.session.scalar(select(Poll).order_by(Poll.id.desc()))
    assert json.loads(p.options) == ["Earlies", "Lates", "Nights"]
    page = c.get(f"/threads/{p.thread_id}").get_data(as_text=True)
    assert 'id="poll-%d"' % p.id in page and page.count('class="poll-rank"') == 3 and "<svg" in page
    r = c.post(f"/polls/{p.id}/vote", data={"option-0": "2", "option-1": "2", "option-2": "1"})
    assert r.status_code == 422 and "rank 2 is given twice" in r.get_data(as_text=True)
    assert votes(p) == []
    r = c.post(f"/polls/{p.id}/vote", data={"option-0": "3", "option-1": "1", "option-2": "2"})
    assert r.status_code == 302 and votes(p) == [(w["alice"].id, "[1, 2, 0]")]
    html = c.get(f"/polls/{p.id}/results").get_data(as_text=True)
    assert "<svg" in html and "<table" in html and "Lates</th><td>1 first preferences" in html
    r = c.post(f"/rooms/{w['room'].id}/polls/new", data={"question": "Bad", "kind": "single", "options": "Only"})
    assert r.status_code == 200 and "at least two" in r.get_data(as_text=True)
    r = c.post(f"/polls/{p.id}/close", data={"outcome": "Lates first."})
    assert r.status_code == 302
    page = c.get(f"/threads/{p.thread_id}").get_data(as_text=True)
    assert "Lates first." in page and 'class="stack poll-vote"' not in page


def test_results_fragment_hides_what_the_reader_may_not_see(app, w):
    from tests.live_support import login_client

    p = new(w, results="after_close", anonymous=False)
    polls.vote(w["bob"], p.id, choices=[0])
    for who in ("bob", "mod"):
        html = login_client(app, w[who]).get(f"/polls/{p.id}/results").get_data(as_text=True)
        assert "<svg" not in html and "when the poll closes" in html and "Bob Baker" not in html
    assert login_client(app, w["outsider"]).get(f"/polls/{p.id}/results").status_code == 404


def test_erasing_a_voter_keeps_the_vote_in_the_tally_tied_to_nobody(app, make, w):
    from rooms import account_data

    admin = make.user(admin=True)
    p = new(w, results="always")
    polls.vote(w["bob"], p.id, choices=[1])
    polls.vote(w["carol"], p.id, choices=[1])
    polls.close(w["alice"], p.id, outcome="Canteen.")
    account_data.erase_account(admin, w["bob"].id, posts="keep", confirm=w["bob"].email)
    db.session.rollback()
    p = db.session.get(Poll, p.id)
    assert polls.tally(p)["totals"] == [0, 2, 0]
    assert sorted((u is None, c) for u, c in votes(p)) == [(False, "[1]"), (True, "[1]")]
    v = polls.view(w["alice"], p)
    assert [x["user"]["name"] for x in v["voters"]] == ["Carol Cole"]


def test_who_voted_what_only_in_attributed_rooms_and_never_for_anonymous_polls(app, w):
    from rooms import trust_settings

    named = new(w)
    secret = new(w, anonymous=True)
    for p in (named, secret):
        polls.vote(w["bob"], p.id, choices=[0])
    assert [x["user"]["name"] for x in polls.view(w["carol"], named)["voters"]] == ["Bob Baker"]
    for who in ("carol", "mod", "owner", "bob"):
        assert "voters" not in polls.view(w[who], secret), who
    room2 = rs.create_room(w["owner"], name="Frank", visibility="private")
    rs.add_member(w["owner"], room2.id, user_id=w["bob"].id, role="member")
    trust_settings.set_non_attributed(w["owner"], room2.id, True)
    p = polls.create_poll(w["owner"], room2.id, question="Q", kind="single", options=["A", "B"])
    polls.vote(w["bob"], p.id, choices=[1])
    assert "voters" not in polls.view(w["owner"], p) and polls.view(w["owner"], p)["results"]["totals"] == [0, 1]


def test_the_poll_follows_its_opening_post_hidden_or_removed(app, w):
    from rooms import moderation
    from rooms import posts as room_posts

    p = new(w)
    polls.vote(w["bob"], p.id, choices=[0])
    moderation.hide_post(w["mod"], p.post_id, "Off topic")
    refused(NotFound, polls.get_poll, w["bob"], p.id)
    refused(NotFound, polls.vote, w["carol"], p.id, choices=[1])
    assert polls.get_poll(w["mod"], p.id) and polls.get_poll(w["alice"], p.id)   # moderators, its author
    q = new(w)
    room_posts.delete_post(w["alice"], q.post_id)
    for who in ("alice", "mod", "bob"):
        refused(NotFound, polls.get_poll, w[who], q.id)
    refused(NotFound, polls.vote, w["bob"], q.id, choices=[0])
    assert votes(q) == []
