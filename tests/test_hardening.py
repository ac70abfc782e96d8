"""Bad input at the seams (issue 10, weaker spots): hostile Socket.IO payloads, ids in other scripts'
digits, names carrying invisible format characters. Each gets a clear 4xx-style answer and changes nothing."""
from __future__ import annotations

import json

import pytest

from collab import tasks
from tests.live_support import Collector, sock


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)  # the live-room state of this app ends with it (as in tests/test_realtime.py)


def _raw_emit(sc, ack_id: int, encoded_args: str):
    """Send an EVENT packet as the wire carries it (the test client's own encoder cannot build these)."""
    sc.acks = None
    sc.socketio.server._handle_eio_message(sc.eio_sid, f"2{ack_id}{encoded_args}")
    ack = sc.acks
    sc.acks = None
    return ack["args"][0] if ack and len(ack["args"]) == 1 else ack


def test_deeply_nested_socket_payloads_are_refused_clearly(app, make):
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    c = Collector(sock(app, token=make.token(owner)))
    deep = 5_000
    for event in ("post", "subscribe", "sync", "typing"):
        for args in ('["%s", %s%s]' % (event, "[" * deep, "]" * deep),
                     '["%s", {"thread_id": %d, "body": %s1%s}]' % (event, thread.id, '{"a":' * deep, "}" * deep)):
            ack = _raw_emit(c.sc, 7, args)
            assert ack is not None, (event, args[:40])
            assert ack["ok"] is False and ack["error"]["code"] == "invalid", (event, ack)
            assert "nested" in ack["error"]["message"] or "JSON object" in ack["error"]["message"], ack
    # around the parser's own limit: readable on the wire, maybe too deep for the checks further up the stack
    for depth in range(900, 1001, 4):
        args = '["post", {"thread_id": %d, "client_id": "d", "body": %s%s}]' % (thread.id, "[" * depth, "]" * depth)
        ack = _raw_emit(c.sc, 8, args)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid" and ack["error"]["message"], (depth, ack)
    assert c.sc.is_connected()
    # an ordinary message still works on the same connection
    ok = c.sc.emit("post", {"thread_id": thread.id, "body": "still here", "client_id": "c-1"}, callback=True)
    assert ok["ok"] is True, ok
    json.dumps(ok)


# -- ids: ASCII digits only ------------------------------------------------------------------------------------

OTHER_DIGITS = ["\u0661", "\u0967", "\uff11", "\u00b9", "\U0001d7cf"]  # Arabic-Indic, Devanagari, full-width 1, ¹, 𝟏


def test_ids_in_other_scripts_digits_name_nothing(app, make):
    from collab import validate
    from collab.errors import Invalid
    from tests.conftest import bearer
    from tests.live_support import login_client

    owner = make.user()
    room = make.room(owner, name="Room one")
    thread = make.thread(owner, room)
    assert room.id == 1 and thread.id == 1
    headers = bearer(make.token(owner))
    client = app.test_client()
    web = login_client(app, owner)
    assert client.get("/api/v1/rooms/1", headers=headers).status_code == 200
    assert web.get("/rooms/1").status_code == 200
    for d in OTHER_DIGITS:
        for url in (f"/api/v1/rooms/{d}", f"/api/v1/threads/{d}"):
            r = client.get(url, headers=headers)
            assert r.status_code == 404 and r.is_json, (url, r.status_code)
        assert web.get(f"/rooms/{d}").status_code == 404
        assert web.get(f"/threads/{d}").status_code == 404
        r = client.get(f"/api/v1/rooms/1/threads?page={d}", headers=headers)
        assert r.status_code == 422, (d, r.status_code)
        try:
            validate.int_id(d, "room_id")
        except Invalid:
            pass
        else:
            raise AssertionError(f"int_id accepted {d!r}")
    # a body naming a room by such digits is refused, not read as room 1
    r = client.post("/api/v1/rooms/1/threads", headers=headers, json={"title": "t", "body": "b"})
    assert r.status_code == 201
    sc = Collector(sock(app, token=make.token(owner)))
    ack = sc.sc.emit("subscribe", {"room_id": "\u0661"}, callback=True)
    assert ack["ok"] is False and ack["error"]["field"] == "room_id", ack
    # ids past the database's 32-bit range are refused, not a server error
    assert client.get("/api/v1/rooms/99999999999999999999", headers=headers).status_code in (404, 422)
    assert web.get("/rooms/99999999999999999999").status_code in (404, 422)


# -- names: no invisible characters ------------------------------------------------------------------------------

SPOOFS = ["Ada\u202eecirtaP", "Ad\u200bam", "Ada\u2066Smith\u2069", "Ada\u00adSmith", "Ada\u0007Smith", "Ada\u2028Smith"]


def _refused(r, field="name") -> bool:
    text = r.get_data(as_text=True)
    return r.status_code in (200, 422) and "invisible control or formatting characters" in text


def test_names_with_invisible_characters_are_refused_everywhere(app, make):
    from sqlalchemy import func, select

    from auth import services as auth_services
    from auth.models import User
    from collab.errors import Invalid
    from collab.extensions import db
    from tests.conftest import PASSWORD, bearer
    from tests.live_support import login_client

    admin = make.user(admin=True, name="Admin Person")
    users_before = db.session.scalar(select(func.count(User.id)))
    for spoof in SPOOFS:
        # account creation (the service every way of making an account goes through)
        try:
            auth_services.create_user(email=f"s{len(spoof)}@example.org", name=spoof, password=PASSWORD)
        except Invalid as err:
            assert err.field == "name" and "invisible" in err.message
        else:
            raise AssertionError(f"create_user accepted {spoof!r}")
    assert db.session.scalar(select(func.count(User.id))) == users_before

    # invitation acceptance: the invitation stays usable
    ac = login_client(app, admin)
    with app.test_request_context():
        inv_link = auth_services.create_invitation(admin, kind="iag")[1]
    link = "/invite/" + inv_link.rsplit("/", 1)[1]
    guest = app.test_client()
    for spoof in SPOOFS:
        r = guest.post(link, data={"name": spoof, "email": "ivy@example.org", "password": "a new long passphrase 1"})
        assert _refused(r), (spoof, r.status_code)
    assert db.session.scalar(select(func.count(User.id))) == users_before
    r = guest.post(link, data={"name": "Ivy", "email": "ivy@example.org", "password": "a new long passphrase 1"})
    assert r.status_code == 302

    # profile change: the name stays as it was
    for spoof in SPOOFS:
        r = ac.post("/account", data={"action": "profile", "name": spoof, "job_title": ""})
        assert _refused(r), spoof
    db.session.expire_all()
    assert db.session.get(User, admin.id).name == "Admin Person"

    # room names, over the API
    headers = bearer(make.token(admin))
    for spoof in SPOOFS:
        r = app.test_client().post("/api/v1/rooms", json={"name": spoof}, headers=headers)
        assert r.status_code == 422 and r.json["error"]["field"] == "name", r.json

    # names are stored composed (NFC): "é" typed as e + combining accent is the same name as "é"
    r = ac.post("/account", data={"action": "profile", "name": "Rene\u0301 Dupont", "job_title": ""})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, admin.id).name == "Ren\u00e9 Dupont"
