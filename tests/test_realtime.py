"""Socket.IO event logic through Flask-SocketIO's test client, signed in with the
Flask test client's login cookie or a personal access token, on SQLite and
PostgreSQL."""
from __future__ import annotations

import pytest

from collab import tasks
from rooms import reactions, revocation
from rooms.live import handlers as live_events
from rooms import services as rs
from rooms import posts as room_posts
from tests.conftest import bearer
from tests.live_support import Collector, login_client, sock


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02, "LIVE_POST_LIMIT": "1000 per minute"}


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


# -- connecting -------------------------------------------------------------------------------

def test_refuses_connections_without_a_session_or_token(app):
    sc = sock(app)
    assert not sc.is_connected()


def test_cookie_session_connects_from_the_public_origin_only(app, make):
    u = make.user()
    c = login_client(app, u)
    assert sock(app, c).is_connected()
    assert not sock(app, c, origin="http://evil.example").is_connected()
    assert not sock(app, c, origin=None).is_connected()


def test_tokens_connect_by_auth_or_bearer_header_from_anywhere(app, make):
    u = make.user()
    tok = make.token(u)
    assert sock(app, token=tok, origin=None).is_connected()
    assert sock(app, origin=None, headers=bearer(tok)).is_connected()
    assert not sock(app, token="collab_not-a-real-token", origin=None).is_connected()
    assert not sock(app, auth={"token": 12}, origin=None).is_connected()
    assert not sock(app, auth="just a string", origin=None).is_connected()


def test_deactivated_accounts_cannot_connect(app, make):
    from auth import services as accounts

    admin = make.user(admin=True)
    u = make.user()
    tok = make.token(u)
    accounts.set_active(admin, u.id, False)
    assert not sock(app, token=tok).is_connected()


# -- subscribe, broadcast, sync ------------------------------------------------------------------

def test_subscribe_acks_latest_seq_and_rechecks_read_permission(app, make):
    owner, outsider = make.user(), make.user()
    room = make.room(owner)
    a = sock(app, token=make.token(owner))
    ack = a.emit("subscribe", {"room_id": room.id}, callback=True)
    assert ack["ok"] is True and ack["seq"] == rs.get_room(owner, room.id).last_seq >= 1
    assert ack["can_post"] is True and ack["me"]["id"] == owner.id

    b = Collector(sock(app, token=make.token(outsider)))
    ack = b.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    assert ack == {"ok": False, "error": {"code": "not_found", "message": "Room not found."}}
    assert b.named("error")[0]["code"] == "not_found"
    make.thread(owner, room)
    assert b.named("thread.created") == []


def test_events_reach_subscribers_with_the_api_objects_plus_room_id_and_seq(app, make):
    owner, member = make.user(), make.user(name="Maya Member")
    room = make.room(owner, members=[member])
    tok = make.token(owner)
    a = Collector(sock(app, token=make.token(member)))
    a.sc.emit("subscribe", {"room_id": room.id}, callback=True)

    c = app.test_client()
    r = c.post(f"/api/v1/rooms/{room.id}/threads", json={"title": "Live", "body": "first"}, headers=bearer(tok))
    thread_id = r.json["id"]
    created = a.wait("thread.created")
    assert created["thread"]["id"] == thread_id and created["room_id"] == room.id
    assert created["post"] == r.json["posts"][0]

    r = c.post(f"/api/v1/threads/{thread_id}/posts", json={"body": "a reply", "client_id": "c-1"}, headers=bearer(tok))
    ev = a.wait("post.created")
    assert {k: v for k, v in ev.items() if k not in ("room_id", "seq")} == {"post": r.json}
    assert ev["room_id"] == room.id and ev["seq"] == created["seq"] + 1

    c.patch(f"/api/v1/posts/{r.json['id']}", json={"body": "edited"}, headers=bearer(tok))
    assert a.wait("post.updated")["post"]["body"] == "edited"
    c.delete(f"/api/v1/posts/{r.json['id']}", headers=bearer(tok))
    gone = a.wait("post.deleted")["post"]
    assert gone["deleted"] is True and gone["body"] == "" and gone["author"] is None

    opening = created["post"]["id"]
    reactions.set_reaction(owner, opening, "👍", True)
    ev = a.wait("reaction.added")
    assert ev["post_id"] == opening and ev["reactions"][0]["count"] == 1 and ev["reactions"][0]["user_ids"] == [owner.id]
    newcomer = make.user()
    rs.add_member(owner, room.id, user_id=newcomer.id)
    assert a.wait("member.added")["user"]["id"] == newcomer.id
    seqs = [e["args"][0]["seq"] for e in a.events if e["args"] and isinstance(e["args"][0], dict)
            and "seq" in e["args"][0]]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


def test_sync_returns_exactly_the_missed_events_in_order(app, make):
    owner = make.user()
    room = make.room(owner)
    t = make.thread(owner, room)
    a = sock(app, token=make.token(owner))
    seq = a.emit("subscribe", {"room_id": room.id}, callback=True)["seq"]
    a.disconnect()
    posts = [make.reply(owner, t, f"missed {i}") for i in range(5)]
    room_posts.delete_post(owner, posts[1].id)

    b = sock(app, token=make.token(owner))
    ack = b.emit("sync", {"room_id": room.id, "after_seq": seq}, callback=True)
    assert ack["ok"] and ack["more"] is False
    names = [e["event"] for e in ack["events"]]
    assert names == ["post.created"] * 5 + ["post.deleted"]
    assert [e["data"]["seq"] for e in ack["events"]] == list(range(seq + 1, seq + 7))
    assert ack["seq"] == seq + 6
    # the removed post is replayed as the tombstone it is now, never its old text
    replay = ack["events"][1]["data"]["post"]
    assert replay["id"] == posts[1].id and replay["deleted"] and replay["body"] == "" and "missed 1" not in str(ack)
    assert b.emit("sync", {"room_id": room.id, "after_seq": ack["seq"]}, callback=True)["events"] == []


def test_sync_pages_long_gaps(app, make, monkeypatch):
    monkeypatch.setattr(live_events, "SYNC_BATCH", 3)
    owner = make.user()
    room = make.room(owner)
    t = make.thread(owner, room)
    for i in range(4):
        make.reply(owner, t, f"r{i}")
    a = sock(app, token=make.token(owner))
    first = a.emit("sync", {"room_id": room.id, "after_seq": 0}, callback=True)
    assert first["more"] is True and len(first["events"]) == 3
    rest = a.emit("sync", {"room_id": room.id, "after_seq": first["seq"]}, callback=True)
    assert rest["more"] is False
    assert [e["data"]["seq"] for e in first["events"] + rest["events"]] == list(range(1, rs.get_room(owner, room.id).last_seq + 1))


# -- posting over the socket ----------------------------------------------------------------------

def test_post_over_the_socket_is_idempotent_on_client_id(app, make):
    owner, member = make.user(), make.user()
    room = make.room(owner, members=[member])
    t = make.thread(owner, room)
    watcher = Collector(sock(app, token=make.token(owner)))
    watcher.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    a = sock(app, login_client(app, member))
    ack = a.emit("post", {"thread_id": t.id, "body": "from the socket", "client_id": "cid-1"}, callback=True)
    assert ack["ok"] and ack["created"] is True and ack["post"]["client_id"] == "cid-1"
    again = a.emit("post", {"thread_id": t.id, "body": "from the socket", "client_id": "cid-1"}, callback=True)
    assert again["ok"] and again["created"] is False and again["post"]["id"] == ack["post"]["id"]
    assert [e["post"]["id"] for e in watcher.named("post.created")] == [ack["post"]["id"]]
    assert rs.get_thread(owner, t.id).post_count == 2


def test_post_validation_errors_are_clear_and_write_nothing(app, make):
    owner = make.user()
    room = make.room(owner)
    t = make.thread(owner, room)
    a = Collector(sock(app, token=make.token(owner)))
    cases = [
        ({"thread_id": t.id, "body": "no id"}, "client_id"),
        ({"thread_id": t.id, "body": "", "client_id": "x1"}, "body"),
        ({"thread_id": "seven", "body": "hi", "client_id": "x2"}, "thread_id"),
        ({"thread_id": t.id, "body": "hi", "client_id": "x3", "parent_id": -4}, "parent_id"),
        ({"thread_id": t.id, "body": 42, "client_id": "x4"}, "body"),
        ({"thread_id": t.id, "body": "x" * 50_001, "client_id": "x5"}, "body"),
        ({"thread_id": t.id, "body": "hi", "client_id": "y" * 65}, "client_id"),
    ]
    for payload, field in cases:
        ack = a.sc.emit("post", payload, callback=True)
        assert ack["ok"] is False and ack["error"]["field"] == field, (payload, ack)
        assert ack["error"]["message"]
    assert len(a.named("error")) == len(cases)
    assert rs.get_thread(owner, t.id).post_count == 1
    for bad in ["a string", ["a", "list"], 5]:
        ack = a.sc.emit("post", bad, callback=True)
        assert ack["error"]["code"] == "invalid" and "JSON object" in ack["error"]["message"]
    ack = a.sc.emit("post", {"a": 1}, {"b": 2}, callback=True)
    assert ack["ok"] is False
    assert a.sc.is_connected()


def test_oversized_and_unknown_events_get_an_error_event(app, make):
    owner = make.user()
    a = Collector(sock(app, token=make.token(owner)))
    ack = a.sc.emit("subscribe", {"room_id": 1, "padding": "x" * 5000}, callback=True)
    assert ack["error"]["code"] == "invalid" and "too large" in ack["error"]["message"]
    ack = a.sc.emit("no.such.event", {"x": 1}, callback=True)
    assert ack["error"]["code"] == "unknown_event"
    assert [e["code"] for e in a.named("error")] == ["invalid", "unknown_event"]
    assert a.sc.is_connected()


def test_posting_is_rate_limited_per_connection(app, make):
    app.config["LIVE_POST_LIMIT"] = "3 per minute"
    owner = make.user()
    room = make.room(owner)
    t = make.thread(owner, room)
    tok = make.token(owner)
    a = sock(app, token=tok)
    acks = [a.emit("post", {"thread_id": t.id, "body": f"p{i}", "client_id": f"rl-{i}"}, callback=True)
            for i in range(4)]
    assert [x["ok"] for x in acks] == [True, True, True, False]
    assert acks[3]["error"]["code"] == "rate_limited" and "Wait" in acks[3]["error"]["message"]
    other = sock(app, token=tok)  # the limit is per connection
    assert other.emit("post", {"thread_id": t.id, "body": "p4", "client_id": "rl-4"}, callback=True)["ok"]


# -- typing and presence --------------------------------------------------------------------------

def test_typing_reaches_other_viewers_of_the_thread_only(app, make):
    owner, member, observer = make.user(name="Olive Owner"), make.user(), make.user()
    room = make.room(owner, members=[member], observer=[observer])
    t = make.thread(owner, room)
    other_thread = make.thread(owner, room, title="Other")
    a = Collector(sock(app, token=make.token(owner)))
    b = Collector(sock(app, token=make.token(member)))
    elsewhere = Collector(sock(app, token=make.token(member)))
    assert a.sc.emit("subscribe_thread", {"thread_id": t.id}, callback=True)["ok"]
    assert b.sc.emit("subscribe_thread", {"thread_id": t.id}, callback=True)["ok"]
    elsewhere.sc.emit("subscribe_thread", {"thread_id": other_thread.id}, callback=True)
    assert a.sc.emit("typing", {"thread_id": t.id}, callback=True)["ok"]
    ev = b.wait("typing")
    assert ev == {"thread_id": t.id, "room_id": room.id, "user": {"id": owner.id, "name": "Olive Owner"}}
    assert a.named("typing") == [] and elsewhere.named("typing") == []
    o = sock(app, token=make.token(observer))
    ack = o.emit("typing", {"thread_id": t.id}, callback=True)
    assert ack["error"]["code"] == "forbidden"


def test_typing_is_rate_limited(app, make):
    owner = make.user()
    room = make.room(owner)
    t = make.thread(owner, room)
    a = sock(app, token=make.token(owner))
    oks = [a.emit("typing", {"thread_id": t.id}, callback=True)["ok"] for _ in range(12)]
    assert oks[:10] == [True] * 10 and oks[10:] == [False, False]


def test_presence_lists_who_is_online_viewing_and_idle(app, make):
    owner, member = make.user(name="Ann Owner"), make.user(name="Bob Member")
    room = make.room(owner, members=[member])
    t = make.thread(owner, room)
    a = Collector(sock(app, token=make.token(owner)))
    a.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    b_client = sock(app, token=make.token(member))
    ack = b_client.emit("subscribe", {"room_id": room.id}, callback=True)
    assert {p["user"]["name"] for p in ack["presence"]["online"]} == {"Ann Owner", "Bob Member"}
    b_client.emit("subscribe_thread", {"thread_id": t.id}, callback=True)

    def bob(d):
        return next((p for p in d["online"] if p["user"]["id"] == member.id), None)

    ev = a.wait("presence", lambda d: bob(d) and bob(d)["thread_ids"] == [t.id])
    assert ev["count"] == 2 and bob(ev)["idle"] is False
    assert b_client.emit("activity", {"idle": True}, callback=True)["ok"]
    ev = a.wait("presence", lambda d: bob(d) and bob(d)["idle"])
    assert ev["online"][0]["user"]["name"] == "Ann Owner"  # active people first
    assert b_client.emit("activity", {"idle": "yes"}, callback=True)["error"]["field"] == "idle"
    b_client.disconnect()
    ev = a.wait("presence", lambda d: d["count"] == 1)
    assert ev["online"][0]["user"]["id"] == owner.id


# -- losing access --------------------------------------------------------------------------------

def test_removed_member_stops_receiving_at_once(app, make):
    owner, member = make.user(), make.user()
    room = make.room(owner, members=[member])
    t = make.thread(owner, room)
    m = Collector(sock(app, token=make.token(member)))
    m.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    m.sc.emit("subscribe_thread", {"thread_id": t.id}, callback=True)
    rs.remove_member(owner, room.id, member.id)
    # the revocation happens inside the commit's listener, before anything else is sent
    assert m.named("access.revoked") == [{"room_id": room.id, "reason": "removed",
                                          "message": revocation.ROOM_MESSAGES["removed"]}]
    make.reply(owner, t, "secret after removal")
    o = sock(app, token=make.token(owner))
    o.emit("typing", {"thread_id": t.id}, callback=True)
    assert "secret after removal" not in str(m.pull())
    assert m.named("typing") == []
    ack = m.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    assert ack["error"]["code"] == "not_found"
    assert m.sc.emit("sync", {"room_id": room.id, "after_seq": 0}, callback=True)["error"]["code"] == "not_found"


def test_removed_member_of_an_open_room_keeps_reading(app, make):
    org = make.org()
    owner, member = make.user(org=org), make.user(org=org)
    room = make.room(owner, visibility="organisation", members=[member])
    t = make.thread(owner, room)
    m = Collector(sock(app, token=make.token(member)))
    m.sc.emit("subscribe", {"room_id": room.id}, callback=True)
    rs.remove_member(owner, room.id, member.id)
    assert m.named("access.revoked") == []
    make.reply(owner, t, "still visible")
    assert m.wait("post.created")["post"]["body"] == "still visible"


def test_room_made_private_drops_readers_who_are_not_members(app, make):
    org = make.org()
    owner, reader = make.user(org=org), make.user(org=org)
    room = make.room(owner, visibility="organisation")
    t = make.thread(owner, room)
    r = Collector(sock(app, token=make.token(reader)))
    assert r.sc.emit("subscribe", {"room_id": room.id}, callback=True)["ok"]
    rs.update_room(owner, room.id, name=room.name, description="", visibility="private")
    assert r.wait("access.revoked")
    tasks.settle(app)
    make.reply(owner, t, "members only now")
    assert "members only now" not in str(r.pull())


def test_deactivation_ends_every_connection_of_the_account(app, make):
    from auth import services as accounts

    admin, u = make.user(admin=True), make.user()
    cookie = Collector(sock(app, login_client(app, u)))
    token = Collector(sock(app, token=make.token(u)))
    accounts.set_active(admin, u.id, False)
    assert not cookie.sc.is_connected() and not token.sc.is_connected()
    assert cookie.named("session.ended")[0]["reason"] == "deactivated"


def test_signing_out_everywhere_ends_cookie_connections_only(app, make):
    from auth import services as accounts
    from tests.conftest import PASSWORD

    u = make.user()
    cookie = sock(app, login_client(app, u))
    token = sock(app, token=make.token(u))
    accounts.change_password(u, PASSWORD, "another quite long passphrase 42")
    assert not cookie.is_connected()
    assert token.is_connected()


def test_revoking_a_token_ends_its_connections(app, make):
    from auth import services as accounts

    u = make.user()
    tok, raw = accounts.create_token(u, "script")
    other = sock(app, token=make.token(u))
    a = sock(app, token=raw)
    accounts.revoke_token(u, tok.id)
    assert not a.is_connected()
    assert other.is_connected()
