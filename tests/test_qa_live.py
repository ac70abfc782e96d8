"""Q&A live (issue 13): the session's events reach every reader of the room over Socket.IO and nobody
else; a question waiting for approval is announced only to the hosts and moderators (their own
channels), and no event names or identifies an anonymous asker."""
from __future__ import annotations

import json

import pytest

from collab import tasks
from rooms.qa import hosting
from rooms.qa import services as qa
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
    p = {k: make.user(org=org, name=n) for k, n in (("owner", "Olive Owner"), ("mod", "Mo Moderator"),
                                                   ("asker", "Xanthe Quillfeather"), ("reader", "Rita Reader"),
                                                   ("outsider", "Otto Outsider"))}
    room = make.room(p["owner"], members=[p["asker"], p["reader"]], moderator=[p["mod"]])
    return dict(p, room=room)


def follow(app, user, room) -> Collector:
    c = Collector(sock(app, login_client(app, user)))
    ack = c.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    return c if ack and ack.get("ok") else Collector(c.sc)


def test_events_reach_readers_only_and_name_no_anonymous_asker(app, w):
    room = w["room"]
    reader, mod, outsider = (follow(app, w[k], room) for k in ("reader", "mod", "outsider"))
    s = qa.create_session(w["owner"], room.id, title="Ask Olive", starts_at="2026-12-01T10:00:00Z")
    assert reader.wait("qa.created", lambda d: d["session"]["id"] == s.id)
    q = qa.ask(w["asker"], s.id, body="Anonymous worry", anonymous=True)
    got = reader.wait("qa.question", lambda d: d["question"]["id"] == q.id)
    assert got["question"]["status"] == "open"
    post = reader.wait("post.created", lambda d: d["post"]["id"] == q.post_id)
    assert post["post"]["author"] is None and post["post"]["body"] == "Anonymous worry"
    qa.vote(w["reader"], q.id)
    assert mod.wait("qa.voted", lambda d: d["question_id"] == q.id and d["votes"] == 1)
    hosting.now_answering(w["owner"], q.id)
    assert reader.wait("qa.answering", lambda d: d["question_id"] == q.id)
    hosting.answer(w["owner"], q.id, body="Here is the answer")
    assert reader.wait("qa.answered", lambda d: d["question"]["id"] == q.id and d["question"]["status"] == "answered")
    # the outsider may not subscribe and hears nothing of it
    assert outsider.named("qa.created") == [] and outsider.named("qa.voted") == [] and outsider.named("qa.answered") == []
    # nothing the readers received names or identifies the anonymous asker
    blob = json.dumps(reader.pull() + mod.pull())
    assert "Xanthe" not in blob and "Quillfeather" not in blob
    assert f'"author": {{"id": {w["asker"].id},' not in blob and f'"user": {{"id": {w["asker"].id},' not in blob
    # the asker (anonymous) is told of the answer on their own channel
    asker = Collector(sock(app, login_client(app, w["asker"])))
    hosting.end(w["owner"], s.id)
    assert reader.wait("qa.ended", lambda d: d["session"]["id"] == s.id)
    assert asker.named("qa.ended") == []   # not subscribed to the room: room events are for subscribers


def test_waiting_questions_go_to_moderators_only(app, w):
    room = w["room"]
    s = qa.create_session(w["owner"], room.id, title="Moderated", starts_at="2026-12-01T10:00:00Z", moderated=True)
    reader, mod, owner = (follow(app, w[k], room) for k in ("reader", "mod", "owner"))
    q = qa.ask(w["asker"], s.id, body="Held back for now")
    assert mod.wait("qa.pending", lambda d: d["question_id"] == q.id)
    assert owner.wait("qa.pending", lambda d: d["question_id"] == q.id)
    hosting.approve(w["mod"], q.id)
    assert reader.wait("qa.question", lambda d: d["question"]["id"] == q.id and d["question"]["status"] == "open")
    assert reader.named("qa.pending") == []
    # the text reached the reader only with the approval
    created = reader.named("post.created")
    assert [p["post"]["body"] for p in created] == ["Held back for now"]
