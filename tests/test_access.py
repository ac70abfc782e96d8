"""Who may reach what: every route refuses an anonymous caller, and a signed-in
account that is not a member of a private room gets 404 for everything in it,
through the HTML pages and the API alike."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from collab.extensions import db
from tests.conftest import PASSWORD, bearer

# Open to anonymous callers by design.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static", "auth.accept_invite", "auth.reset_password",
                    "auth.forgot_password",
                    # a media worker's signed captions report: no session, its HMAC signature is the credential
                    "transcript.worker_report",
                    # the monitoring endpoints: open with their own rules (loopback / allow-lists; the
                    # check's detail and the metrics are refused to others: tests/test_monitoring.py)
                    "monitor.healthz", "monitor.readyz", "monitor.metrics_endpoint"}
ROOM_SCOPED_PARAMS = {"room_id", "thread_id", "post_id", "attachment_id"}


def png_bytes(size=(64, 48), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def seed(make) -> dict:
    """A private room with a thread, a reply with an image, an edited post."""
    from rooms import posts as room_posts

    org = make.org()
    owner = make.user(org=org, name="Owner Person")
    member = make.user(org=org, name="Member Person")
    room = make.room(owner, visibility="private", members=[member], name="Secret room")
    thread = make.thread(owner, room, title="Secret thread", body="Secret opening")
    reply, _ = room_posts.create_post(member, thread.id, body="Secret reply",
                                      uploads=[("photo.png", io.BytesIO(png_bytes()))])
    room_posts.edit_post(member, reply.id, body="Secret reply, edited")
    att = reply.attachments[0] if reply.attachments else None
    from rooms.models import Attachment

    att = db.session.scalar(select(Attachment).where(Attachment.post_id == reply.id))
    assert att is not None and att.is_image
    return {
        "org": org, "owner": owner, "member": member, "room": room, "thread": thread, "reply": reply, "att": att,
        "room_id": room.id, "thread_id": thread.id, "post_id": reply.id, "attachment_id": att.id,
        "filename": att.filename, "user_id": member.id, "token": "not-a-real-token",
    }


def url_for_rule(rule, ids: dict) -> str:
    """The rule's address with real ids in place of its parameters."""
    url = rule.rule
    for name in rule.arguments:
        value = ids.get(name, 1)
        url = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?" + name + ">", str(value), url)
    assert "<" not in url, url
    return url


def methods_of(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def table_counts() -> dict:
    """Rows per table, leaving out work queues (outboxes) that background workers drain at their own pace."""
    from collab.db import Base

    db.session.remove()
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables
            if not t.name.endswith("_outbox")}


FORM = {"body": "sneaky text", "title": "sneaky", "name": "sneaky", "description": "x", "visibility": "national",
        "action": "archive", "email": "sneaky@example.org", "role": "owner", "user_id": "1",
        "token_name": "sneaky", "password": "a long enough sneaky passphrase"}
JSON = {"body": "sneaky text", "title": "sneaky", "name": "sneaky", "user_id": 1, "role": "owner"}


def test_every_route_refuses_anonymous_callers(app, make):
    ids = seed(make)
    before = table_counts()
    c = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = url_for_rule(rule, ids)
        for method in methods_of(rule):
            if url.startswith("/api/"):
                r = c.open(url, method=method, json=JSON)
                assert r.status_code == 401, (method, url, r.status_code)
                assert r.json["error"]["code"] == "unauthorized"
            else:
                r = c.open(url, method=method, data=FORM)
                assert r.status_code == 302, (method, url, r.status_code)
                assert re.match(r"^(https?://[^/]+)?/login(\?|$)", r.headers["Location"]), (url, r.headers["Location"])
            assert b"Secret" not in r.data
            checked += 1
    assert checked >= 35
    assert table_counts() == before


def test_public_routes_are_only_the_expected_ones(app, make):
    """The exceptions above really are open (so the list is not hiding anything else)."""
    make.user()
    c = app.test_client()
    assert c.get("/login").status_code == 200
    assert c.get("/static/css/app.css").status_code == 200
    assert c.get("/invite/not-a-real-token").status_code == 404
    assert c.get("/reset/not-a-real-token").status_code == 404
    assert c.get("/password/forgot").status_code == 404   # open, but only where SMTP is set (test_password_reset.py)
    assert c.get("/setup").status_code == 302


@pytest.mark.parametrize("who", ["colleague", "admin", "iag"])
def test_non_member_gets_404_for_everything_in_a_private_room(app, make, who):
    ids = seed(make)
    outsider = {
        "colleague": lambda: make.user(org=ids["org"]),  # same organisation, not a member
        "admin": lambda: make.user(org=ids["org"], admin=True),  # site admin, not a member
        "iag": lambda: make.user(org=ids["org"], kind="iag"),
    }[who]()
    token = make.token(outsider)
    c = app.test_client()
    assert c.post("/login", data={"email": outsider.email, "password": PASSWORD}).status_code == 302
    before = table_counts()
    checked = set()
    for rule in app.url_map.iter_rules():
        if not ROOM_SCOPED_PARAMS & set(rule.arguments):
            continue
        url = url_for_rule(rule, ids)
        for method in methods_of(rule):
            if url.startswith("/api/") and rule.endpoint == "api.add_attachments":
                r = c.open(url, method=method, headers=bearer(token),
                           data={"file": (io.BytesIO(png_bytes()), "sneaky.png")})
                assert r.json["error"]["code"] == "not_found", (method, url, r.json)
            elif url.startswith("/api/"):
                r = c.open(url, method=method, json=JSON, headers=bearer(token))
                assert r.json["error"]["code"] == "not_found", (method, url, r.json)
            else:
                r = c.open(url, method=method, data=dict(FORM, file=(io.BytesIO(png_bytes()), "sneaky.png")))
            assert r.status_code == 404, (method, url, r.status_code)
            assert b"Secret" not in r.data and b"photo.png" not in r.data, url
            checked.add(rule.endpoint)
    expected = {"rooms.room", "rooms.thread", "rooms.post_link", "rooms.history", "rooms.reply", "rooms.edit",
                "rooms.delete", "rooms.attachment", "rooms.attachment_thumb", "rooms.members", "rooms.settings",
                "rooms.join", "rooms.leave", "rooms.new_thread", "api.get_room", "api.list_threads",
                "api.create_thread", "api.get_thread", "api.create_post", "api.get_post", "api.edit_post",
                "api.delete_post", "api.add_attachments", "api.add_member", "api.list_members",
                "api.remove_member"}
    assert expected <= checked, expected - checked
    assert table_counts() == before

    # Not listed, not searchable by id, and the 404 looks exactly like a missing room's.
    r = c.get("/api/v1/rooms", headers=bearer(token))
    assert ids["room_id"] not in [x["id"] for x in r.json["rooms"]]
    assert b"Secret room" not in c.get("/rooms").data
    missing = c.get("/api/v1/rooms/999999", headers=bearer(token))
    hidden = c.get(f"/api/v1/rooms/{ids['room_id']}", headers=bearer(token))
    assert (missing.status_code, missing.json) == (hidden.status_code, hidden.json)


def test_members_do_see_the_private_room(app, make):
    """The same addresses work for a member: the 404s above are about permission, not broken links."""
    ids = seed(make)
    token = make.token(ids["member"])
    c = app.test_client()
    c.post("/login", data={"email": ids["member"].email, "password": PASSWORD})
    for url in (f"/rooms/{ids['room_id']}", f"/threads/{ids['thread_id']}", f"/posts/{ids['post_id']}/history",
                f"/posts/{ids['post_id']}/reply", f"/posts/{ids['post_id']}/edit",
                f"/attachments/{ids['attachment_id']}/{ids['filename']}", f"/thumbnails/{ids['attachment_id']}",
                f"/rooms/{ids['room_id']}/members"):
        assert c.get(url).status_code == 200, url
    assert c.get(f"/posts/{ids['post_id']}").status_code == 302
    for url in (f"/api/v1/rooms/{ids['room_id']}", f"/api/v1/threads/{ids['thread_id']}",
                f"/api/v1/posts/{ids['post_id']}", f"/api/v1/rooms/{ids['room_id']}/threads",
                f"/api/v1/rooms/{ids['room_id']}/members"):
        assert c.get(url, headers=bearer(token)).status_code == 200, url


def test_former_member_loses_access(app, make):
    from rooms import services

    ids = seed(make)
    token = make.token(ids["member"])
    c = app.test_client()
    c.post("/login", data={"email": ids["member"].email, "password": PASSWORD})
    assert c.get(f"/threads/{ids['thread_id']}").status_code == 200
    services.remove_member(ids["owner"], ids["room_id"], ids["member"].id)
    assert c.get(f"/threads/{ids['thread_id']}").status_code == 404
    assert c.get(f"/attachments/{ids['attachment_id']}/{ids['filename']}").status_code == 404
    assert c.get(f"/api/v1/posts/{ids['post_id']}", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize("absurd", [0, 2**31, 2**63, 10**30])
def test_absurd_ids_are_refused_cleanly(app, make, absurd):
    """Ids past what the database holds (PostgreSQL integers are 32-bit) are a 4xx, never a 500."""
    ids = seed(make)
    owner = ids["owner"]
    token = make.token(owner)
    c = app.test_client()
    c.post("/login", data={"email": owner.email, "password": PASSWORD})
    absurd_ids = {k: (absurd if isinstance(v, int) else v) for k, v in ids.items()
                  if k in ("room_id", "thread_id", "post_id", "attachment_id", "user_id")}
    absurd_ids["filename"] = ids["filename"]
    before = table_counts()
    for rule in app.url_map.iter_rules():
        int_params = {name for name, conv in rule._converters.items() if conv.__class__.__name__ == "IntegerConverter"}
        if not int_params:
            continue
        url = url_for_rule(rule, {**ids, **absurd_ids, **{name: absurd for name in int_params}})
        for method in methods_of(rule):
            if url.startswith("/api/"):
                r = c.open(url, method=method, json=JSON, headers=bearer(token))
            else:
                r = c.open(url, method=method, data=FORM)
            assert r.status_code < 500, (method, url, r.status_code)
            if int_params & ROOM_SCOPED_PARAMS:
                assert 400 <= r.status_code, (method, url, r.status_code)
    # Ids in form fields and JSON bodies.
    r = c.post(f"/rooms/{ids['room_id']}/members", data={"action": "role", "user_id": str(absurd), "role": "member"})
    assert 400 <= r.status_code < 500
    r = c.post(f"/rooms/{ids['room_id']}/members", data={"action": "remove", "user_id": str(absurd)})
    assert 400 <= r.status_code < 500
    r = c.post("/account", data={"action": "revoke", "token_id": str(absurd)})
    assert r.status_code == 404 or (r.status_code == 200 and "token_id" in r.get_data(as_text=True))
    r = c.post(f"/api/v1/rooms/{ids['room_id']}/members", json={"user_id": absurd, "role": "member"},
               headers=bearer(token))
    assert r.status_code == 422 and r.json["error"]["field"] == "user_id"
    r = c.post(f"/api/v1/threads/{ids['thread_id']}/posts", json={"body": "x", "parent_id": absurd},
               headers=bearer(token))
    assert r.status_code == 422 and r.json["error"]["field"] == "parent_id"
    assert table_counts() == before

    admin = app.test_client()
    admin.post("/login", data={"email": make.user(admin=True).email, "password": PASSWORD})
    before = table_counts()
    for action in ("deactivate", "activate", "reset"):
        r = admin.post("/admin/people", data={"action": action, "user_id": str(absurd)})
        assert r.status_code < 500, (action, r.status_code)
        assert ids["owner"].email not in r.get_data(as_text=True) or r.status_code == 200
    assert table_counts() == before
