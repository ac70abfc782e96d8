"""One revocation path (issue 10): every way of losing a room cuts every live channel.

For each way of losing access -- removed from a private room, an organisation room made private,
a non-attributed room made private, account deactivated, account suspended, two-step sign-in
required and not set up, the browser session ended -- a person is connected with live clients
following the room, a thread and a meeting's channel (`meeting_join`). After the loss they are
told (`access.revoked` or `session.ended`), and of the posts and meeting chat that follow, which
a control client of the owner receives, nothing reaches them.

The first test runs inside the real app (Flask-SocketIO's test client, SQLite and PostgreSQL).
The others run two real server processes sharing PostgreSQL and a Redis this test starts on a
free port: (i) Redis killed and restarted before the access is lost, (ii) Redis started only
after the web processes. Each process finds its own connections in memory; Redis only routes.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time

import pytest
import requests

from auth import mfa, sessions, suspension
from auth import services as auth_services
from auth.account_models import UserMfa
from collab.db import utcnow
from collab.extensions import db
from collab import tasks
from rooms import trust_settings
from rooms import services as rs
from rooms import posts as room_posts
from rooms.meetings import attendance, schedule, state
from tests.conftest import PASSWORD, make_test_app
from tests.live_support import Collector, fresh_postgres_database, login_client, postgres_url, sock, wait_for
from tests.liveserver import NO_MEDIA, free_port, make_server

# What a reader receives because they follow a room, a thread or a meeting.
ROOM_CONTENT = {"post.created", "post.updated", "thread.created", "meeting.chat", "meeting.state", "typing",
                "presence", "reaction.added", "member.added", "member.updated", "room.updated"}
WAYS = ["removed", "org_made_private", "non_attributed_made_private", "deactivated", "suspended",
        "mfa_required", "session_ended"]


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture
def settled(app):
    yield app
    tasks.settle(app)


def _enrolled(user) -> None:
    """Two-step sign-in set up (the stored secret is never read here: only its presence counts)."""
    db.begin_write()
    db.session.add(UserMfa(user_id=user.id, secret="set-up", enabled_at=utcnow()))
    db.session.commit()


def _world(make, way: str):
    org = make.org()
    admin = make.user(admin=True)
    owner = make.user(org=org, name="Olga Owner")
    victim = make.user(org=org, name="Vic Victim")
    if way in ("org_made_private", "non_attributed_made_private"):
        room = make.room(owner, visibility="organisation")        # the victim reads it as org staff
        if way == "non_attributed_made_private":
            trust_settings.set_non_attributed(owner, room.id, True)
    else:
        room = make.room(owner, members=[victim])
    thread = make.thread(owner, room)
    meeting = schedule.schedule_meeting(owner, room.id, title="Plenary", starts_at="2030-01-10T10:00:00Z")
    return admin, owner, victim, room, thread, meeting


def _follow(app, sc, room, thread, meeting) -> Collector:
    c = Collector(sc)
    for event, data in (("subscribe", {"room_id": room.id}), ("subscribe_thread", {"thread_id": thread.id}),
                        ("meeting_join", {"meeting_id": meeting.id})):
        ack = sc.emit(event, data, callback=True)
        assert ack["ok"], (event, ack)
    return c


def _lose(app, way, admin, owner, victim, room):
    if way == "removed":
        rs.remove_member(owner, room.id, victim.id)
    elif way in ("org_made_private", "non_attributed_made_private"):
        r = rs.get_room(owner, room.id)
        rs.update_room(owner, room.id, name=r.name, description=r.description, visibility="private")
    elif way == "deactivated":
        auth_services.set_active(admin, victim.id, False)
    elif way == "suspended":
        suspension.suspend_account(admin, victim.id, 3, "Testing suspension")
    elif way == "mfa_required":
        _enrolled(owner)
        mfa.set_policy(admin, "staff")
    elif way == "session_ended":
        rec = sessions.live_sessions(victim)[0]
        sessions.end_session(victim, rec.id, password=PASSWORD)


@pytest.mark.parametrize("way", WAYS)
def test_every_way_of_losing_access_cuts_room_thread_and_meeting_channels(settled, make, way):
    app = settled
    admin, owner, victim, room, thread, meeting = _world(make, way)
    control = _follow(app, sock(app, token=make.token(owner)), room, thread, meeting)
    if way == "session_ended":   # a browser: the cookie of one session
        victims = [_follow(app, sock(app, login_client(app, victim)), room, thread, meeting)]
    else:                        # a token client and a browser
        victims = [_follow(app, sock(app, token=make.token(victim)), room, thread, meeting),
                   _follow(app, sock(app, login_client(app, victim)), room, thread, meeting)]
    tasks.settle(app)
    for v in victims:
        v.pull()
        v.events.clear()

    _lose(app, way, admin, owner, victim, room)

    told = "access.revoked" if way in ("removed", "org_made_private", "non_attributed_made_private") else \
        "session.ended"
    for v in victims:
        assert v.wait(told, timeout=2), (way, [e["name"] for e in v.pull()])
        v.events.clear()
    control.pull()
    control.events.clear()

    for i in range(3):
        room_posts.create_post(owner, thread.id, body=f"after the loss {i}")
    for i in range(2):
        state.chat(owner, meeting.id, body=f"chat after the loss {i}")
    tasks.settle(app)
    assert wait_for(lambda: len(control.named("post.created")) == 3 and len(control.named("meeting.chat")) == 2,
                    timeout=2), [e["name"] for e in control.pull()]
    time.sleep(0.2)
    for v in victims:
        leaked = [e["name"] for e in v.pull() if e["name"] in ROOM_CONTENT]
        assert leaked == [], (way, leaked)
        if told == "session.ended":
            assert not v.sc.is_connected()
        else:   # still connected, but the room is gone from every channel, and cannot be followed again
            assert v.sc.emit("subscribe", {"room_id": room.id}, callback=True)["ok"] is False
            assert v.sc.emit("meeting_join", {"meeting_id": meeting.id}, callback=True)["ok"] is False


def test_chair_removing_someone_from_a_meeting_takes_them_out_of_its_channel(settled, make):
    app = settled
    _admin, owner, victim, room, thread, meeting = _world(make, "removed")
    control = _follow(app, sock(app, token=make.token(owner)), room, thread, meeting)
    v = _follow(app, sock(app, token=make.token(victim)), room, thread, meeting)
    attendance.remove_participant(owner, meeting.id, user_id=victim.id)
    assert v.wait("meeting.removed", timeout=2)
    v.events.clear()
    state.chat(owner, meeting.id, body="said after the removal")
    room_posts.create_post(owner, thread.id, body="the room goes on")
    assert control.wait("meeting.chat", timeout=2)
    assert v.wait("post.created", timeout=2)          # still a member of the room: only the meeting is cut
    assert [e for e in v.pull() if e["name"] in ("meeting.chat", "meeting.state")] == []


def test_a_token_without_required_two_step_sign_in_can_neither_connect_nor_act(settled, make):
    app = settled
    admin = make.user(admin=True)
    user = make.user()
    room = make.room(user)
    token = make.token(user)
    before = sock(app, token=token)
    assert before.is_connected()
    mfa.set_policy(admin, "all")
    assert not before.is_connected()            # ended when the policy was switched on
    assert not sock(app, token=token).is_connected()
    # as the REST API refuses the same token (collab/api.py)
    r = app.test_client().get(f"/api/v1/rooms/{room.id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "mfa_required"


# -- two real server processes and a Redis of our own -----------------------------------------------------

class OwnRedis:
    """A Redis server on a free port for one test (never the shared one on 6379)."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port",
                                      str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        assert wait_for(lambda: self._ping(redis), timeout=10), "redis-server did not start"

    def _ping(self, redis) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=1).ping()
        except Exception:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Remote:
    """A python-socketio client of a real server process that keeps every event it gets."""

    def __init__(self, url: str, token: str):
        import socketio

        self.events: list[tuple[str, object]] = []
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, data=None: self.events.append((event, data)))
        self.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def call(self, event: str, data: dict) -> dict:
        return self.sio.call(event, data, timeout=10)

    def names(self) -> list[str]:
        return [e for e, _ in self.events]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sio.disconnect()


@pytest.fixture
def two_processes(tmp_path):
    """PostgreSQL database, a Redis of our own (not yet started) and two server processes (not yet
    started), plus an app in this process on the same database for setting up."""
    pg = postgres_url()
    if not pg or not (shutil.which("redis-server") or shutil.os.path.exists("/usr/bin/redis-server")):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 and redis-server")
    db_url, drop = fresh_postgres_database(pg)
    own = OwnRedis(tmp_path)
    env = {"COLLAB_REDIS_URL": own.url, "COLLAB_LIVE_HEARTBEAT_SECONDS": "1", **NO_MEDIA}
    a = make_server(tmp_path / "a", database_url=db_url, extra_env=env)
    b = make_server(tmp_path / "b", database_url=db_url, extra_env=env, migrate=False)
    # This process takes part too (an administrator's action in a third process): same database and Redis.
    setup = make_test_app(tmp_path / "setup", db_url, REDIS_URL=own.url, RATELIMIT_STORAGE_URI="memory://")
    try:
        yield own, a, b, setup
    finally:
        a.kill()
        b.kill()
        own.kill()
        with setup.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


def _setup_world(setup):
    from tests.conftest import Factory

    make = Factory(setup)
    owner, member, gone = make.user(name="Olga Owner"), make.user(name="Mel Member"), make.user(name="Dee Gone")
    room = make.room(owner, members=[member, gone])
    thread = make.thread(owner, room)
    meeting = schedule.schedule_meeting(owner, room.id, title="Plenary", starts_at="2030-01-10T10:00:00Z")
    ids = {"room": room.id, "thread": thread.id, "meeting": meeting.id, "member": member.id, "gone": gone.id}
    toks = {"owner": make.token(owner), "member": make.token(member), "gone": make.token(gone)}
    return ids, toks


def _follow_remote(client: Remote, ids: dict) -> None:
    assert client.call("subscribe", {"room_id": ids["room"]})["ok"]
    assert client.call("subscribe_thread", {"thread_id": ids["thread"]})["ok"]
    assert client.call("meeting_join", {"meeting_id": ids["meeting"]})["ok"]


def _queue_works(a, b, toks, ids, control: Remote, tag: str) -> bool:
    """A post made through B reaches the owner's client on A: the message queue routes again."""
    h = {"Authorization": f"Bearer {toks['owner']}"}
    r = requests.post(b.url + f"/api/v1/threads/{ids['thread']}/posts", json={"body": tag}, headers=h, timeout=10)
    assert r.status_code == 201, r.text
    return bool(wait_for(lambda: any(e == "post.created" and d["post"]["body"] == tag for e, d in control.events),
                         timeout=2))


def _revocations_reach_both_processes(setup, a, b, toks, ids) -> None:
    """The member removed through B (clients on A and B) and an account deactivated by an administrator
    in another process (clients on A and B) stop receiving anything of the room within 2 s."""
    from tests.conftest import Factory

    control = Remote(a.url, toks["owner"])
    victims = {who: [Remote(a.url, toks[who]), Remote(b.url, toks[who])] for who in ("member", "gone")}
    try:
        _follow_remote(control, ids)
        for pair in victims.values():
            for c in pair:
                _follow_remote(c, ids)
        assert wait_for(lambda: _queue_works(a, b, toks, ids, control, f"probe {time.monotonic()}"), timeout=40), \
            "the Socket.IO message queue never routed again"
        # presence heals by itself: each process writes its own connections again (3 people online)
        assert wait_for(lambda: control.call("subscribe", {"room_id": ids["room"]})["presence"]["count"] == 3,
                        timeout=10, interval=0.5), control.call("subscribe", {"room_id": ids["room"]})["presence"]

        h = {"Authorization": f"Bearer {toks['owner']}"}
        r = requests.delete(b.url + f"/api/v1/rooms/{ids['room']}/members/{ids['member']}", headers=h, timeout=10)
        assert r.status_code == 200, r.text
        admin = Factory(setup).user(admin=True)   # deactivated by an administrator, through this process
        auth_services.set_active(admin, ids["gone"], False)

        for c in victims["member"]:
            assert wait_for(lambda c=c: "access.revoked" in c.names(), timeout=2), c.names()
        for c in victims["gone"]:
            assert wait_for(lambda c=c: "session.ended" in c.names() or not c.sio.connected, timeout=2), c.names()
        marks = {id(c): len(c.events) for pair in victims.values() for c in pair}
        for i in range(3):
            requests.post(b.url + f"/api/v1/threads/{ids['thread']}/posts", json={"body": f"after {i}"}, headers=h,
                          timeout=10)
            assert control.call("meeting_chat", {"meeting_id": ids["meeting"], "body": f"chat {i}"})["ok"]
        assert wait_for(lambda: sum(e == "meeting.chat" for e, _ in control.events) >= 3 and
                        sum(e == "post.created" and d["post"]["body"].startswith("after ")
                            for e, d in control.events) >= 3, timeout=3)
        time.sleep(0.3)
        for who, pair in victims.items():
            for c in pair:
                leaked = [e for e, _ in c.events[marks[id(c)]:] if e in ROOM_CONTENT]
                assert leaked == [], (who, leaked)
    finally:
        control.close()
        for pair in victims.values():
            for c in pair:
                c.close()


@pytest.mark.slow
def test_two_processes_revoke_after_redis_was_killed_and_restarted(two_processes):
    own, a, b, setup = two_processes
    own.start()
    a.start()
    b.start()
    with setup.app_context():
        ids, toks = _setup_world(setup)
        own.kill()          # everything Redis knew (presence, who is online) is gone
        time.sleep(0.5)
        own.start()
        _revocations_reach_both_processes(setup, a, b, toks, ids)


@pytest.mark.slow
def test_two_processes_revoke_when_redis_started_after_them(two_processes):
    own, a, b, setup = two_processes
    a.start()
    b.start()
    with setup.app_context():
        ids, toks = _setup_world(setup)
        own.start()
        _revocations_reach_both_processes(setup, a, b, toks, ids)
