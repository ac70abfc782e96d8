"""Non-attributed (Chatham House) rooms: members see "Participant n", never the
account. Seeds authors with distinctive names and e-mail addresses, then reads
every page, API response, Socket.IO event and search result of the room as a
non-moderator and greps each body for the authors' names, e-mail addresses and
ids: every GET route of the app is walked with the room's ids (a new route is
walked without being listed here), and the real Socket.IO events are captured
with the Flask-SocketIO test client while people post, react, type, join the
room by posting, change role and leave. Membership is covered too: the members
page and API, the @-mention suggestions and member.* events name nobody to a
non-moderator (moderators still see the members)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from auth import audit
from collab.errors import NotFound
from collab import tasks
from rooms import moderation, reactions, trust_settings
from rooms import services as rs
from rooms import posts as room_posts
from rooms.notifications import Notification
from tests.conftest import bearer
from tests.live_support import Collector, login_client, sock


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02, "LIVE_POST_LIMIT": "1000 per minute"}


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


SECRETS = ("Zebediah Quillfeather", "zebediah.quillfeather@example.org", "Philomena Vexbright",
           "philomena.vexbright@example.org")


def _leaks(text: str) -> list[str]:
    folded = text.casefold()
    return [s for s in SECRETS if s.casefold() in folded]


def _ids_in(obj, keys=("author", "user", "actor")) -> set[int]:
    """Account ids carried under author/user/actor anywhere in a JSON value."""
    found: set[int] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys and isinstance(v, dict) and isinstance(v.get("id"), int):
                found.add(v["id"])
            if k == "user_ids" and isinstance(v, list):
                found.update(i for i in v if isinstance(i, int))
            found |= _ids_in(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            found |= _ids_in(v, keys)
    return found



def _person_ids(obj) -> set[int]:
    """Account ids anywhere a meeting's JSON carries a person: user_id, except, created_by, presenter,
    chairs and invitees."""
    found: set[int] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("user_id", "except") and isinstance(v, int) and not isinstance(v, bool):
                found.add(v)
            if k in ("created_by", "presenter") and isinstance(v, dict) and isinstance(v.get("id"), int):
                found.add(v["id"])
            if k in ("chairs", "invitees") and isinstance(v, list):
                found.update(p["id"] for p in v if isinstance(p, dict) and isinstance(p.get("id"), int))
            found |= _person_ids(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= _person_ids(v)
    return found

@pytest.fixture
def frank(app, make):
    owner = make.user(name="Olive Owner")
    zeb = make.user(name="Zebediah Quillfeather", email="zebediah.quillfeather@example.org", kind="iag")
    phil = make.user(name="Philomena Vexbright", email="philomena.vexbright@example.org", kind="iag")
    reader = make.user(name="Rhea Reader")
    room = make.room(owner, name="Stop and search policy", members=[zeb, phil, reader])
    trust_settings.set_non_attributed(owner, room.id, True)
    thread = make.thread(zeb, room, title="Draft policy", body="The draft ignores stopwatch evidence entirely.")
    first = make.reply(phil, thread, body="I disagree about the stopwatch data, @Rhea Reader.")
    second = make.reply(zeb, thread, body="Zebediah's second stopwatch point.", parent=first)
    reactions.set_reaction(phil, second.id, "👍", True)
    return {"owner": owner, "zeb": zeb, "phil": phil, "reader": reader, "room": room, "thread": thread,
            "posts": [first, second]}


def test_pseudonyms_are_stable_per_thread_and_numbered_in_order(app, make, frank):
    t = frank["thread"]
    r = app.test_client().get(f"/api/v1/threads/{t.id}", headers=bearer(make.token(frank["reader"])))
    names = [p["author"]["name"] for p in r.json["posts"]]
    assert names == ["Participant 1", "Participant 2", "Participant 1"]
    assert r.json["author"] == {"name": "Participant 1", "pseudonym": True}
    other = make.thread(frank["phil"], frank["room"], title="Another")  # a new thread numbers afresh
    r = app.test_client().get(f"/api/v1/threads/{other.id}", headers=bearer(make.token(frank["reader"])))
    assert r.json["posts"][0]["author"]["name"] == "Participant 1"


def test_no_page_or_api_response_names_an_author(app, make, frank):
    room, t = frank["room"], frank["thread"]
    post = frank["posts"][1]
    c = login_client(app, frank["reader"])
    pages = [f"/rooms/{room.id}", f"/threads/{t.id}", f"/threads/{t.id}?view=flat", f"/posts/{post.id}/reply",
             f"/posts/{post.id}/history", f"/posts/{post.id}/flag", "/notifications", "/rooms",
             f"/search?q=stopwatch&room_id={room.id}", "/search?q=stopwatch", f"/threads/{t.id}/reactions.json"]
    for path in pages:
        r = c.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert _leaks(r.get_data(as_text=True)) == [], path
    assert "Participant 1" in c.get(f"/threads/{t.id}").get_data(as_text=True)
    assert "Participant 2" in c.get("/search?q=stopwatch").get_data(as_text=True)
    # the reader was @mentioned by Philomena: the notification shows her pseudonym
    assert "Participant 2 mentioned you" in c.get("/notifications").get_data(as_text=True)

    tok = make.token(frank["reader"])
    api = app.test_client()
    authors = {frank["zeb"].id, frank["phil"].id}
    for path in [f"/api/v1/rooms/{room.id}", f"/api/v1/rooms/{room.id}/threads", f"/api/v1/threads/{t.id}",
                 f"/api/v1/posts/{post.id}", "/api/v1/search?q=stopwatch", "/api/v1/notifications",
                 "/api/v1/search?q=author%3AQuillfeather"]:
        r = api.get(path, headers=bearer(tok))
        assert r.status_code == 200, (path, r.status_code, r.json)
        assert _leaks(r.get_data(as_text=True)) == [], path
        assert _ids_in(r.json) & authors == set(), path
    # author: never finds posts of a non-attributed room (that would say who wrote them)
    assert api.get("/api/v1/search?q=author%3AQuillfeather", headers=bearer(tok)).json["results"] == []


def test_no_socket_event_names_an_author(app, make, frank):
    room, t = frank["room"], frank["thread"]
    reader = Collector(sock(app, token=make.token(frank["reader"])))
    ack = reader.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    assert ack["ok"]
    reader.sc.emit("subscribe_thread", {"thread_id": t.id}, callback=True)
    sync = reader.sc.emit("sync", {"room_id": room.id, "after_seq": 0}, callback=True)
    zeb = Collector(sock(app, token=make.token(frank["zeb"])))
    zeb.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    zeb.sc.emit("subscribe_thread", {"thread_id": t.id}, callback=True)
    zeb.sc.emit("typing", {"thread_id": t.id}, callback=True)
    ack = zeb.sc.emit("post", {"thread_id": t.id, "body": "live stopwatch reply", "client_id": "z-1"}, callback=True)
    assert ack["ok"] and ack["post"]["author"] == {"name": "Participant 1", "pseudonym": True}
    reactions.set_reaction(frank["zeb"], frank["posts"][0].id, "👍", True)
    assert reader.wait("post.created") and reader.wait("typing") and reader.wait("reaction.added")
    assert reader.wait("presence", lambda d: d["count"] >= 2)
    assert reader.named("typing")[-1]["user"] == {"name": "Participant 1", "pseudonym": True}
    authors = {frank["zeb"].id, frank["phil"].id}
    events = [e for e in reader.pull() if not e["name"].startswith("member.")]
    events.append({"name": "sync-ack", "args": [{k: v for k, v in sync.items() if k != "events"}]})
    events += [{"name": e["event"], "args": [e["data"]]} for e in sync["events"] if not e["event"].startswith("member.")]
    assert len(events) > 6
    for e in events:
        text = json.dumps(e, ensure_ascii=False)
        assert _leaks(text) == [], e
        assert _ids_in(e["args"]) & authors == set(), e


def test_moderator_reveal_is_audited_and_tells_the_author(app, make, frank):
    owner, zeb = frank["owner"], frank["zeb"]
    post = frank["posts"][1]
    c = login_client(app, owner)
    page = c.get(f"/threads/{frank['thread'].id}").get_data(as_text=True)
    assert _leaks(page) == []  # moderators see pseudonyms too until they reveal
    r = c.post(f"/posts/{post.id}/moderate", data={"action": "reveal", "reason": "Checking a complaint"})
    assert r.status_code == 200 and "Zebediah Quillfeather" in r.get_data(as_text=True)
    ev = audit.query(action="moderation.identity_revealed")[0]
    assert ev.actor_id == owner.id and ev.target_id == post.id and "Checking a complaint" in ev.detail
    from sqlalchemy import select

    from collab.extensions import db

    n = db.session.scalar(select(Notification).where(Notification.user_id == zeb.id, Notification.post_id == post.id))
    assert n is not None and n.kind == "revealed"
    # a plain member cannot reveal: the page is a 404
    rc = login_client(app, frank["reader"])
    assert rc.post(f"/posts/{post.id}/moderate", data={"action": "reveal", "reason": "x"}).status_code == 404
    with pytest.raises(NotFound):
        moderation.reveal_author(frank["reader"], post.id, "curious")


def test_attribution_cannot_change_once_people_have_written(app, make, frank):
    from collab.errors import Invalid

    with pytest.raises(Invalid):
        trust_settings.set_non_attributed(frank["owner"], frank["room"].id, False)
    assert rs.get_room(frank["owner"], frank["room"].id).non_attributed is True


# -- every GET route, membership, mentions, joining by posting ------------------------------------------

SKIP_ENDPOINTS = {"static"}   # CSS/JS files: no room data


def _ids_in_html(text: str, ids: set[int]) -> list[str]:
    """Account ids written into a page as data-user-id / user_id= / "user_id": n."""
    import re

    found = re.findall(r"user[-_]id(?:s)?[\"']?\s*[=:]\s*[\"'\[]?\s*(\d+)", text)
    return [i for i in found if int(i) in ids]


def _text_of(r) -> str:
    """What a response says: a PDF's text (pypdf), nothing of an image, any other body as text."""
    if r.mimetype == "application/pdf":
        import io

        from pypdf import PdfReader

        return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.data)).pages)
    if r.mimetype.startswith("image/"):
        return ""
    return r.data.decode("utf-8", "replace")


def _walk_get_routes(app, c, api, tok, ids, authors, room_id, thread_id, queries=("stopwatch", "Quillfeather")) -> int:
    """Every GET route of app.url_map filled with `ids`, read as a plain member (HTML with the signed-in
    client `c`, the API with the token); fails on any author's name, e-mail address or account id.
    Returns how many answered 200."""
    import re

    walked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIP_ENDPOINTS:
            continue
        url = rule.rule
        for name in rule.arguments:
            url = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?" + name + ">", str(ids[name]), url)
        variants = [url]
        if rule.endpoint in ("search.search", "api.search"):
            variants = [f"{url}?q={q}" for q in queries] + [f"{url}?q={queries[0]}&room_id={room_id}",
                                                              f"{url}?q=author%3AQuillfeather", f"{url}?q=zeb-chart"]
        elif rule.endpoint == "live.mention_json":
            variants = [f"{url}?q=", f"{url}?q=Ze", f"{url}?q=Phil", f"{url}?q=&thread_id={thread_id}",
                        f"{url}?q=P&thread_id={thread_id}"]
        elif rule.endpoint in ("rooms.thread",):
            variants = [url, f"{url}?view=flat"]
        for v in variants:
            if v.startswith("/api/"):
                r = api.get(v, headers=bearer(tok))
            else:
                r = c.get(v)
            assert r.status_code < 500, (v, r.status_code)
            if r.status_code != 200:
                continue
            walked += 1
            text = _text_of(r)
            assert _leaks(text) == [], (v, _leaks(text))
            if r.is_json:
                assert _ids_in(r.json) & authors == set(), v
                assert _person_ids(r.json) & authors == set(), v
            else:
                assert _ids_in_html(text, authors) == [], v
    return walked


@pytest.fixture
def frank_full(app, make, frank):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "PNG")
    buf.seek(0)
    post, _ = room_posts.create_post(frank["zeb"], frank["thread"].id, body="A stopwatch chart, attached.",
                                     uploads=[("zeb-chart.png", buf)])
    from sqlalchemy import select

    from collab.extensions import db
    from rooms.models import Attachment

    att = db.session.scalar(select(Attachment).where(Attachment.post_id == post.id))
    frank["attachment"] = att
    frank["chart_post"] = post
    return frank


def test_every_get_route_of_the_room_names_no_author(app, make, frank_full):
    """Walks app.url_map: every GET route, filled with this room's ids, as a plain member."""
    from sqlalchemy import select

    from collab.extensions import db

    from rooms.ideas import services as ideas
    from rooms.polls import services as polls
    from rooms.qa import hosting
    from rooms.qa import services as qa

    f = frank_full
    n_id = db.session.scalar(select(Notification.id).where(Notification.user_id == f["reader"].id))
    assert n_id, "Philomena's reply mentions the reader"
    # an idea by Zebediah with Philomena's vote, adopted: its pages, list, API and "You said, we did" too
    ideas.update_settings(f["owner"], f["room"].id, enabled=True, vote_budget=5)
    idea = ideas.create_idea(f["zeb"], f["room"].id, title="Stopwatch idea", body="Count every stopwatch stop.")
    ideas.vote(f["phil"], idea.id)
    ideas.vote(f["reader"], idea.id)
    ideas.set_status(f["owner"], idea.id, status="under_review")
    ideas.set_status(f["owner"], idea.id, status="adopted", response="Yes, from May.")
    # a poll Zebediah started, with Philomena's vote, its results shown always: its thread, page and API too
    poll = polls.create_poll(f["zeb"], f["room"].id, question="Stopwatch trial where?", kind="single",
                             options=["North", "South"])
    polls.vote(f["phil"], poll.id, choices=[0])
    # a Q&A session Zebediah hosts: Philomena's question (voted up, answered by him) and an anonymous one of his
    session = qa.create_session(f["zeb"], f["room"].id, title="Stopwatch Q&A", starts_at="2026-12-01T10:00:00Z")
    question = qa.ask(f["phil"], session.id, body="Stopwatch question from the floor")
    qa.ask(f["zeb"], session.id, body="Stopwatch worry", anonymous=True)
    qa.vote(f["reader"], question.id)
    hosting.answer(f["zeb"], question.id, body="Stopwatch answer")
    ids = {"room_id": f["room"].id, "thread_id": f["thread"].id, "post_id": f["posts"][1].id,
           "attachment_id": f["attachment"].id, "filename": f["attachment"].filename, "notification_id": n_id,
           "session_id": 1, "user_id": f["reader"].id, "emoji": "👍", "token": "x", "meeting_id": 999_999,
           "deck_id": 999_999, "page": 1, "key_message_id": 999_999, "mute_id": 999_999, "idea_id": idea.id,
           "poll_id": poll.id, "qa_id": session.id, "question_id": question.id,
           "recording_id": 999_999}   # a non-attributed room's meetings are never recorded
    authors = {f["zeb"].id, f["phil"].id}
    c = login_client(app, f["reader"])
    tok = make.token(f["reader"])
    api = app.test_client()
    walked = _walk_get_routes(app, c, api, tok, ids, authors, f["room"].id, f["thread"].id)
    assert walked >= 25, walked
    # the suggestions of a non-attributed thread are its participants' pseudonyms
    people = c.get(f"/rooms/{f['room'].id}/mentions.json?q=&thread_id={f['thread'].id}").json["people"]
    assert people == [{"name": "Participant 1", "pseudonym": True}, {"name": "Participant 2", "pseudonym": True}]
    assert c.get(f"/rooms/{f['room'].id}/mentions.json?q=Ze").json["people"] == []
    # members: a plain member sees only themselves, with a word why; a moderator sees everyone
    page = c.get(f"/rooms/{f['room'].id}/members").get_data(as_text=True)
    assert "Rhea Reader" in page and 'id="members-hidden"' in page
    r = api.get(f"/api/v1/rooms/{f['room'].id}/members", headers=bearer(tok))
    assert [m["user"]["id"] for m in r.json["members"]] == [f["reader"].id]
    owner_page = login_client(app, f["owner"]).get(f"/rooms/{f['room'].id}/members").get_data(as_text=True)
    assert "Zebediah Quillfeather" in owner_page and "members-hidden" not in owner_page


def test_mentioning_a_participant_by_pseudonym_notifies_them_without_naming_them(app, make, frank):
    from sqlalchemy import select

    from collab.extensions import db

    t = frank["thread"]
    room_posts.create_post(frank["reader"], t.id, body="@Participant 1 could you share the stopwatch figures?")
    n = db.session.scalar(select(Notification).where(Notification.user_id == frank["zeb"].id,
                                                     Notification.kind == "mention"))
    assert n is not None
    page = login_client(app, frank["zeb"]).get("/notifications").get_data(as_text=True)
    assert "Participant 3 mentioned you" in page and "Rhea Reader mentioned you" not in page
    assert db.session.scalar(select(Notification).where(Notification.user_id == frank["phil"].id,
                                                        Notification.kind == "mention")) is None


def test_membership_changes_and_joining_by_posting_name_nobody_on_the_socket(app, make):
    """An organisation-wide non-attributed room: a colleague joins it by posting (member.added),
    an owner changes a role (member.updated) and removes someone (member.removed). A member
    following the room live, and one catching up with `sync`, learn nobody's name or id."""
    org = make.org()
    owner = make.user(name="Olive Owner", org=org)
    zeb = make.user(name="Zebediah Quillfeather", email="zebediah.quillfeather@example.org", org=org)
    phil = make.user(name="Philomena Vexbright", email="philomena.vexbright@example.org", org=org)
    reader = make.user(name="Rhea Reader", org=org)
    room = make.room(owner, visibility="organisation", name="Force-wide frank room", members=[reader])
    trust_settings.set_non_attributed(owner, room.id, True)
    thread = make.thread(owner, room, title="Open question", body="What should we stop doing?")
    live = Collector(sock(app, token=make.token(reader)))
    assert live.sc.emit("subscribe", {"room_id": room.id}, callback=True)["ok"]
    live.sc.emit("subscribe_thread", {"thread_id": thread.id}, callback=True)
    zs = Collector(sock(app, token=make.token(zeb)))
    ack = zs.sc.emit("post", {"thread_id": thread.id, "body": "Stop stopwatch stops.", "client_id": "zj"},
                     callback=True)
    assert ack["ok"] and ack["post"]["author"]["name"] == "Participant 2"
    room_posts.create_post(phil, thread.id, body="Agree, with a caveat.")                # phil joins by posting too
    rs.add_member(owner, room.id, user_id=zeb.id, role="moderator")             # member.updated
    rs.remove_member(owner, room.id, phil.id)                                    # member.removed (still reads)
    assert live.wait("member.removed")
    assert len(live.named("member.added")) == 2 and live.named("member.updated")
    owner_view = login_client(app, owner).get(f"/rooms/{room.id}/members").get_data(as_text=True)
    assert "Zebediah Quillfeather" in owner_view    # the room's managers still see who belongs
    sync = live.sc.emit("sync", {"room_id": room.id, "after_seq": 0}, callback=True)
    assert any(e["event"].startswith("member.") for e in sync["events"])
    authors = {zeb.id, phil.id}
    events = live.pull() + [{"name": e["event"], "args": [e["data"]]} for e in sync["events"]]
    for e in events:
        text = json.dumps(e, ensure_ascii=False)
        assert _leaks(text) == [], e
        assert _ids_in(e["args"]) & authors == set(), e
    member_events = [e for e in events if e["name"].startswith("member.")]
    assert member_events and all(e["args"][0]["user"] == {"name": "A member", "pseudonym": True}
                                 for e in member_events)
    # the same room, attributed: the events do name people (so the check above can fail)
    plain = make.room(owner, visibility="organisation", name="Attributed room")
    live.sc.emit("subscribe", {"room_id": plain.id}, callback=True)
    room_posts.create_thread(zeb, plain.id, title="Named", body="Named post")
    added = live.wait("member.added", lambda d: d["room_id"] == plain.id)
    assert added["user"]["name"] == "Zebediah Quillfeather"


def test_notification_emails_name_no_author(app, make, frank):
    """Mention e-mails (sent at once) and the daily digest of a non-attributed room say
    "Participant n", never the author's name or address."""
    from rooms import notify_email
    from tests.live_support import SmtpSink

    sink = SmtpSink()
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port)
        t = frank["thread"]
        room_posts.create_post(frank["zeb"], t.id, body="@Participant 2 and @Rhea Reader: see the stopwatch annex.")
        tasks.settle(app)
        mails = sink.wait(2)
        assert {m["to"][0] for m in mails} >= {"philomena.vexbright@example.org", frank["reader"].email}
        assert notify_email.send_due_digests() >= 1
        mails = sink.wait(3)
        assert any("digest" in m["subject"].lower() for m in mails)
        for m in mails:
            text = m["subject"] + "\n" + m["body"]
            # each mail goes to its own recipient; the author's name or address is in none of them
            assert "Zebediah" not in text and "zebediah.quillfeather" not in text, m
            if m["to"] != ["philomena.vexbright@example.org"]:
                assert _leaks(text) == [], m
        assert any("Participant 1 mentioned you" in m["body"] for m in mails)
    finally:
        app.config.update(SMTP_HOST=None)
        sink.stop()


# -- meetings (issue 10, leak 3) ----------------------------------------------------------------------------

def test_scheduling_in_a_non_attributed_room_is_no_membership_oracle(app, make, frank):
    """A member who is not a moderator may name only themself as chair or invitee; any other id
    (a member, an account outside the room, no account at all) gets the very same answer."""
    room, zeb = frank["room"], frank["zeb"]
    outsider = make.user(name="Otto Outsider")
    api = app.test_client()
    tok = make.token(zeb)
    answers = set()
    for field in ("chairs", "invitees"):
        for uid in (frank["phil"].id, outsider.id, 9_999_999):
            r = api.post(f"/api/v1/rooms/{room.id}/meetings", headers=bearer(tok),
                         json={"title": "Probe", "starts_at": "2030-01-10T10:00:00Z", field: [uid]})
            assert r.status_code == 422, r.json
            answers.add((field, r.json["error"]["message"], r.json["error"].get("field")))
    assert len({(m, f) for _field, m, f in answers if _field == "chairs"}) == 1, answers
    assert len({(m, f) for _field, m, f in answers if _field == "invitees"}) == 1, answers
    r = api.post(f"/api/v1/rooms/{room.id}/meetings", headers=bearer(tok),
                 json={"title": "Mine", "starts_at": "2030-01-10T10:00:00Z", "chairs": [zeb.id]})
    assert r.status_code == 201, r.json
    assert r.json["chairs"] == [{"name": "Participant 1", "number": 1, "pseudonym": True}]


def test_meetings_of_a_non_attributed_room_name_nobody_but_to_moderators(app, make, frank):
    """A moderator schedules a meeting with two chairs and invitees; Zebediah (a chair, not a
    moderator) runs it; Philomena joins, raises a hand, chats and votes; the minutes are posted.
    The reader follows everything live and then walks every GET route of the app: no name, e-mail
    or account id of Zebediah or Philomena reaches them. The moderator sees names, audited."""
    import io

    from pypdf import PdfReader
    from sqlalchemy import select

    from collab.extensions import db
    from rooms.meetings.models import MeetingPlan

    owner, zeb, phil, reader, room = frank["owner"], frank["zeb"], frank["phil"], frank["reader"], frank["room"]
    authors = {zeb.id, phil.id}
    soon = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    api = app.test_client()
    live = Collector(sock(app, token=make.token(reader)))
    assert live.sc.emit("subscribe", {"room_id": room.id}, callback=True)["ok"]
    r = api.post(f"/api/v1/rooms/{room.id}/meetings", headers=bearer(make.token(owner)),
                 json={"title": "Stopwatch plenary", "agenda": "1. Figures", "starts_at": soon,   # in its window
                       "chairs": [zeb.id, owner.id], "invitees": [phil.id, reader.id]})
    assert r.status_code == 201, r.json
    assert [c["name"] for c in r.json["chairs"]] == ["Zebediah Quillfeather", "Olive Owner"]   # the moderator sees names
    mid = r.json["id"]
    plan = db.session.get(MeetingPlan, mid)
    announce = plan.announce_thread_id
    # the invitees hear of it without being named
    assert db.session.scalar(select(Notification.id).where(Notification.user_id == phil.id,
                                                           Notification.thread_id == announce))

    rc = Collector(sock(app, token=make.token(reader)))
    joined = rc.sc.emit("meeting_join", {"meeting_id": mid}, callback=True)
    assert joined["ok"], joined
    zs = sock(app, token=make.token(zeb))
    ps = sock(app, token=make.token(phil))
    assert zs.emit("meeting_join", {"meeting_id": mid}, callback=True)["ok"]
    pj = ps.emit("meeting_join", {"meeting_id": mid}, callback=True)
    assert pj["ok"] and pj["state"]["me"]["sees_names"] is False
    # Philomena joins the call (her media token): she attends, and the register numbers her
    assert api.post(f"/api/v1/meetings/{mid}/token", headers=bearer(make.token(phil))).status_code == 200
    mod = Collector(sock(app, token=make.token(owner)))
    mj = mod.sc.emit("meeting_join", {"meeting_id": mid}, callback=True)
    assert mj["ok"] and mj["state"]["me"]["sees_names"] is True

    def ok(sc, event, **data):
        ack = sc.emit(event, dict(data, meeting_id=mid), callback=True)
        assert ack["ok"], (event, ack)
        return ack

    ok(ps, "meeting_hand", up=True)
    ok(ps, "meeting_chat", body="Philomena's stopwatch remark in the chat")
    ok(zs, "meeting_chat", body="The chair's stopwatch answer")
    kid = ok(zs, "km_draft", text="We ask for the stopwatch figures")["key_message_id"]
    ok(zs, "km_open", key_message_id=kid)
    ok(ps, "km_vote", key_message_id=kid, choice="agree", comment="Long overdue")
    ok(zs, "km_close", key_message_id=kid, outcome="agreed")
    zstate = ok(zs, "meeting_state")["state"]      # the chair (not a moderator) works by numbers
    assert _person_ids(zstate) & {phil.id, owner.id, reader.id} == set()
    phil_no = next(r["number"] for r in zstate["attendance"]["remote"] if r["name"] != "Participant 1"
                   and r["number"] == pj["state"]["me"]["number"])
    hand = zstate["hands"][0]
    ok(zs, "meeting_floor", hand_id=hand["id"])
    ok(zs, "meeting_attend", participant=phil_no, present=True)
    ok(zs, "meeting_presenter", participant=phil_no)
    ok(zs, "meeting_mute_all")
    ok(zs, "meeting_mute", participant=phil_no)   # one person, by number
    ok(zs, "meeting_action", text="Publish the stopwatch annex")
    minutes_thread = ok(zs, "meeting_minutes")["thread_id"]
    tasks.settle(app)

    # what the reader received live, and what `sync` replays
    assert rc.wait("meeting.chat") and rc.wait("meeting.mute")
    last = rc.wait("meeting.state", lambda d: d["minutes_thread_id"] is not None)
    assert last is not None
    assert [c["name"] for c in last["chairs"]] == ["Participant 1", "Participant 2"]
    assert {m["name"] for m in last["chat"]} == {"Participant 1", f"Participant {phil_no}"}
    assert last["presenter"]["name"] == f"Participant {phil_no}"
    sync = live.sc.emit("sync", {"room_id": room.id, "after_seq": 0}, callback=True)
    events = rc.pull() + live.pull() + [{"name": e["event"], "args": [e["data"]]} for e in sync["events"]]
    assert any(e["name"] == "meeting.scheduled" for e in events)
    assert len([e for e in events if e["name"].startswith("meeting.")]) > 8
    for e in events:
        text = json.dumps(e, ensure_ascii=False)
        assert _leaks(text) == [], e
        assert (_ids_in(e["args"]) | _person_ids(e["args"])) & authors == set(), e
    # the moderator followed with names, on a channel of their own
    named = mod.wait("meeting.state", lambda d: d["minutes_thread_id"] is not None)
    assert "Zebediah Quillfeather" in [c["name"] for c in named["chairs"]]
    assert not any("Zebediah" in json.dumps(d) for d in rc.named("meeting.state"))

    # every GET route, with this meeting's ids, as the reader
    c = login_client(app, reader)
    tok = make.token(reader)
    n_id = db.session.scalar(select(Notification.id).where(Notification.user_id == reader.id))
    ids = {"room_id": room.id, "thread_id": announce, "post_id": frank["posts"][1].id, "attachment_id": 999_999,
           "filename": "x.png", "notification_id": n_id or 999_999, "session_id": 1, "user_id": reader.id,
           "emoji": "👍", "token": "x", "meeting_id": mid, "deck_id": 999_999, "page": 1, "key_message_id": kid,
           "mute_id": 999_999, "idea_id": 999_999, "poll_id": 999_999, "qa_id": 999_999,
           "question_id": 999_999, "recording_id": 999_999}
    walked = _walk_get_routes(app, c, api, tok, ids, authors, room.id, announce, queries=("stopwatch", "plenary"))
    assert walked >= 25, walked
    for path in (f"/meetings/{mid}", f"/threads/{announce}", f"/threads/{minutes_thread}",
                 f"/api/v1/threads/{minutes_thread}", f"/api/v1/meetings/{mid}", f"/api/v1/meetings/{mid}/state",
                 f"/meetings/{mid}/state", "/api/v1/meetings", f"/meetings/{mid}.ics"):
        r = api.get(path, headers=bearer(tok)) if path.startswith("/api/") else c.get(path)
        assert r.status_code == 200, (path, r.status_code)
        text = r.get_data(as_text=True)
        assert _leaks(text) == [], (path, _leaks(text))
        if r.is_json:
            assert (_ids_in(r.json) | _person_ids(r.json)) & authors == set(), path
    assert "Participant 1" in c.get(f"/threads/{minutes_thread}").get_data(as_text=True)
    meeting_json = api.get(f"/api/v1/meetings/{mid}", headers=bearer(tok)).json
    assert meeting_json["created_by"] == {"name": "Participant 2", "number": 2, "pseudonym": True}
    pdf = c.get(f"/meetings/{mid}/minutes.pdf")
    assert pdf.status_code == 200
    pdf_text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Participant 1" in pdf_text and "Publish the stopwatch annex" in pdf_text
    assert _leaks(pdf_text) == [], _leaks(pdf_text)

    # the moderator sees names (page, API, PDF), and each reveal is in the audit log
    before = len(audit.query(action="meeting.names_shown", actor_id=owner.id))
    oc = login_client(app, owner)
    assert "Zebediah Quillfeather" in oc.get(f"/meetings/{mid}").get_data(as_text=True)
    full = api.get(f"/api/v1/meetings/{mid}/state", headers=bearer(make.token(owner))).json
    assert "Philomena Vexbright" in [m["name"] for m in full["chat"]]
    opdf = oc.get(f"/meetings/{mid}/minutes.pdf")
    assert "Zebediah Quillfeather" in "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(opdf.data)).pages)
    shown = audit.query(action="meeting.names_shown", actor_id=owner.id)
    assert len(shown) >= before + 3 and all(e.target_id == mid and e.room_id == room.id for e in shown)
    assert audit.query(action="meeting.names_shown", actor_id=reader.id) == []
