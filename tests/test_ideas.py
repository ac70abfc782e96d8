"""Ideas (issue 13): posting an idea (a thread underneath), one vote per person, withdrawing, the
room's vote budget (returned when an idea closes), status changes by decision-makers only with the
reasons they need, notifications to the author, voters and followers, "judge on merit" hiding ranks
from all but moderators until a decision, non-attributed rooms, live events, "You said, we did" and
similar ideas while typing. On SQLite and PostgreSQL, through the real services, API and pages."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from auth import services as accounts
from collab.extensions import db
from rooms import services as rs
from rooms import trust_settings
from rooms.ideas import services as ideas
from rooms.ideas.models import Idea, IdeaStatusChange, IdeaVote
from rooms.models import RoomEvent, Thread
from rooms.notifications import Notification
from tests.conftest import bearer
from tests.live_support import login_client


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": False}


@pytest.fixture
def w(app, make):
    org = make.org()
    people = {name: make.user(org=org, name=name) for name in
              ("Owner Olu", "Mod Mina", "Ann Author", "Vic Voter", "Fay Follower", "Obi Observer", "Mel Member")}
    owner, mod = people["Owner Olu"], people["Mod Mina"]
    room = make.room(owner, members=[people[n] for n in ("Ann Author", "Vic Voter", "Fay Follower", "Mel Member")],
                     moderator=[mod], observer=[people["Obi Observer"]], name="Ideas room")
    ideas.update_settings(owner, room.id, enabled=True, vote_budget=2, judge_on_merit=False)
    tokens = {n: make.token(u) for n, u in people.items()}
    return {"room": room, "p": people, "tok": tokens, "owner": owner, "mod": mod,
            "author": people["Ann Author"], "voter": people["Vic Voter"], "member": people["Mel Member"]}


def api(client, w, who, method, url, body=None):
    return client.open(url, method=method, headers=bearer(w["tok"][who]), json=body)


def post_idea(client, w, who="Ann Author", title="Shorter handover forms", body="Cut the form to one page."):
    r = api(client, w, who, "POST", f"/api/v1/rooms/{w['room'].id}/ideas", {"title": title, "body": body})
    assert r.status_code == 201, r.json
    return r.json


def state(idea_id):
    db.session.expire_all()
    idea = db.session.get(Idea, idea_id)
    votes = db.session.scalar(select(func.count(IdeaVote.id)).where(IdeaVote.idea_id == idea_id))
    return idea.status, idea.vote_count, votes


# -- posting -------------------------------------------------------------------------------------------

def test_an_idea_is_a_thread_with_a_status_and_votes(client, w):
    got = post_idea(client, w)
    assert {"id", "thread_id", "status", "votes"} <= set(got)
    assert got["status"] == "new" and got["votes"] == 0 and got["my_vote"] is False
    thread = db.session.get(Thread, got["thread_id"])
    assert thread.title == "Shorter handover forms" and thread.room_id == w["room"].id
    r = api(client, w, "Mel Member", "GET", f"/api/v1/threads/{got['thread_id']}")
    assert r.status_code == 200 and r.json["posts"][0]["body"] == "Cut the form to one page."
    listed = api(client, w, "Mel Member", "GET", f"/api/v1/rooms/{w['room'].id}/ideas").json
    assert [i["id"] for i in listed["ideas"]] == [got["id"]]
    assert listed["budget"] == {"total": 2, "used": 0, "left": 2}


def test_a_room_without_ideas_takes_none_and_nothing_is_written(client, w, make):
    other = make.room(w["owner"], members=[w["author"]], name="Plain room")
    threads_before = db.session.scalar(select(func.count(Thread.id)))
    r = api(client, w, "Ann Author", "POST", f"/api/v1/rooms/{other.id}/ideas", {"title": "x", "body": "y"})
    assert r.status_code == 403 and "does not take ideas" in r.json["error"]["message"]
    assert db.session.scalar(select(func.count(Thread.id))) == threads_before
    assert db.session.scalar(select(func.count(Idea.id))) == 0


def test_bad_input_to_create_is_refused_with_nothing_written(client, w):
    r = api(client, w, "Ann Author", "POST", f"/api/v1/rooms/{w['room'].id}/ideas", {"title": "", "body": "y"})
    assert r.status_code == 422 and r.json["error"]["field"] == "title"
    r = api(client, w, "Obi Observer", "POST", f"/api/v1/rooms/{w['room'].id}/ideas", {"title": "t", "body": "y"})
    assert r.status_code == 403
    assert db.session.scalar(select(func.count(Thread.id))) == 0
    assert db.session.scalar(select(func.count(Idea.id))) == 0


# -- votes ---------------------------------------------------------------------------------------------

def test_one_vote_per_person_withdrawable(client, w):
    idea = post_idea(client, w)
    url = f"/api/v1/ideas/{idea['id']}/vote"
    r = api(client, w, "Vic Voter", "POST", url)
    assert r.status_code == 200 and r.json["votes"] == 1 and r.json["my_vote"] is True
    r = api(client, w, "Vic Voter", "POST", url)
    assert r.status_code == 409 and r.json["error"]["message"] == "You have already voted for this idea."
    assert state(idea["id"]) == ("new", 1, 1)
    r = api(client, w, "Mel Member", "POST", url)
    assert r.json["votes"] == 2
    r = api(client, w, "Vic Voter", "DELETE", url)
    assert r.status_code == 200 and r.json["votes"] == 1 and r.json["my_vote"] is False
    r = api(client, w, "Vic Voter", "DELETE", url)
    assert r.status_code == 409 and r.json["error"]["message"] == "You have not voted for this idea."
    assert state(idea["id"]) == ("new", 1, 1)


def test_observers_and_outsiders_cannot_vote(client, w, make):
    idea = post_idea(client, w)
    r = api(client, w, "Obi Observer", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    assert r.status_code == 403
    outsider = make.user(name="Out Sider")
    r = client.post(f"/api/v1/ideas/{idea['id']}/vote", headers=bearer(make.token(outsider)))
    assert r.status_code == 404
    assert state(idea["id"]) == ("new", 0, 0)


def test_the_budget_limits_open_votes_and_returns_them_when_an_idea_closes(client, w):
    a, b, c = (post_idea(client, w, title=t)["id"] for t in ("First idea", "Second idea", "Third idea"))
    for i in (a, b):
        assert api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{i}/vote").status_code == 200
    r = api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{c}/vote")
    assert r.status_code == 409 and "used all 2 of your votes" in r.json["error"]["message"]
    assert state(c) == ("new", 0, 0)
    r = api(client, w, "Vic Voter", "GET", f"/api/v1/ideas/{c}")
    assert r.json["budget"] == {"total": 2, "used": 2, "left": 0}
    # Under review is still open: the vote stays spent.
    ideas.set_status(w["mod"], a, status="under_review")
    assert api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{c}/vote").status_code == 409
    # Not adopted closes it: its vote comes back, and it keeps its tally.
    ideas.set_status(w["mod"], a, status="not_adopted", response="Legal says no.")
    r = api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{c}/vote")
    assert r.status_code == 200 and r.json["budget"] == {"total": 2, "used": 2, "left": 0}
    assert state(a) == ("not_adopted", 1, 1)
    # A closed idea's votes no longer change.
    r = api(client, w, "Vic Voter", "DELETE", f"/api/v1/ideas/{a}/vote")
    assert r.status_code == 409 and "closed" in r.json["error"]["message"]
    r = api(client, w, "Mel Member", "POST", f"/api/v1/ideas/{a}/vote")
    assert r.status_code == 409
    assert state(a) == ("not_adopted", 1, 1)


def test_no_budget_means_no_limit(client, w):
    ideas.update_settings(w["owner"], w["room"].id, enabled=True, vote_budget=None, judge_on_merit=False)
    ids = [post_idea(client, w, title=f"Idea {n}")["id"] for n in range(4)]
    for i in ids:
        assert api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{i}/vote").status_code == 200
    assert api(client, w, "Vic Voter", "GET", f"/api/v1/ideas/{ids[0]}").json["budget"] is None


# -- status --------------------------------------------------------------------------------------------

def test_only_decision_makers_change_the_status(client, w):
    idea = post_idea(client, w)
    url = f"/api/v1/ideas/{idea['id']}/status"
    for who in ("Ann Author", "Mel Member", "Obi Observer"):
        r = api(client, w, who, "POST", url, {"status": "under_review"})
        assert r.status_code == 403, who
        assert "owners and moderators, or people they name" in r.json["error"]["message"]
    assert state(idea["id"])[0] == "new"
    assert db.session.scalar(select(func.count(IdeaStatusChange.id))) == 0
    ideas.name_decider(w["mod"], w["room"].id, w["member"].id)
    r = api(client, w, "Mel Member", "POST", url, {"status": "under_review", "response": "Looking at it"})
    assert r.status_code == 200 and r.json["status"] == "under_review" and r.json["decided_by"] == "Mel Member"
    ideas.name_decider(w["owner"], w["room"].id, w["member"].id, named=False)
    r = api(client, w, "Mel Member", "POST", url, {"status": "adopted"})
    assert r.status_code == 403
    r = api(client, w, "Owner Olu", "POST", url, {"status": "adopted", "response": "From April."})
    assert r.status_code == 200 and r.json["decided_by"] == "Owner Olu" and r.json["response"] == "From April."


def test_transitions_and_the_reasons_they_need(client, w):
    idea = post_idea(client, w)["id"]
    other = post_idea(client, w, title="Older idea")["id"]
    url = f"/api/v1/ideas/{idea}/status"
    r = api(client, w, "Mod Mina", "POST", url, {"status": "adopted"})
    assert r.status_code == 409
    assert r.json["error"]["message"] == "An idea that is new cannot become adopted; it can become under review."
    r = api(client, w, "Mod Mina", "POST", url, {"status": "maybe"})
    assert r.status_code == 422 and r.json["error"]["field"] == "status"
    r = api(client, w, "Mod Mina", "POST", url, {"status": "under_review", "review_on": "31/12/2026"})
    assert r.status_code == 422 and r.json["error"]["field"] == "review_on"
    assert state(idea)[0] == "new"
    r = api(client, w, "Mod Mina", "POST", url, {"status": "under_review", "review_on": "2026-12-31"})
    assert r.status_code == 200 and r.json["review_on"] == "2026-12-31"
    r = api(client, w, "Mod Mina", "POST", url, {"status": "not_adopted", "response": "  "})
    assert r.status_code == 422 and r.json["error"]["message"] == "Give the reason this idea is not adopted."
    r = api(client, w, "Mod Mina", "POST", url, {"status": "already_exists"})
    assert r.status_code == 422 and r.json["error"]["field"] == "duplicate_of"
    r = api(client, w, "Mod Mina", "POST", url, {"status": "already_exists", "duplicate_of": idea})
    assert r.status_code == 422 and r.json["error"]["field"] == "duplicate_of"
    assert state(idea)[0] == "under_review"
    r = api(client, w, "Mod Mina", "POST", url, {"status": "already_exists", "duplicate_of": other})
    assert r.status_code == 200 and r.json["duplicate_of"] == {"id": other, "title": "Older idea"}
    r = api(client, w, "Mod Mina", "POST", url, {"status": "done"})
    assert r.status_code == 409 and "it can become nothing: it is final" in r.json["error"]["message"]
    # adopted -> done
    ideas.set_status(w["mod"], other, status="under_review")
    ideas.set_status(w["mod"], other, status="adopted", response="Yes")
    r = api(client, w, "Mod Mina", "POST", f"/api/v1/ideas/{other}/status", {"status": "done", "response": "Live"})
    assert r.status_code == 200 and r.json["status"] == "done"
    changes = db.session.scalars(select(IdeaStatusChange.to_status).where(IdeaStatusChange.idea_id == other)
                                 .order_by(IdeaStatusChange.id)).all()
    assert changes == ["under_review", "adopted", "done"]


def test_status_changes_notify_author_voters_and_followers(client, w, make):
    idea = post_idea(client, w)
    api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    # Fay watches the idea's thread (writing in it is not enough: followers are its watchers).
    make.reply(w["p"]["Fay Follower"], db.session.get(Thread, idea["thread_id"]), "I'd add a checklist.")
    make.reply(w["owner"], db.session.get(Thread, idea["thread_id"]), "Me too.")  # writes, does not watch
    assert api(client, w, "Fay Follower", "PUT", f"/api/v1/threads/{idea['thread_id']}/notifications",
               {"level": "watching"}).json == {"thread_id": idea["thread_id"], "level": "watching"}
    # Mel voted but muted the room: not told. The author muted it too, but is always told.
    api(client, w, "Mel Member", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    for who in ("Mel Member", "Ann Author"):
        assert api(client, w, who, "PUT", f"/api/v1/rooms/{w['room'].id}/notifications",
                   {"level": "mute"}).status_code == 200
    ideas.set_status(w["mod"], idea["id"], status="under_review")

    def told():
        db.session.expire_all()
        return {n.user_id for n in db.session.scalars(select(Notification).where(Notification.kind == "idea"))}

    p = w["p"]
    assert told() == {p["Ann Author"].id, p["Vic Voter"].id, p["Fay Follower"].id}
    r = api(client, w, "Vic Voter", "GET", "/api/v1/notifications")
    n = r.json["notifications"][0]
    assert n["kind"] == "idea" and n["text"] == "Mod Mina changed the status of an idea"
    assert n["thread"]["id"] == idea["thread_id"]
    # Each later change tells them again (unread again).
    api(client, w, "Vic Voter", "POST", "/api/v1/notifications/read", {"all": True})
    ideas.set_status(w["owner"], idea["id"], status="adopted", response="Yes")
    assert api(client, w, "Vic Voter", "GET", "/api/v1/notifications?unread=true").json["total"] == 1


# -- judge on merit, non-attributed rooms -----------------------------------------------------------------

def _titles(w):
    accounts.update_profile(w["author"], name=w["author"].name, job_title="Police Constable")
    accounts.update_profile(w["voter"], name=w["voter"].name, job_title="Chief Superintendent")


def test_judge_on_merit_hides_ranks_from_all_but_moderators_until_a_decision(client, app, w):
    ideas.update_settings(w["owner"], w["room"].id, enabled=True, vote_budget=2, judge_on_merit=True)
    _titles(w)
    idea = post_idea(client, w)
    api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    ranks = ("Police Constable", "Chief Superintendent")

    def shown(who):
        texts = [api(client, w, who, "GET", f"/api/v1/ideas/{idea['id']}").get_data(as_text=True),
                 api(client, w, who, "GET", f"/api/v1/rooms/{w['room'].id}/ideas").get_data(as_text=True)]
        web = login_client(app, w["p"][who])
        for url in (f"/threads/{idea['thread_id']}", f"/rooms/{w['room'].id}/ideas",
                    f"/rooms/{w['room'].id}/members"):
            r = web.get(url)
            assert r.status_code == 200, url
            texts.append(r.get_data(as_text=True))
        return {rank for rank in ranks if any(rank in t for t in texts)}

    assert shown("Mel Member") == set()
    assert shown("Ann Author") == set()          # not even the author's own rank, on shared pages
    assert shown("Mod Mina") == set(ranks)
    # Names still show: it is the rank that is hidden.
    got = api(client, w, "Mel Member", "GET", f"/api/v1/ideas/{idea['id']}").json
    assert got["author"]["name"] == "Ann Author" and "job_title" not in got["author"]
    assert [v["name"] for v in got["voters"]] == ["Vic Voter"] and "job_title" not in got["voters"][0]
    # Under review is not a decision.
    ideas.set_status(w["mod"], idea["id"], status="under_review")
    assert shown("Mel Member") == set()
    ideas.set_status(w["mod"], idea["id"], status="adopted", response="Good idea.")
    got = api(client, w, "Mel Member", "GET", f"/api/v1/ideas/{idea['id']}").json
    assert got["author"]["job_title"] == "Police Constable"
    assert got["voters"][0]["job_title"] == "Chief Superintendent"
    # Live events never carry a rank, before or after.
    payloads = db.session.scalars(select(RoomEvent.payload).where(RoomEvent.room_id == w["room"].id)).all()
    assert not [p for p in payloads if any(rank in p for rank in ranks)]


def test_without_judge_on_merit_ranks_show(client, w):
    _titles(w)
    idea = post_idea(client, w)
    got = api(client, w, "Mel Member", "GET", f"/api/v1/ideas/{idea['id']}").json
    assert got["author"]["job_title"] == "Police Constable"


def test_non_attributed_rooms_keep_pseudonyms(client, app, w):
    _titles(w)
    trust_settings.set_non_attributed(w["owner"], w["room"].id, True)
    idea = post_idea(client, w)
    api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    ideas.set_status(w["mod"], idea["id"], status="under_review", response="We will look.")
    names = ("Ann Author", "Vic Voter", "Mod Mina", "Police Constable", "Chief Superintendent")
    for who in ("Mel Member", "Vic Voter"):
        got = api(client, w, who, "GET", f"/api/v1/ideas/{idea['id']}").json
        assert got["author"] == {"name": "Participant 1", "pseudonym": True}
        assert got["voters"] is None and got["decided_by"] == "A decision-maker"
        text = api(client, w, who, "GET", f"/api/v1/rooms/{w['room'].id}/ideas").get_data(as_text=True)
        text += login_client(app, w["p"][who]).get(f"/threads/{idea['thread_id']}").get_data(as_text=True)
        assert not [n for n in names if n in text and n != who], who   # (their own name is in the header)
    notes = api(client, w, "Vic Voter", "GET", "/api/v1/notifications").json["notifications"]
    assert notes[0]["kind"] == "idea" and notes[0]["actor"] == {"name": "A decision-maker", "pseudonym": True}
    assert "Mod Mina" not in json.dumps(notes)
    payloads = " ".join(db.session.scalars(select(RoomEvent.payload).where(
        RoomEvent.room_id == w["room"].id, RoomEvent.name.like("idea.%"))).all())
    assert not [n for n in names if n in payloads]
    # The moderators still see who is who.
    got = api(client, w, "Mod Mina", "GET", f"/api/v1/ideas/{idea['id']}").json
    assert [v["name"] for v in got["voters"]] == ["Vic Voter"] and got["decided_by"] == "Mod Mina"


# -- live events ------------------------------------------------------------------------------------------

def test_votes_and_status_changes_are_room_events(client, w):
    idea = post_idea(client, w)
    api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    api(client, w, "Mel Member", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    api(client, w, "Mel Member", "DELETE", f"/api/v1/ideas/{idea['id']}/vote")
    ideas.set_status(w["mod"], idea["id"], status="under_review")
    evs = [e for e in rs.events_after(w["member"], w["room"].id, 0) if e["event"].startswith("idea.")]
    # votes are live counts (coalesced `idea.voted`, tests/test_votes_live.py), not numbered room events
    assert [e["event"] for e in evs] == ["idea.created", "idea.status"]
    assert evs[-1]["data"]["idea"]["votes"] == 1
    assert evs[-1]["data"]["idea"]["status"] == "under_review"
    assert all("user" not in e["data"] for e in evs)   # who voted is never broadcast


# -- pages --------------------------------------------------------------------------------------------------

def test_pages_post_vote_and_decide(client, app, w):
    web = login_client(app, w["author"])
    r = web.get(f"/rooms/{w['room'].id}/ideas/new")
    assert r.status_code == 200 and b"similar ideas" in r.data
    r = web.post(f"/rooms/{w['room'].id}/ideas/new", data={"title": "", "body": "x"})
    assert r.status_code == 422 and b"There is a problem" in r.data
    r = web.post(f"/rooms/{w['room'].id}/ideas/new", data={"title": "Bike racks", "body": "At the station."})
    assert r.status_code == 302
    idea = db.session.scalar(select(Idea))
    voter = login_client(app, w["voter"])
    r = voter.post(f"/ideas/{idea.id}/vote", data={"on": "1"}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json["votes"] == 1 and r.json["budget"]["left"] == 1
    r = voter.post(f"/ideas/{idea.id}/vote", data={"on": "1"}, headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.json["error"]["message"] == "You have already voted for this idea."
    page = voter.get(f"/rooms/{w['room'].id}/ideas").get_data(as_text=True)
    assert "Bike racks" in page and "Withdraw my vote" in page and "1 of 2 votes left" in " ".join(
        page.replace("<strong data-idea-budget-left>", "").replace("</strong>", "").split())
    r = voter.post(f"/ideas/{idea.id}/status", data={"status": "under_review"})
    assert r.status_code == 403
    mod = login_client(app, w["mod"])
    assert b"Publish the status" in mod.get(f"/threads/{idea.thread_id}").data
    assert b"Publish the status" not in voter.get(f"/threads/{idea.thread_id}").data
    r = mod.post(f"/ideas/{idea.id}/status", data={"status": "under_review", "review_on": "2027-01-31"})
    assert r.status_code == 302
    r = mod.post(f"/ideas/{idea.id}/status", data={"status": "not_adopted", "response": ""})
    assert r.status_code == 422 and b"Give the reason this idea is not adopted." in r.data
    assert state(idea.id)[0] == "under_review"


def test_settings_page_for_owners_and_moderators(client, app, w):
    owner = login_client(app, w["owner"])
    r = owner.post(f"/rooms/{w['room'].id}/ideas/settings",
                   data={"action": "settings", "enabled": "1", "vote_budget": "10", "judge_on_merit": "1"})
    assert r.status_code == 302
    r = owner.post(f"/rooms/{w['room'].id}/ideas/settings", data={"action": "settings", "vote_budget": "many"})
    assert r.status_code == 422
    from rooms import policy
    db.session.expire_all()
    s = policy.idea_settings(rs.get_room(w["owner"], w["room"].id))
    assert (s.enabled, s.vote_budget, s.judge_on_merit) == (True, 10, True)
    assert login_client(app, w["member"]).get(f"/rooms/{w['room'].id}/ideas/settings").status_code == 403


def test_you_said_we_did_per_room_and_site_wide_with_csv(client, app, w, make):
    a = post_idea(client, w, title="Adopted one")["id"]
    b = post_idea(client, w, title="Rejected one")["id"]
    post_idea(client, w, title="Still open")
    for i in (a, b):
        ideas.set_status(w["mod"], i, status="under_review")
    ideas.set_status(w["mod"], a, status="adopted", response="=Doing it from May")
    ideas.set_status(w["mod"], b, status="not_adopted", response="No budget")
    # An adopted idea in a room the member cannot read never shows.
    secret = make.room(w["owner"], name="Secret room")
    ideas.update_settings(w["owner"], secret.id, enabled=True)
    s = ideas.create_idea(w["owner"], secret.id, title="Secret adopted", body="x")
    ideas.set_status(w["owner"], s.id, status="under_review")
    ideas.set_status(w["owner"], s.id, status="adopted", response="ok")
    web = login_client(app, w["member"])
    for url in (f"/rooms/{w['room'].id}/you-said-we-did", "/you-said-we-did"):
        page = web.get(url).get_data(as_text=True)
        assert "Adopted one" in page and "=Doing it from May" in page and "Mod Mina" in page
        assert "Rejected one" not in page and "Still open" not in page and "Secret adopted" not in page
        r = web.get(url + "?format=csv")
        assert r.mimetype == "text/csv" and r.headers["Cache-Control"] == "no-store"
        rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
        assert rows[0][:4] == ["Idea", "Room", "Status", "Response"]
        assert [row[0] for row in rows[1:]] == ["Adopted one"]
        assert rows[1][3] == "'=Doing it from May"     # never a spreadsheet formula
    assert "Adopted one" not in web.get("/you-said-we-did?q=nothing-like-it").get_data(as_text=True)
    assert web.get("/you-said-we-did?status=bogus").status_code == 200
    assert web.get(f"/rooms/{secret.id}/you-said-we-did").status_code == 404


def test_similar_ideas_while_typing_use_search_with_the_readers_permissions(client, app, w, make):
    from tests.test_search_support import settle

    post_idea(client, w, title="Cycle racks at the station", body="More cycle parking.")
    ideas.update_settings(w["owner"], make.room(w["owner"], name="Hidden").id, enabled=True)
    settle(app)
    web = login_client(app, w["member"])
    r = web.get(f"/rooms/{w['room'].id}/ideas/similar.json?q=cycle parking")
    assert r.status_code == 200 and [i["title"] for i in r.json["ideas"]] == ["Cycle racks at the station"]
    assert web.get(f"/rooms/{w['room'].id}/ideas/similar.json?q=zebra").json == {"ideas": []}
    outsider = login_client(app, make.user(name="Outsider"))
    assert outsider.get(f"/rooms/{w['room'].id}/ideas/similar.json?q=cycle").status_code == 404


def test_a_subscribed_reader_gets_the_tally_live(client, app, w):
    from collab import tasks
    from tests.live_support import sock

    idea = post_idea(client, w)
    sc = sock(app, token=w["tok"]["Mel Member"])
    try:
        assert sc.emit("subscribe", {"room_id": w["room"].id}, callback=True)["ok"]
        sc.get_received()
        api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
        ideas.set_status(w["mod"], idea["id"], status="under_review")
        got = [(m["name"], m["args"][0]) for m in sc.get_received()]
        voted = [data for name, data in got if name == "idea.voted"]
        assert [(d["idea_id"], d["votes"]) for d in voted] == [(idea["id"], 1)]
        assert [d["idea"]["status"] for name, d in got if name == "idea.status"] == ["under_review"]
    finally:
        sc.disconnect()
        tasks.settle(app)


def test_simultaneous_votes_are_neither_lost_nor_doubled_nor_over_budget(app, w, make):
    """Votes from several threads at once (each its own session and connection): the tally is exact,
    and one person's votes on several ideas at once never exceed the budget."""
    import threading

    from collab.errors import Conflict

    main = ideas.create_idea(w["author"], w["room"].id, title="Main idea", body="x").id
    extra = [ideas.create_idea(w["author"], w["room"].id, title=f"Extra {n}", body="x").id for n in range(4)]
    voters = [make.user(name=f"Crowd {n}") for n in range(8)]
    for v in voters:
        rs.add_member(w["owner"], w["room"].id, user_id=v.id)
    voter_ids = [v.id for v in voters]
    results: list[str] = []
    start = threading.Barrier(len(voter_ids) + len(extra))

    def run(user_id: int, idea_id: int) -> None:
        with app.app_context():
            from auth.models import User

            me = db.session.get(User, user_id)
            start.wait()
            try:
                ideas.vote(me, idea_id)
                results.append(f"ok {idea_id}")
            except Conflict:
                results.append(f"refused {idea_id}")
            finally:
                db.session.remove()

    jobs = [threading.Thread(target=run, args=(uid, main)) for uid in voter_ids]
    jobs += [threading.Thread(target=run, args=(w["voter"].id, i)) for i in extra]   # budget 2, four ideas
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    assert state(main) == ("new", 8, 8)
    voted = [r for r in results if r.startswith("ok") and int(r.split()[1]) in extra]
    assert len(voted) == 2 and results.count("ok %d" % main) == 8
    assert db.session.scalar(select(func.count(IdeaVote.id)).where(IdeaVote.user_id == w["voter"].id)) == 2


def test_a_removed_idea_title_is_not_kept_in_its_events(client, w):
    """Retention removes an old idea's opening post and with it the thread's title: the replayed events
    (thread.created is rewritten; idea events never carry the title) no longer say it."""
    from datetime import timedelta

    from collab.db import utcnow
    from rooms import retention
    from rooms.models import Post
    from sqlalchemy import update

    idea = post_idea(client, w, title="Quetzalcoatl rota swap", body="Swap rotas.")
    api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    ideas.set_status(w["mod"], idea["id"], status="under_review", response="Reviewing.")
    # The idea's posts are 40 days old; its events are of today, so they stay and must be rewritten.
    db.begin_write()
    db.session.execute(update(Post).where(Post.thread_id == idea["thread_id"])
                       .values(created_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    retention.set_retention(w["owner"], w["room"].id, 30)
    assert retention.purge_room(rs.get_room(w["owner"], w["room"].id)).count == 1
    replay = json.dumps(rs.events_after(w["member"], w["room"].id, 0))
    assert '"idea.created"' in replay and '"idea.status"' in replay
    assert "Quetzalcoatl" not in replay and "Swap rotas" not in replay
    assert api(client, w, "Mel Member", "GET", f"/api/v1/ideas/{idea['id']}").json["status"] == "under_review"


def test_a_persons_votes_are_in_their_data_export(client, app, w):
    import zipfile

    idea = post_idea(client, w)
    api(client, w, "Vic Voter", "POST", f"/api/v1/ideas/{idea['id']}/vote")
    r = login_client(app, w["voter"]).post("/account/export")
    votes = json.loads(zipfile.ZipFile(io.BytesIO(r.data)).read("idea_votes.json"))
    assert [(v["idea_id"], v["room_id"]) for v in votes] == [(idea["id"], w["room"].id)]
