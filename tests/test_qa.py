"""Q&A sessions (issue 13): opening a session (a thread underneath) with hosts and an optional meeting,
asking (a post in it; anonymous: no author), one upvote per person (withdrawable), sorting, moderation
(approve, edit with its note, merge with votes combined and one per person kept, decline with a reason
the asker is told), "now answering" one at a time, answers written (searchable) or aloud (in the
meeting's minutes), ending with owners and due dates and the reminders, the archive, bad input (a
clear error, nothing changed), and no name or id of an anonymous asker in any response, event, search
hit, notification or export to anyone but a moderator's audited reveal. On SQLite and PostgreSQL,
through the real services, API and pages."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from auth.audit import AuditEvent
from collab.db import utcnow
from collab.extensions import db
from rooms import account_data
from rooms.models import Post, RoomEvent
from rooms.notifications import Notification, notification_dict
from rooms.meetings import minutes
from rooms.meetings import services as meetings
from rooms.qa import hosting
from rooms.qa import services as qa
from rooms.qa.models import QaQuestion, QaVote
from tests.conftest import bearer
from tests.live_support import login_client
from tests.test_search_support import search_ids, settle

START = "2026-12-01T10:00:00Z"


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": False}


@pytest.fixture
def w(app, make):
    org = make.org()
    names = ("Olu Owner", "Mina Moderator", "Hana Host", "Zebedee Quinnell", "Vic Voter", "Obi Observer", "Out Sider")
    p = {n.split()[0].lower(): make.user(org=org, name=n) for n in names}
    room = make.room(p["olu"], members=[p["hana"], p["zebedee"], p["vic"]], moderator=[p["mina"]],
                     observer=[p["obi"]], name="Q&A room")
    tok = {k: make.token(u) for k, u in p.items()}
    return {"room": room, "p": p, "tok": tok}


def api(client, w, who, method, url, body=None):
    return client.open(url, method=method, headers=bearer(w["tok"][who]), json=body)


def session(client, w, who="hana", **extra):
    r = api(client, w, who, "POST", f"/api/v1/rooms/{w['room'].id}/qa", {"title": "Ask the Chief", "starts_at": START,
                                                                        **extra})
    assert r.status_code == 201, r.json
    return r.json


def ask(client, w, sid, who="zebedee", body="Why are night shifts short-staffed?", anonymous=False):
    r = api(client, w, who, "POST", f"/api/v1/qa/{sid}/questions", {"body": body, "anonymous": anonymous})
    assert r.status_code == 201, r.json
    return r.json


def votes(qid):
    db.session.expire_all()
    q = db.session.get(QaQuestion, qid)
    n = db.session.scalar(select(func.count(QaVote.id)).where(QaVote.question_id == qid))
    return q.vote_count, n


def test_session_questions_votes_and_sorting(client, w):
    s = session(client, w)
    assert s["hosts"] == [{"id": w["p"]["hana"].id, "name": "Hana Host"}] and s["is_host"] and not s["moderated"]
    first = ask(client, w, s["id"], body="First question")
    second = ask(client, w, s["id"], who="vic", body="Second question")
    assert first["status"] == "open" and first["author"]["name"] == "Zebedee Quinnell"
    # one upvote per person, withdrawable; a second is refused and changes nothing
    r = api(client, w, "vic", "POST", f"/api/v1/questions/{first['id']}/vote")
    assert r.status_code == 200 and r.json["votes"] == 1 and r.json["my_vote"]
    r = api(client, w, "vic", "POST", f"/api/v1/questions/{first['id']}/vote")
    assert r.status_code == 409 and "already voted" in r.json["error"]["message"]
    assert votes(first["id"]) == (1, 1)
    assert api(client, w, "olu", "POST", f"/api/v1/questions/{first['id']}/vote").json["votes"] == 2
    r = api(client, w, "vic", "DELETE", f"/api/v1/questions/{first['id']}/vote")
    assert r.status_code == 200 and r.json["votes"] == 1 and not r.json["my_vote"]
    assert api(client, w, "vic", "DELETE", f"/api/v1/questions/{first['id']}/vote").status_code == 409
    assert votes(first["id"]) == (1, 1)
    # observers read but do not vote or ask; outsiders see nothing
    assert api(client, w, "obi", "POST", f"/api/v1/questions/{first['id']}/vote").status_code == 403
    assert api(client, w, "obi", "POST", f"/api/v1/qa/{s['id']}/questions", {"body": "x"}).status_code == 403
    assert api(client, w, "out", "GET", f"/api/v1/qa/{s['id']}").status_code == 404
    assert api(client, w, "out", "GET", f"/api/v1/questions/{first['id']}").status_code == 404
    by_votes = api(client, w, "obi", "GET", f"/api/v1/qa/{s['id']}/questions?sort=votes").json["questions"]
    newest = api(client, w, "obi", "GET", f"/api/v1/qa/{s['id']}/questions?sort=newest").json["questions"]
    assert [q["id"] for q in by_votes] == [first["id"], second["id"]]
    assert [q["id"] for q in newest] == [second["id"], first["id"]]
    assert api(client, w, "obi", "GET", f"/api/v1/qa/{s['id']}/questions?sort=loud").status_code == 422
    # the session is a thread and each question a post in it
    thread_posts = db.session.scalars(select(Post.body).where(Post.thread_id == s["thread_id"])).all()
    assert "First question" in thread_posts and "Second question" in thread_posts


def test_bad_input_is_refused_and_changes_nothing(client, w, make):
    s = session(client, w)
    q = ask(client, w, s["id"])
    base = f"/api/v1/qa/{s['id']}/questions"
    for body, field in (({"body": ""}, "body"), ({"body": "x" * 1001}, "body"), ({"body": 5}, "body"),
                        ({"body": "ok", "anonymous": "yes"}, "anonymous")):
        r = api(client, w, "zebedee", "POST", base, body)
        assert r.status_code == 422 and r.json["error"]["field"] == field, r.json
    for bad in ({"title": "T"}, {"title": "T", "starts_at": "soon"}, {"title": "", "starts_at": START},
                {"title": "T", "starts_at": START, "moderated": "no"},
                {"title": "T", "starts_at": START, "ends_at": "2026-11-01T10:00:00Z"},
                {"title": "T", "starts_at": START, "meeting_id": 999999}):
        assert api(client, w, "hana", "POST", f"/api/v1/rooms/{w['room'].id}/qa", bad).status_code == 422, bad
    # only owners and moderators name other hosts
    r = api(client, w, "vic", "POST", f"/api/v1/rooms/{w['room'].id}/qa",
            {"title": "T", "starts_at": START, "hosts": [w["p"]["hana"].id]})
    assert r.status_code == 403
    # answering by a non-host, approving by a non-moderator
    assert api(client, w, "vic", "POST", f"/api/v1/questions/{q['id']}/answer", {"body": "No"}).status_code == 403
    assert api(client, w, "mina", "POST", f"/api/v1/questions/{q['id']}/answer", {"body": "No"}).status_code == 403
    assert api(client, w, "vic", "POST", f"/api/v1/questions/{q['id']}/approve").status_code == 403
    assert api(client, w, "hana", "POST", f"/api/v1/questions/{q['id']}/answer", {}).status_code == 422
    # merging across sessions
    other = session(client, w, title="Another")
    q2 = ask(client, w, other["id"], body="Elsewhere")
    r = api(client, w, "hana", "POST", f"/api/v1/questions/{q['id']}/merge", {"into": q2["id"]})
    assert r.status_code == 422 and "same session" in r.json["error"]["message"]
    db.session.expire_all()
    assert db.session.get(QaQuestion, q["id"]).status == "open" and db.session.get(QaQuestion, q2["id"]).status == "open"
    # a question to an ended session
    assert api(client, w, "hana", "POST", f"/api/v1/qa/{s['id']}/end", {}).status_code == 200
    r = api(client, w, "vic", "POST", base, {"body": "Too late?"})
    assert r.status_code == 409 and "ended" in r.json["error"]["message"]
    assert api(client, w, "vic", "POST", f"/api/v1/questions/{q['id']}/vote").status_code == 409
    assert db.session.scalar(select(func.count(QaQuestion.id)).where(QaQuestion.session_id == s["id"])) == 1


def test_moderated_session_approve_edit_merge_decline(client, w):
    s = session(client, w, moderated=True)
    a = ask(client, w, s["id"], body="Will overtime be paid?")
    b = ask(client, w, s["id"], who="vic", body="Is overtime going to be paid?")
    assert a["status"] == "pending"
    # waiting: the asker and moderators see it, others do not (nor in the thread's posts, nor in search)
    assert api(client, w, "obi", "GET", f"/api/v1/questions/{a['id']}").status_code == 404
    assert [q["id"] for q in api(client, w, "obi", "GET", f"/api/v1/qa/{s['id']}/questions").json["questions"]] == []
    assert [q["id"] for q in api(client, w, "zebedee", "GET", f"/api/v1/qa/{s['id']}/questions").json["questions"]] \
        == [a["id"]]
    assert len(api(client, w, "mina", "GET", f"/api/v1/qa/{s['id']}/questions").json["questions"]) == 2
    for qid in (a["id"], b["id"]):
        assert api(client, w, "mina", "POST", f"/api/v1/questions/{qid}/approve").json["status"] == "open"
    assert api(client, w, "mina", "POST", f"/api/v1/questions/{a['id']}/approve").status_code == 409
    # edit: the note shows to everyone
    r = api(client, w, "hana", "POST", f"/api/v1/questions/{a['id']}/edit", {"body": "Will overtime be paid on time?"})
    assert r.status_code == 200
    seen = api(client, w, "obi", "GET", f"/api/v1/questions/{a['id']}").json
    assert seen["edited_by_moderator"] and seen["body"] == "Will overtime be paid on time?"
    # merge: votes combined, one per person kept
    for who in ("olu", "vic"):
        api(client, w, who, "POST", f"/api/v1/questions/{a['id']}/vote")
    for who in ("olu", "zebedee", "hana"):
        api(client, w, who, "POST", f"/api/v1/questions/{b['id']}/vote")
    r = api(client, w, "mina", "POST", f"/api/v1/questions/{b['id']}/merge", {"into": a["id"]})
    assert r.status_code == 200 and r.json["votes"] == 4
    assert votes(a["id"]) == (4, 4) and votes(b["id"]) == (0, 0)
    db.session.expire_all()
    assert db.session.get(QaQuestion, b["id"]).status == "merged"
    assert api(client, w, "vic", "POST", f"/api/v1/questions/{b['id']}/vote").status_code == 409
    # decline with a reason: the asker is told
    c = ask(client, w, s["id"], body="Rude question")
    r = api(client, w, "hana", "POST", f"/api/v1/questions/{c['id']}/decline", {"reason": ""})
    assert r.status_code == 422
    r = api(client, w, "hana", "POST", f"/api/v1/questions/{c['id']}/decline", {"reason": "Not about this topic"})
    assert r.status_code == 200 and r.json["status"] == "declined"
    n = db.session.scalar(select(Notification).where(Notification.user_id == w["p"]["zebedee"].id,
                                                     Notification.kind == "qa_decline"))
    assert n is not None and "declined your question" in notification_dict(n)["text"]
    assert api(client, w, "zebedee", "GET", f"/api/v1/questions/{c['id']}").json["decline_reason"] == "Not about this topic"
    assert api(client, w, "obi", "GET", f"/api/v1/questions/{c['id']}").status_code == 404


def test_now_answering_answers_and_the_end(app, client, w, make):
    s = session(client, w)
    q1, q2, q3 = (ask(client, w, s["id"], body=f"Question number {i}") for i in (1, 2, 3))
    assert api(client, w, "hana", "POST", f"/api/v1/questions/{q1['id']}/now-answering").json["status"] == "answering"
    api(client, w, "hana", "POST", f"/api/v1/questions/{q2['id']}/now-answering")
    db.session.expire_all()
    assert [db.session.get(QaQuestion, q["id"]).status for q in (q1, q2)] == ["open", "answering"]
    assert api(client, w, "obi", "GET", f"/api/v1/qa/{s['id']}").json["now_answering_id"] == q2["id"]
    r = api(client, w, "hana", "POST", f"/api/v1/questions/{q2['id']}/answer", {"body": "We hired zanzibarian staff."})
    assert r.status_code == 200 and r.json["status"] == "answered" and "zanzibarian" in r.json["answer"]["body"]
    assert api(client, w, "obi", "GET", f"/api/v1/qa/{s['id']}").json["now_answering_id"] is None
    assert api(client, w, "hana", "POST", f"/api/v1/questions/{q2['id']}/answer", {"aloud": True}).status_code == 409
    assert api(client, w, "hana", "POST", f"/api/v1/questions/{q1['id']}/answer", {"aloud": True}).json["answered_aloud"]
    n = db.session.scalar(select(Notification).where(Notification.user_id == w["p"]["zebedee"].id,
                                                     Notification.kind == "qa_answer"))
    assert n is not None
    # written answers are searchable (they are posts)
    settle(app)
    assert search_ids(w["p"]["obi"], "zanzibarian")
    # the end: unanswered questions get an owner and a due date; the session becomes an archive
    r = api(client, w, "hana", "POST", f"/api/v1/qa/{s['id']}/end", {"owner_id": w["p"]["olu"].id, "due_on": "1999-01-01"})
    assert r.status_code == 422
    r = api(client, w, "hana", "POST", f"/api/v1/qa/{s['id']}/end", {"owner_id": w["p"]["olu"].id})
    assert r.status_code == 200 and r.json["ended_at"]
    assert api(client, w, "hana", "POST", f"/api/v1/qa/{s['id']}/end", {}).status_code == 409
    left = api(client, w, "obi", "GET", f"/api/v1/questions/{q3['id']}").json
    assert left["owner"]["name"] == "Olu Owner" and left["due_on"]
    # reminders: when due, once per day, only the owner
    assert hosting.remind_due() == 0
    later = utcnow() + timedelta(days=qa.DUE_DAYS + 1)
    assert hosting.remind_due(later) == 1 and hosting.remind_due(later) == 0
    assert db.session.scalar(select(Notification).where(Notification.user_id == w["p"]["olu"].id,
                                                        Notification.kind == "qa_due")) is not None
    # the owner answers afterwards; the host cannot be replaced by anyone else
    assert api(client, w, "vic", "POST", f"/api/v1/questions/{q3['id']}/answer", {"body": "x"}).status_code == 403
    assert api(client, w, "olu", "POST", f"/api/v1/questions/{q3['id']}/answer", {"body": "Later"}).status_code == 200
    page = login_client(app, w["p"]["obi"]).get(f"/qa/{s['id']}").get_data(as_text=True)
    assert "Archive: ended" in page and "Question number 3" in page and "Answered" in page


def test_anonymous_asker_is_named_to_nobody(app, client, w):
    s = session(client, w)
    q = ask(client, w, s["id"], body="Is the quokkapunk project cancelled?", anonymous=True)
    asker = w["p"]["zebedee"]
    secret = ("Zebedee", "Quinnell", f'"id": {asker.id}')

    def clean(blob):
        text = json.dumps(blob) if not isinstance(blob, str) else blob
        assert not any(s_ in text for s_ in secret[:2]), text[:400]
        return text

    assert q["author"] == {"name": "Anonymous", "anonymous": True} and q["mine"]
    for who in ("hana", "obi", "mina"):   # the audience, the host and a moderator (without a reveal)
        clean(api(client, w, who, "GET", f"/api/v1/questions/{q['id']}").json)
        clean(api(client, w, who, "GET", f"/api/v1/qa/{s['id']}/questions").json)
        page = login_client(app, w["p"][who]).get(f"/qa/{s['id']}").get_data(as_text=True)
        card = page[page.index(f'id="q-{q["id"]}"'):]
        clean(card[:card.index("</li>")])   # (the page's own lists, e.g. owners to choose, name members)
        page = login_client(app, w["p"][who]).get(f"/threads/{s['thread_id']}").get_data(as_text=True)
        post = page[page.index("quokkapunk") - 3000:page.index("quokkapunk") + 200]
        assert "Zebedee" not in post
    api(client, w, "vic", "POST", f"/api/v1/questions/{q['id']}/vote")
    api(client, w, "hana", "POST", f"/api/v1/questions/{q['id']}/answer", {"body": "No, it goes on."})
    # events: no asker in any room event; the post has no author
    for (payload,) in db.session.execute(select(RoomEvent.payload).where(RoomEvent.room_id == w["room"].id)):
        data = json.loads(payload)
        if "question" in data or (data.get("post") or {}).get("body", "").startswith("Is the quokkapunk"):
            clean(data)
            assert (data.get("post") or {}).get("author") is None
    # search hits
    settle(app)
    r = client.get("/api/v1/search?q=quokkapunk", headers=bearer(w["tok"]["obi"]))
    assert r.status_code == 200 and r.json["results"]
    clean(r.json)
    # notifications: the anonymous asker is told of the answer; nobody else's notifications name them
    n = db.session.scalar(select(Notification).where(Notification.user_id == asker.id, Notification.kind == "qa_answer"))
    assert n is not None
    for other in db.session.scalars(select(Notification).where(Notification.user_id != asker.id)):
        clean(notification_dict(other))
    # the host (not a room moderator) cannot reveal; a moderator can, with a reason, and it is audited
    assert api(client, w, "hana", "POST", f"/api/v1/questions/{q['id']}/reveal", {"reason": "curious"}).status_code == 403
    assert api(client, w, "mina", "POST", f"/api/v1/questions/{q['id']}/reveal", {}).status_code == 422
    r = api(client, w, "mina", "POST", f"/api/v1/questions/{q['id']}/reveal", {"reason": "Rude follow-up"})
    assert r.status_code == 200 and r.json["asker"]["name"] == "Zebedee Quinnell"
    audits = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "qa.asker_revealed")).all()
    assert len(audits) == 1 and audits[0].target_id == q["id"]
    # exports: the host's data export (who answered it) names nobody who asked
    docs, _blobs = account_data.export_data(w["p"]["hana"])
    clean(json.dumps(docs, default=str))


def test_pages_and_meeting_minutes(app, client, w, make):
    m = meetings.start_meeting(w["p"]["hana"], w["room"].id, title="Town hall")
    s = session(client, w, meeting_id=m.id)
    q = ask(client, w, s["id"], body="Answered in the hall?")
    api(client, w, "hana", "POST", f"/api/v1/questions/{q['id']}/answer", {"aloud": True})
    assert "Answered in the hall?" in minutes.markdown(m)
    host = login_client(app, w["p"]["hana"])
    page = host.get(f"/qa/{s['id']}").get_data(as_text=True)
    assert "Answered aloud" in page and "End the session" in page
    assert "New Q&amp;A session" in host.get(f"/rooms/{w['room'].id}").get_data(as_text=True)
    r = host.post(f"/rooms/{w['room'].id}/qa/new", data={"title": "", "starts_at": "2026-12-01T10:00"})
    assert r.status_code == 422
    r = host.post(f"/rooms/{w['room'].id}/qa/new", data={"title": "Page-made", "starts_at": "2026-12-01T10:00",
                                                         "moderated": "1"})
    assert r.status_code == 302
