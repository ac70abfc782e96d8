"""The JSON API under /api/v1: every endpoint the issue names with its exact
fields, client_id idempotency, the error shape and statuses, bad input that
writes nothing, and the OpenAPI document."""
from __future__ import annotations

import io
import json
import re

import jsonschema_rs
import pytest
from sqlalchemy import func, select

from collab.extensions import db
from tests.conftest import bearer

POST_FIELDS = {"id", "parent_id", "author", "body", "html", "created_at", "edited_at", "client_id"}


def table_counts() -> dict:
    """Rows per table, leaving out work queues (outboxes) that background workers drain at their own pace."""
    from collab.db import Base

    db.session.remove()
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables
            if not t.name.endswith("_outbox")}


class Api:
    """A test client that sends one account's token."""

    def __init__(self, app, token: str):
        self.c = app.test_client()
        self.h = bearer(token)

    def __getattr__(self, method):
        def call(url, **kw):
            headers = dict(self.h, **kw.pop("headers", {}))
            return getattr(self.c, method)(f"/api/v1{url}", headers=headers, **kw)
        return call


@pytest.fixture
def world(app, make):
    org = make.org()
    owner = make.user(org=org, name="Olive Owner")
    member = make.user(org=org, name="Mo Member")
    stranger = make.user(org=make.org(), name="Stan Stranger")
    return {"org": org, "owner": owner, "member": member, "stranger": stranger,
            "api": Api(app, make.token(owner)), "member_api": Api(app, make.token(member)),
            "stranger_api": Api(app, make.token(stranger))}


def assert_error(r, status: int, code: str | None = None, field: str | None = None):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:500])
    assert r.is_json, r.get_data(as_text=True)[:300]
    err = r.json["error"]
    assert set(err) >= {"code", "message"} and isinstance(err["code"], str)
    assert isinstance(err["message"], str) and len(err["message"]) > 5
    if code:
        assert err["code"] == code, err
    if field:
        assert err.get("field") == field, err
    return err


def schema_validator(app, name: str):
    from collab.openapi import document

    doc = document()
    return jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                               "components": doc["components"]})


# -- endpoints -----------------------------------------------------------------------------

def test_me(app, world):
    r = world["api"].get("/me")
    assert r.status_code == 200
    me = r.json
    owner = world["owner"]
    assert {k: me[k] for k in ("id", "name", "email", "kind")} == {
        "id": owner.id, "name": "Olive Owner", "email": owner.email, "kind": "staff"}
    schema_validator(app, "Me").validate(me)


def test_rooms_create_list_get(app, world):
    api = world["api"]
    r = api.post("/rooms", json={"name": "Scrutiny panel", "description": "Quarterly", "visibility": "organisation"})
    assert r.status_code == 201
    room = r.json
    assert isinstance(room["id"], int)
    assert {k: room[k] for k in ("name", "description", "visibility")} == {
        "name": "Scrutiny panel", "description": "Quarterly", "visibility": "organisation"}
    assert room["organisation_id"] == world["org"].id and room["my_role"] == "owner"
    validator = schema_validator(app, "Room")
    validator.validate(room)

    r = api.post("/rooms", json={"name": "Minimal"})  # description and visibility are optional
    assert r.status_code == 201 and r.json["visibility"] == "private" and r.json["description"] == ""

    listed = api.get("/rooms").json["rooms"]
    assert {x["name"] for x in listed} == {"Scrutiny panel", "Minimal"}
    for x in listed:
        validator.validate(x)
    got = api.get(f"/rooms/{room['id']}")
    assert got.status_code == 200 and got.json == room
    # A colleague sees the organisation room (without a role); a stranger does not.
    assert world["member_api"].get(f"/rooms/{room['id']}").json["my_role"] is None
    assert_error(world["stranger_api"].get(f"/rooms/{room['id']}"), 404, "not_found")


def test_threads_and_posts(app, world):
    api, mapi = world["api"], world["member_api"]
    room_id = api.post("/rooms", json={"name": "R", "visibility": "private"}).json["id"]
    assert api.post(f"/rooms/{room_id}/members", json={"user_id": world["member"].id, "role": "member"}).status_code == 201

    r = api.post(f"/rooms/{room_id}/threads", json={"title": "Agenda", "body": "Item **one**"})
    assert r.status_code == 201
    thread = r.json
    assert isinstance(thread["id"], int) and thread["title"] == "Agenda" and thread["room_id"] == room_id
    assert len(thread["posts"]) == 1
    opening = thread["posts"][0]
    assert set(opening) >= POST_FIELDS
    assert opening["parent_id"] is None and opening["body"] == "Item **one**"
    assert opening["html"] == "<p>Item <strong>one</strong></p>"
    assert opening["author"] == {"id": world["owner"].id, "name": "Olive Owner"}
    assert opening["edited_at"] is None and opening["client_id"] is None
    assert opening["created_at"].endswith("Z")
    schema_validator(app, "Thread").validate(thread)

    r = mapi.post(f"/threads/{thread['id']}/posts", json={"body": "A reply"})
    assert r.status_code == 201
    reply = r.json
    assert set(reply) >= POST_FIELDS and reply["parent_id"] == opening["id"]
    r = api.post(f"/threads/{thread['id']}/posts", json={"body": "Reply to reply", "parent_id": reply["id"]})
    assert r.status_code == 201 and r.json["parent_id"] == reply["id"]
    nested = r.json

    full = api.get(f"/threads/{thread['id']}").json
    assert {k: full[k] for k in ("id", "title", "room_id")} == {"id": thread["id"], "title": "Agenda",
                                                               "room_id": room_id}
    assert [p["id"] for p in full["posts"]] == [opening["id"], reply["id"], nested["id"]]
    post_validator = schema_validator(app, "Post")
    for p in full["posts"]:
        assert set(p) >= POST_FIELDS and set(p["author"]) == {"id", "name"}
        post_validator.validate(p)

    listing = api.get(f"/rooms/{room_id}/threads").json
    assert listing["total"] == 1 and listing["threads"][0]["id"] == thread["id"]
    assert listing["threads"][0]["post_count"] == 3
    assert api.get(f"/posts/{reply['id']}").json["body"] == "A reply"


def test_client_id_idempotency(app, world):
    api, mapi = world["api"], world["member_api"]
    room_id = api.post("/rooms", json={"name": "R", "visibility": "national"}).json["id"]
    thread_id = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json["id"]
    first = api.post(f"/threads/{thread_id}/posts", json={"body": "Once", "client_id": "c-123"})
    assert first.status_code == 201 and first.json["client_id"] == "c-123"
    before = table_counts()
    again = api.post(f"/threads/{thread_id}/posts", json={"body": "Once", "client_id": "c-123"})
    assert again.status_code == 200 and again.json == first.json
    # Even a different body (a retried edit) returns the original, never a duplicate.
    again = api.post(f"/threads/{thread_id}/posts", json={"body": "Changed", "client_id": "c-123"})
    assert again.status_code == 200 and again.json["id"] == first.json["id"] and again.json["body"] == "Once"
    assert table_counts() == before
    # The same client_id from another author is another post.
    other = mapi.post(f"/threads/{thread_id}/posts", json={"body": "Once", "client_id": "c-123"})
    assert other.status_code == 201 and other.json["id"] != first.json["id"]
    # Without client_id, every call is a new post.
    a = api.post(f"/threads/{thread_id}/posts", json={"body": "Same"})
    b = api.post(f"/threads/{thread_id}/posts", json={"body": "Same"})
    assert (a.status_code, b.status_code) == (201, 201) and a.json["id"] != b.json["id"]
    assert api.get(f"/threads/{thread_id}").json["post_count"] == 5


def test_edit_and_delete_posts(app, world, make):
    api, mapi, sapi = world["api"], world["member_api"], world["stranger_api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    api.post(f"/rooms/{room_id}/members", json={"user_id": world["member"].id, "role": "member"})
    thread = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json
    post = mapi.post(f"/threads/{thread['id']}/posts", json={"body": "Original"}).json

    r = mapi.patch(f"/posts/{post['id']}", json={"body": "Edited _text_"})
    assert r.status_code == 200
    assert r.json["body"] == "Edited _text_" and r.json["html"] == "<p>Edited <em>text</em></p>"
    assert r.json["edited_at"] is not None and r.json["id"] == post["id"]
    assert_error(api.patch(f"/posts/{post['id']}", json={"body": "Owner may not edit"}), 403, "forbidden")
    assert_error(sapi.patch(f"/posts/{post['id']}", json={"body": "x"}), 404, "not_found")
    assert_error(sapi.delete(f"/posts/{post['id']}"), 404, "not_found")
    assert_error(mapi.delete(f"/posts/{thread['posts'][0]['id']}"), 403, "forbidden")

    r = mapi.delete(f"/posts/{post['id']}")
    assert r.status_code == 200 and r.json["deleted"] is True and r.json["body"] == "" and r.json["html"] == ""
    assert api.get(f"/posts/{post['id']}").json["deleted"] is True
    assert_error(mapi.delete(f"/posts/{post['id']}"), 403)
    # The room owner (a moderator) removes anyone's post.
    other = mapi.post(f"/threads/{thread['id']}/posts", json={"body": "Another"}).json
    assert api.delete(f"/posts/{other['id']}").status_code == 200


def test_members_endpoint(app, world, make):
    api, mapi = world["api"], world["member_api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    member = world["member"]
    r = api.post(f"/rooms/{room_id}/members", json={"user_id": member.id, "role": "observer"})
    assert r.status_code == 201
    assert r.json == {"user": {"id": member.id, "name": "Mo Member"}, "role": "observer"}
    r = api.post(f"/rooms/{room_id}/members", json={"user_id": member.id, "role": "moderator"})
    assert r.json["role"] == "moderator"
    members = api.get(f"/rooms/{room_id}/members").json["members"]
    assert {m["user"]["id"]: m["role"] for m in members} == {world["owner"].id: "owner", member.id: "moderator"}

    before = table_counts()
    assert_error(api.post(f"/rooms/{room_id}/members", json={"user_id": member.id, "role": "king"}), 422,
                 "invalid", "role")
    assert_error(api.post(f"/rooms/{room_id}/members", json={"user_id": 999999, "role": "member"}), 422,
                 "invalid", "user_id")
    assert_error(api.post(f"/rooms/{room_id}/members", json={"role": "member"}), 422, "invalid", "user_id")
    assert_error(api.post(f"/rooms/{room_id}/members", json={"user_id": "abc"}), 422, "invalid", "user_id")
    stranger = world["stranger"]
    assert_error(mapi.post(f"/rooms/{room_id}/members", json={"user_id": stranger.id, "role": "owner"}), 403)
    assert_error(world["stranger_api"].post(f"/rooms/{room_id}/members", json={"user_id": stranger.id}), 404)
    assert table_counts() == before

    assert api.delete(f"/rooms/{room_id}/members/{member.id}").status_code == 200
    assert_error(mapi.get(f"/rooms/{room_id}"), 404)
    assert_error(api.delete(f"/rooms/{room_id}/members/{world['owner'].id}"), 422)  # the last owner stays


def test_attachments_endpoint(app, world):
    from PIL import Image

    api = world["api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    thread = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json
    post_id = thread["posts"][0]["id"]
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 128, 0)).save(buf, "PNG")
    r = api.post(f"/posts/{post_id}/attachments", data={"file": (io.BytesIO(buf.getvalue()), "map.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 201
    assert len(r.json["added"]) == 1
    att = r.json["attachments"][0]
    assert att["filename"] == "map.png" and att["is_image"] and att["thumbnail_url"]
    assert_error(api.post(f"/posts/{post_id}/attachments", json={"file": "x"}), 422, "invalid", "file")
    assert_error(api.post(f"/posts/{post_id}/attachments", data={"file": (io.BytesIO(b""), "empty.txt")},
                          content_type="multipart/form-data"), 422, "invalid")


@pytest.mark.parametrize("app_config", [{"MAX_UPLOAD_MB": 1}])
def test_too_large(app, world):
    api = world["api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    thread = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json
    post_id = thread["posts"][0]["id"]
    before = table_counts()
    r = api.post(f"/posts/{post_id}/attachments", data={"file": (io.BytesIO(b"x" * (1024 * 1024 + 10)), "a.bin")},
                 content_type="multipart/form-data")
    assert_error(r, 413, "too_large")
    # A JSON body past the request limit.
    r = api.post(f"/threads/{thread['id']}/posts", data=json.dumps({"body": "x" * (3 * 1024 * 1024)}),
                 content_type="application/json")
    assert_error(r, 413, "too_large")
    assert table_counts() == before


def test_a_repeated_post_is_answered_even_where_a_new_one_is_refused(app, world, make):
    """The one-transaction post checks permission and parent before it looks for the client_id: a
    resent post is still answered with the first one after the room was archived or the parent removed."""
    api = world["api"]
    room_id = api.post("/rooms", json={"name": "R", "visibility": "national"}).json["id"]
    thread = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json
    first = api.post(f"/threads/{thread['id']}/posts", json={"body": "Sent once", "client_id": "k-1"})
    assert first.status_code == 201
    reply = api.post(f"/threads/{thread['id']}/posts", json={"body": "To remove", "client_id": "k-2"}).json
    assert api.delete(f"/posts/{reply['id']}").status_code == 200
    again = api.post(f"/threads/{thread['id']}/posts",
                     json={"body": "Sent once", "client_id": "k-1", "parent_id": reply["id"]})
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert_error(api.post(f"/threads/{thread['id']}/posts", json={"body": "x", "parent_id": reply["id"]}),
                 422, "invalid", "parent_id")
    assert api.post(f"/rooms/{room_id}/threads", json={"title": "U", "body": "B"}).status_code == 201
    from rooms import services

    services.set_archived(world["owner"], room_id, True)
    before = table_counts()
    again = api.post(f"/threads/{thread['id']}/posts", json={"body": "Sent once", "client_id": "k-1"})
    assert again.status_code == 200 and again.json == first.json
    assert_error(api.post(f"/threads/{thread['id']}/posts", json={"body": "New", "client_id": "k-3"}),
                 403, "forbidden")
    assert table_counts() == before


def _statements(app):
    """Collects the SQL the app sends while the returned list is alive (a listener on the engine)."""
    from sqlalchemy import event

    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, stmt, *_a: seen.append(stmt))
    return seen


def test_a_checked_token_is_remembered_and_every_change_is_seen_at_once(app, world, make):
    from sqlalchemy import update

    from auth import mfa
    from auth import services as accounts
    from auth.models import ApiToken, User
    from collab.tokens import digest

    owner, admin = world["owner"], make.user(admin=True)
    api = world["api"]
    assert api.get("/me").status_code == 200
    seen = _statements(app)
    assert api.get("/me").json["id"] == owner.id
    assert not [s for s in seen if "api_tokens" in s]  # remembered: the token is not looked up again
    # A change to the account (here a bulk UPDATE through the session) is seen by the very next request ...
    db.session.execute(update(User).where(User.id == owner.id).values(name="Olive Renamed"))
    db.session.commit()
    assert api.get("/me").json["name"] == "Olive Renamed"
    # ... a revoked token is refused at once, the account's other tokens still work ...
    raw2 = make.token(owner)
    api2 = Api(app, raw2)
    assert api2.get("/me").status_code == 200
    tok = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw2)))
    accounts.revoke_token(owner, tok.id)
    assert_error(api2.get("/me"), 401, "unauthorized")
    assert api.get("/me").status_code == 200
    # ... as is a new two-step sign-in rule ...
    mfa.set_policy(admin, "all")
    assert_error(api.get("/me"), 403, "mfa_required")
    mfa.set_policy(admin, "off")
    assert api.get("/me").status_code == 200
    # ... and a deactivated account.
    accounts.set_active(admin, owner.id, False)
    assert_error(api.get("/me"), 401, "unauthorized")
    accounts.set_active(admin, owner.id, True)
    assert api.get("/me").status_code == 200


def test_a_token_revoked_by_another_process_is_refused_within_the_trust_window(app, world):
    """Another process (a second server on the same database) changes the row behind this one's back:
    this process hears nothing, and stops trusting what it remembered after TOKEN_TRUST_SECONDS."""
    import time

    from sqlalchemy import update

    from auth.models import ApiToken
    from collab.api import TOKEN_TRUST_SECONDS
    from collab.db import utcnow

    api = world["api"]
    assert api.get("/me").status_code == 200
    with db.engine.begin() as other:  # a connection of its own, outside every session (another process)
        other.execute(update(ApiToken.__table__).where(ApiToken.__table__.c.user_id == world["owner"].id)
                      .values(revoked_at=utcnow()))
    db.session.remove()  # the test's own session must not keep reading its older snapshot
    time.sleep(TOKEN_TRUST_SECONDS + 0.2)
    assert_error(api.get("/me"), 401, "unauthorized")


# -- errors ---------------------------------------------------------------------------------

def test_401_without_a_valid_token(app, world):
    c = app.test_client()
    for method, url in [("get", "/api/v1/me"), ("get", "/api/v1/rooms"), ("post", "/api/v1/rooms"),
                        ("get", "/api/v1/rooms/1"), ("patch", "/api/v1/posts/1"), ("delete", "/api/v1/posts/1")]:
        r = getattr(c, method)(url, json={"name": "x"})
        assert_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = getattr(c, method)(url, json={"name": "x"}, headers=bearer("collab_not-a-token"))
        assert_error(r, 401, "unauthorized")


def test_private_room_is_404_never_403(app, world, make):
    api, sapi = world["api"], world["stranger_api"]
    room_id = api.post("/rooms", json={"name": "Hidden", "visibility": "private"}).json["id"]
    thread = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json
    post_id = thread["posts"][0]["id"]
    missing = sapi.get("/rooms/999999").json
    calls = [("get", f"/rooms/{room_id}", None), ("get", f"/rooms/{room_id}/threads", None),
             ("post", f"/rooms/{room_id}/threads", {"title": "x", "body": "y"}),
             ("get", f"/rooms/{room_id}/members", None),
             ("post", f"/rooms/{room_id}/members", {"user_id": world["stranger"].id, "role": "owner"}),
             ("delete", f"/rooms/{room_id}/members/{world['owner'].id}", None),
             ("get", f"/threads/{thread['id']}", None), ("post", f"/threads/{thread['id']}/posts", {"body": "x"}),
             ("get", f"/posts/{post_id}", None), ("patch", f"/posts/{post_id}", {"body": "x"}),
             ("delete", f"/posts/{post_id}", None)]
    before = table_counts()
    for method, url, body in calls:
        r = getattr(sapi, method)(url, json=body) if body is not None else getattr(sapi, method)(url)
        assert_error(r, 404, "not_found")
        assert "Hidden" not in r.get_data(as_text=True)
    assert table_counts() == before
    assert sapi.get(f"/rooms/{room_id}").json["error"]["message"] == missing["error"]["message"]


def test_unknown_ids(app, world):
    api = world["api"]
    for url in ("/rooms/424242", "/rooms/424242/threads", "/rooms/424242/members", "/threads/424242",
                "/posts/424242"):
        assert_error(api.get(url), 404, "not_found")
    for url in ("/rooms/0", "/posts/99999999999999999999999"):
        r = api.get(url)
        assert r.status_code in (404, 422)
        assert_error(r, r.status_code)
    assert_error(api.get("/no-such-endpoint"), 404)
    assert_error(api.put("/rooms"), 405)


BAD_ROOMS = [
    ({"name": 123}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 121}, "name"),
    ({"name": "x" * 100_000}, "name"),
    ({"name": ["a"]}, "name"),
    ({"name": None}, "name"),
    ({"name": "ok", "visibility": "secret"}, "visibility"),
    ({"name": "ok", "visibility": ["private"]}, "visibility"),
    ({"name": "ok", "visibility": None}, "visibility"),
    ({"name": "ok", "description": {"a": 1}}, "description"),
    ({"name": "ok", "description": "d" * 2001}, "description"),
    ({"name": "ok", "visibility": "organisation", "organisation_id": "abc"}, "organisation_id"),
    ({"name": "ok", "visibility": "organisation", "organisation_id": -1}, "organisation_id"),
    ({"name": "ok", "visibility": "organisation", "organisation_id": 2**70}, "organisation_id"),
    ({"name": "ok", "visibility": "organisation", "organisation_id": 1.5}, "organisation_id"),
]


@pytest.mark.parametrize("payload,field", BAD_ROOMS)
def test_bad_room_input_names_the_field(app, world, payload, field):
    before = table_counts()
    assert_error(world["api"].post("/rooms", json=payload), 422, "invalid", field)
    assert table_counts() == before


def test_bad_thread_and_post_input(app, world):
    api = world["api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    thread = api.post(f"/rooms/{room_id}/threads", json={"title": "T", "body": "B"}).json
    post_id = thread["posts"][0]["id"]
    before = table_counts()
    cases = [
        (f"/rooms/{room_id}/threads", {"title": "T"}, "body"),
        (f"/rooms/{room_id}/threads", {"body": "B"}, "title"),
        (f"/rooms/{room_id}/threads", {"title": "t" * 201, "body": "B"}, "title"),
        (f"/rooms/{room_id}/threads", {"title": "T", "body": "b" * 50_001}, "body"),
        (f"/rooms/{room_id}/threads", {"title": ["T"], "body": "B"}, "title"),
        (f"/rooms/{room_id}/threads", {"title": "T", "body": "B", "client_id": 7}, "client_id"),
        (f"/threads/{thread['id']}/posts", {"body": 42}, "body"),
        (f"/threads/{thread['id']}/posts", {"body": {"text": "x"}}, "body"),
        (f"/threads/{thread['id']}/posts", {"body": ""}, "body"),
        (f"/threads/{thread['id']}/posts", {"body": "\u0000\u0001"}, "body"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "parent_id": "abc"}, "parent_id"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "parent_id": True}, "parent_id"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "parent_id": 999999}, "parent_id"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "parent_id": 2**80}, "parent_id"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "client_id": "c" * 65}, "client_id"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "client_id": ["a"]}, "client_id"),
        (f"/threads/{thread['id']}/posts", {"body": "x", "client_id": "tab\there"}, "client_id"),
    ]
    for url, payload, field in cases:
        assert_error(api.post(url, json=payload), 422, "invalid", field)
    assert_error(api.patch(f"/posts/{post_id}", json={"body": None}), 422, "invalid", "body")
    assert_error(api.patch(f"/posts/{post_id}", json={"body": "b" * 50_001}), 422, "invalid", "body")
    assert table_counts() == before
    assert api.get(f"/posts/{post_id}").json["body"] == "B"


def test_malformed_bodies(app, world):
    api = world["api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    before = table_counts()
    for data, ctype in [("{not json", "application/json"), ('{"name": "x"', "application/json"),
                        ("[1, 2]", "application/json"), ('"just a string"', "application/json"),
                        ("null", "application/json"), ("", "application/json"),
                        ('{"name": "x"}', "text/plain"), ("name=x", "application/x-www-form-urlencoded"),
                        (b"\xff\xfe\x00garbage", "application/json")]:
        for url in ("/rooms", f"/rooms/{room_id}/threads", f"/rooms/{room_id}/members"):
            assert_error(api.post(url, data=data, content_type=ctype), 400, "bad_request", "body")
    assert table_counts() == before


def test_query_parameters(app, world):
    api = world["api"]
    room_id = api.post("/rooms", json={"name": "R"}).json["id"]
    assert api.get(f"/rooms/{room_id}/threads?page=2").json == {"total": 0, "page": 2, "threads": []}
    for bad in ("abc", "0", "-1", "99999999999999999999", "1.5"):
        assert_error(api.get(f"/rooms/{room_id}/threads?page={bad}"), 422, "invalid", "page")


# -- the OpenAPI document ------------------------------------------------------------------

def test_openapi_document_is_valid_openapi_3(app, world):
    from schemathesis.specs.openapi.definitions import OPENAPI_30, OPENAPI_31

    r = world["api"].get("/openapi.json")
    assert r.status_code == 200 and r.is_json
    doc = r.json
    assert doc["openapi"].startswith("3.")
    meta = OPENAPI_31 if doc["openapi"].startswith("3.1") else OPENAPI_30
    errors = [str(e) for e in jsonschema_rs.validator_for(meta).iter_errors(doc)]
    assert not errors, errors[:5]
    # Every schema in it is a valid JSON Schema, and every $ref resolves.
    for name in doc["components"]["schemas"]:
        jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
        assert ref in doc["components"]["schemas"], ref

    # Every route of /api/v1 is documented, with its methods, and nothing else is.
    documented = {(path, m.upper()) for path, ops in doc["paths"].items() for m in ops
                  if m in ("get", "post", "put", "patch", "delete")}
    actual = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
            actual |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert actual - documented == set(), actual - documented
    assert documented - actual == set(), documented - actual
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in ("get", "post", "patch", "delete", "put"):
                assert "401" in op["responses"], (path, method)
                for param in re.findall(r"{(\w+)}", path):
                    assert param in {p["name"] for p in op.get("parameters", [])}, (path, method, param)


def test_admin_creates_organisation_rooms_only_for_real_organisations(app, make):
    admin = make.user(admin=True, org=make.org())
    other = make.org()
    api = Api(app, make.token(admin))
    before = table_counts()
    assert_error(api.post("/rooms", json={"name": "R", "visibility": "organisation", "organisation_id": 999999}),
                 422, "invalid", "organisation_id")
    assert table_counts() == before
    r = api.post("/rooms", json={"name": "R", "visibility": "organisation", "organisation_id": other.id})
    assert r.status_code == 201 and r.json["organisation_id"] == other.id
