"""Live rooms over Socket.IO (default namespace).

Contract (docs/realtime.md has the full version for integrators):

- connect: a browser is authenticated by its Flask-Login session cookie and must
  come from the configured public origin; other clients pass
  ``auth={"token": "<personal access token>"}`` or ``Authorization: Bearer``.
  Anything else is refused.
- client -> server (each answers through the ack, ``{"ok": true, ...}`` or
  ``{"ok": false, "error": {"code", "message"[, "field"]}}``; a refused event
  also gets an ``error`` event): ``subscribe``/``unsubscribe`` {room_id},
  ``subscribe_thread``/``unsubscribe_thread`` {thread_id}, ``sync`` {room_id,
  after_seq}, ``post`` {thread_id, body, client_id[, parent_id]}, ``typing``
  {thread_id}, ``activity`` {idle}.
- server -> client: every numbered room event (``thread.created``,
  ``post.created``, ``post.updated``, ``post.deleted``, ``reaction.added``,
  ``reaction.removed``, ``member.added``, ``member.updated``,
  ``member.removed``, ``room.updated``) to ``room-<id>``, after the commit;
  ``presence``, ``typing``, ``notification.created``, ``notification.read``,
  ``access.revoked``, ``session.ended``, ``error``.

Every handler re-reads the account (deactivated, signed out everywhere or
token revoked = the connection ends) and asks `rooms.policy`, through the
room services, whether the account may do what it asks.

Each process keeps its own connections in memory (`LiveState.conns`: account,
rooms, threads, meetings); losing access is rooms/revocation.py, which reaches
every process through the Socket.IO message queue and lets each act on its own
connections. Who is online where (presence, and whether an account is online at
all, for e-mail) is kept in a store: in process memory, or in Redis when
COLLAB_REDIS_URL is set. The store is only for showing and counting: every
process re-writes its own entries periodically (`_heartbeat_loop`), so a Redis
that restarted empty, or started after the web processes, heals by itself.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, has_app_context, request
from flask_login import current_user
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from auth import mfa
from auth.models import ApiToken, User
from collab import events
from collab.errors import Forbidden, Invalid, ServiceError
from collab.extensions import db, limiter, socketio
from collab.tokens import digest
from collab.socket_packets import TOO_DEEP
from rooms import policy, services
from rooms.models import Post, Room
from rooms.serialize import post_dict

log = logging.getLogger(__name__)

NS = "/"
IDLE_AFTER_SECONDS = 300          # the browser reports idle after 5 minutes without input
PRESENCE_LIST_MAX = 50            # people listed in one presence message (the count is exact)
SYNC_BATCH = 500                  # events per `sync` answer; `more` says ask again
TYPING_LIMIT = "10 per 10 seconds"
ACTIVITY_LIMIT = "30 per minute"
SUBSCRIBE_LIMIT = "60 per minute"
SYNC_LIMIT = "120 per minute"
MAX_PAYLOAD = 4_000               # bytes of JSON for every event but `post`
MAX_POST_PAYLOAD = 400_000        # a 50,000-character post, escaped


def room_key(room_id: int) -> str:
    return f"room-{room_id}"


def thread_key(thread_id: int) -> str:
    return f"thread-{thread_id}"


def user_key(user_id: int) -> str:
    return f"user-{user_id}"


def meeting_key(meeting_id: int) -> str:
    return f"meeting-{meeting_id}"


def names_key(meeting_id: int) -> str:
    """The channel of those who see names in a non-attributed room's meeting (rooms/meetings/pseudonyms.py)."""
    return f"meeting-{meeting_id}-names"


def meeting_keys(meeting_id: int) -> tuple[str, str]:
    """Every channel of a meeting: losing access leaves them all."""
    return meeting_key(meeting_id), names_key(meeting_id)


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


# -- per-process state -----------------------------------------------------------------

@dataclass
class Conn:
    sid: str
    user_id: int
    name: str
    via: str                      # "cookie" or "token"
    stoken: str = ""              # key of the server-side session the cookie carried (auth/sessions.py)
    token_id: int | None = None
    rooms: set[int] = field(default_factory=set)
    threads: dict[int, int] = field(default_factory=dict)   # thread id -> room id
    meetings: dict[int, int] = field(default_factory=dict)  # meeting id -> room id (its channel joined)
    entries: dict[int, dict] = field(default_factory=dict)  # room id -> this connection's presence entry
    idle: bool = False

    def details(self) -> dict[str, Any]:
        """What the store keeps about an online connection."""
        return {"via": self.via, "st": self.stoken, "tid": self.token_id}


class MemoryStore:
    """Who is online and where, for a single server process."""

    host = "local"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.online: dict[int, dict[str, dict]] = {}          # user id -> sid -> details
        self.presence: dict[int, dict[str, dict]] = {}        # room id -> sid -> entry

    def online_put(self, sid: str, user_id: int, details: dict) -> None:
        with self.lock:
            self.online.setdefault(user_id, {})[sid] = details

    def online_drop(self, sid: str, user_id: int) -> None:
        with self.lock:
            sids = self.online.get(user_id, {})
            sids.pop(sid, None)
            if not sids:
                self.online.pop(user_id, None)

    def user_sids(self, user_id: int) -> dict[str, dict]:
        with self.lock:
            return dict(self.online.get(user_id, {}))

    def is_online(self, user_id: int) -> bool:
        with self.lock:
            return bool(self.online.get(user_id))

    def presence_put(self, room_id: int, sid: str, entry: dict) -> None:
        with self.lock:
            self.presence.setdefault(room_id, {})[sid] = entry

    def presence_drop(self, room_id: int, sid: str) -> dict | None:
        with self.lock:
            entries = self.presence.get(room_id, {})
            entry = entries.pop(sid, None)
            if not entries:
                self.presence.pop(room_id, None)
            return entry

    def presence_get(self, room_id: int, sid: str) -> dict | None:
        with self.lock:
            return self.presence.get(room_id, {}).get(sid)

    def presence_entries(self, room_id: int) -> list[dict]:
        with self.lock:
            return list(self.presence.get(room_id, {}).values())

    def heartbeat(self) -> None:
        pass

    def rewrite(self, conns: list[Conn]) -> None:
        pass  # process memory is never lost while the process lives


class RedisStore:
    """The same, shared by every server process through Redis. Fields are
    "<host>|<sid>"; a host that stops refreshing its heartbeat key (killed) is
    ignored and its entries are cleaned up by whoever reads them.

    Nothing here is needed to cut anyone off (rooms/revocation.py uses each
    process's own connections): a Redis that is down or lost its keys only makes
    presence and "is online" wrong until the next heartbeat re-writes them."""

    HOST_TTL = 60

    def __init__(self, url: str) -> None:
        import redis  # optional dependency: only with COLLAB_REDIS_URL

        # No network here: Redis may be down while this process starts; the heartbeat writes the host key.
        self.r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                      health_check_interval=30)
        self.host = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._alive: dict[str, tuple[bool, float]] = {}

    def _f(self, sid: str) -> str:
        return f"{self.host}|{sid}"

    def heartbeat(self) -> None:
        self.r.set(f"collab:live-host:{self.host}", "1", ex=self.HOST_TTL)

    def rewrite(self, conns: list[Conn]) -> None:
        """Write this process's host key and the entries of all its connections again (a restarted
        Redis has none of them)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.set(f"collab:live-host:{self.host}", "1", ex=self.HOST_TTL)
        for c in conns:
            pipe.hset(f"collab:online:{c.user_id}", self._f(c.sid), json.dumps(c.details()))
            for room_id, entry in c.entries.items():
                pipe.hset(f"collab:presence:{room_id}", self._f(c.sid), json.dumps(entry))
        pipe.execute()

    def _host_alive(self, host: str) -> bool:
        if host == self.host:
            return True
        alive, at = self._alive.get(host, (False, 0.0))
        if time.monotonic() - at > 5:
            alive = bool(self.r.exists(f"collab:live-host:{host}"))
            self._alive[host] = (alive, time.monotonic())
        return alive

    def _live(self, key: str) -> dict[str, str]:
        raw = self.r.hgetall(key)
        dead = [f for f in raw if not self._host_alive(f.split("|", 1)[0])]
        if dead:
            self.r.hdel(key, *dead)
        return {f: v for f, v in raw.items() if f not in dead}

    def online_put(self, sid: str, user_id: int, details: dict) -> None:
        self.r.hset(f"collab:online:{user_id}", self._f(sid), json.dumps(details))

    def online_drop(self, sid: str, user_id: int) -> None:
        self.r.hdel(f"collab:online:{user_id}", self._f(sid))

    def user_sids(self, user_id: int) -> dict[str, dict]:
        return {f.split("|", 1)[1]: json.loads(v) for f, v in self._live(f"collab:online:{user_id}").items()}

    def is_online(self, user_id: int) -> bool:
        return bool(self._live(f"collab:online:{user_id}"))

    def presence_put(self, room_id: int, sid: str, entry: dict) -> None:
        self.r.hset(f"collab:presence:{room_id}", self._f(sid), json.dumps(entry))

    def presence_drop(self, room_id: int, sid: str) -> dict | None:
        key = f"collab:presence:{room_id}"
        raw = self.r.hget(key, self._f(sid))
        self.r.hdel(key, self._f(sid))
        return json.loads(raw) if raw else None

    def presence_get(self, room_id: int, sid: str) -> dict | None:
        raw = self.r.hget(f"collab:presence:{room_id}", self._f(sid))
        return json.loads(raw) if raw else None

    def presence_entries(self, room_id: int) -> list[dict]:
        return [json.loads(v) for v in self._live(f"collab:presence:{room_id}").values()]


_STORE_DEFAULTS: dict[str, Any] = {"user_sids": {}, "is_online": False, "presence_entries": [], "presence_get": None,
                                   "presence_drop": None}


class LiveState:
    """One server process's live state: its own connections (`conns`, the registry revocation uses),
    the presence store, and its background tasks."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        url = app.config.get("REDIS_URL")
        self.store: MemoryStore | RedisStore | None = None
        self.redis_url = url
        self.conns: dict[str, Conn] = {}
        self.lock = threading.RLock()
        self.flush_pending: set[int] = set()
        self.tasks: list[Any] = []
        self.started_pid: int | None = None
        self.store_failing = False
        self.unsaved_drops: list[tuple[str, tuple]] = []   # drops Redis missed, tried again at the heartbeat

    def get_store(self) -> MemoryStore | RedisStore:
        if self.store is None:
            with self.lock:
                if self.store is None:
                    self.store = RedisStore(self.redis_url) if self.redis_url else MemoryStore()
        return self.store

    def store_safely(self, method: str, *args: Any) -> Any:
        """Call a store method; if Redis does not answer, log once per outage and carry on (presence
        is for showing; the heartbeat re-writes it). A missed drop is tried again later."""
        try:
            result = getattr(self.get_store(), method)(*args)
        except Exception as exc:  # noqa: BLE001 - redis errors of any kind: presence is best effort
            if not self.store_failing:
                log.warning("presence store unavailable (%s): live rooms carry on, presence heals later", exc)
            self.store_failing = True
            if method.endswith("_drop"):
                with self.lock:
                    self.unsaved_drops = self.unsaved_drops[-10_000:] + [(method, args)]
            return _STORE_DEFAULTS.get(method)
        self.store_failing = False
        return result



def state(app: Flask | None = None) -> LiveState:
    app = app or current_app._get_current_object()
    st = app.extensions.get("collab_live")
    if st is None:
        st = app.extensions["collab_live"] = LiveState(app)
    return st


def spawn(app: Flask, fn: Callable, *args: Any) -> Any:
    """Run `fn(*args)` in the background with an app context (a greenlet under
    gevent, a thread otherwise); `settle()` waits for these."""
    st = state(app)

    def run():
        with app.app_context():
            try:
                fn(*args)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
            finally:
                db.session.remove()

    task = socketio.start_background_task(run)
    with st.lock:
        st.tasks = [t for t in st.tasks if _alive(t)] + [task]
    return task


def _alive(task: Any) -> bool:
    if hasattr(task, "is_alive"):
        return task.is_alive()
    return not getattr(task, "dead", True)


def settle(app: Flask | None = None, timeout: float = 10.0) -> None:
    """Wait until background work started by live events (presence flushes,
    e-mails, permission re-checks) has finished. Used by tests and the CLI."""
    st = state(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with st.lock:
            running = [t for t in st.tasks if _alive(t)]
        if not running:
            return
        for t in running:
            t.join(max(0.0, deadline - time.monotonic()))


def is_online(user_id: int, app: Flask | None = None) -> bool:
    return bool(state(app).store_safely("is_online", user_id))


# -- background loops (one set per server process) -----------------------------------------

def start_background(app: Flask) -> None:
    """Once per server process: the presence heartbeat (with Redis) and the digest loop
    (under `flask serve`, or when LIVE_DIGEST_LOOP is set)."""
    st = state(app)
    if st.started_pid == os.getpid():
        return
    with st.lock:
        if st.started_pid == os.getpid():
            return
        st.started_pid = os.getpid()
    if st.redis_url:
        socketio.start_background_task(_heartbeat_loop, app)
    if app.config.get("LIVE_DIGEST_LOOP", app.config.get("ASYNC_MODE") == "gevent"):
        socketio.start_background_task(_digest_loop, app)


def _heartbeat_loop(app: Flask) -> None:
    """Every LIVE_HEARTBEAT_SECONDS, re-write this process's host key and the online and presence
    entries of all its connections, from its own registry: a Redis that restarted empty, or that was
    down while this process started, heals by itself. Never ends: a Redis that does not answer is
    tried again next time (and missed drops with it)."""
    st = state(app)
    every = float(app.config.get("LIVE_HEARTBEAT_SECONDS", RedisStore.HOST_TTL / 3))
    while True:
        try:
            store = st.get_store()
            with st.lock:
                conns = list(st.conns.values())
                drops, st.unsaved_drops = st.unsaved_drops, []
            for method, args in drops:
                st.store_safely(method, *args)
            store.rewrite(conns)
            if st.store_failing:
                log.info("presence store answers again: %d connections written back", len(conns))
            st.store_failing = False
        except Exception as exc:  # noqa: BLE001 - Redis down: try again at the next beat
            if not st.store_failing:
                log.warning("presence heartbeat failed (%s); trying again every %s s", exc, every)
            st.store_failing = True
        socketio.sleep(every)


def _digest_loop(app: Flask) -> None:
    """Daily digests: checked every 15 minutes by every process; each account is
    claimed in the database, so only one process sends it."""
    from rooms import notifications

    socketio.sleep(30)
    while True:
        with app.app_context():
            try:
                notifications.send_due_digests(is_online=lambda uid: is_online(uid, app))
            except Exception:
                log.exception("digest run failed")
            finally:
                db.session.remove()
        socketio.sleep(900)


# -- presence ---------------------------------------------------------------------------------

def presence_snapshot(room_id: int, app: Flask | None = None) -> dict[str, Any]:
    """Who is online in a room: one entry per person (idle only if every tab is
    idle; the threads they are viewing), active people first."""
    people: dict[int, dict[str, Any]] = {}
    for e in state(app).store_safely("presence_entries", room_id) or []:
        person = {"name": e["n"], "pseudonym": True} if e.get("a") else {"id": e["u"], "name": e["n"]}
        p = people.setdefault(e["u"], {"user": person, "idle": True, "thread_ids": set()})
        p["idle"] = p["idle"] and bool(e.get("i"))
        p["thread_ids"].update(e.get("t", []))
    online = sorted(people.values(), key=lambda p: (p["idle"], p["user"]["name"].casefold()))
    for p in online:
        p["thread_ids"] = sorted(p["thread_ids"])
    return {"room_id": room_id, "count": len(online), "online": online[:PRESENCE_LIST_MAX]}


def _entry(conn: Conn, room_id: int) -> dict[str, Any]:
    room = db.session.get(Room, room_id)
    if room is not None and room.non_attributed:  # who is here is not shown by name (rooms/pseudonyms.py)
        return {"u": f"a:{conn.sid}", "n": "A participant", "a": 1, "i": conn.idle,  # "u" is never sent
                "t": sorted(t for t, r in conn.threads.items() if r == room_id)}
    return {"u": conn.user_id, "n": conn.name, "i": conn.idle,
            "t": sorted(t for t, r in conn.threads.items() if r == room_id)}


def schedule_presence(room_id: int) -> None:
    """Coalesce presence changes: at most one `presence` message per room per
    LIVE_PRESENCE_DELAY seconds (1 s), so 1,000 people arriving is not 1,000²
    messages."""
    app = current_app._get_current_object()
    st = state(app)
    with st.lock:
        if room_id in st.flush_pending:
            return
        st.flush_pending.add(room_id)
    spawn(app, _flush_presence, app, room_id)


def _flush_presence(app: Flask, room_id: int) -> None:
    socketio.sleep(app.config.get("LIVE_PRESENCE_DELAY", 1.0))
    st = state(app)
    with st.lock:
        st.flush_pending.discard(room_id)
    socketio.emit("presence", presence_snapshot(room_id, app), to=room_key(room_id), namespace=NS)


def _put_presence(conn: Conn, room_id: int) -> None:
    """Write (and remember, for the heartbeat) this connection's presence in a room."""
    conn.entries[room_id] = _entry(conn, room_id)
    state().store_safely("presence_put", room_id, conn.sid, conn.entries[room_id])
    schedule_presence(room_id)


def _update_presence(conn: Conn, user: User) -> None:
    """Re-write this connection's presence in each room it follows, dropping any
    room the account may no longer read."""
    for room_id in list(conn.rooms):
        room = db.session.get(Room, room_id)
        if room is None or not policy.can_read_room(user, room):
            forget_room(conn, room_id, meetings=True)
            continue
        _put_presence(conn, room_id)


def forget_room(conn: Conn, room_id: int, *, meetings: bool = False, also: Iterable[int] = ()) -> None:
    """Take a connection of this process out of a room and its threads (and, when access is lost,
    `meetings`: its meetings' channels, with the meeting ids `also` gathered before a commit)."""
    server = socketio.server
    server.leave_room(conn.sid, room_key(room_id), namespace=NS)
    for tid in [t for t, r in conn.threads.items() if r == room_id]:
        server.leave_room(conn.sid, thread_key(tid), namespace=NS)
        conn.threads.pop(tid, None)
    if meetings:
        for mid in {m for m, r in conn.meetings.items() if r == room_id} | set(also):
            for key in meeting_keys(mid):
                server.leave_room(conn.sid, key, namespace=NS)
            conn.meetings.pop(mid, None)
    followed = room_id in conn.rooms
    conn.rooms.discard(room_id)
    conn.entries.pop(room_id, None)
    if followed:
        state().store_safely("presence_drop", room_id, conn.sid)
        schedule_presence(room_id)


# -- after-commit: broadcast -------------------------------------------------------------------
# (Losing access after a commit -- member.removed, room.updated, account.changed -- is rooms/revocation.py.)

@events.listen
def _on_event(ev: events.Event) -> None:
    if not socketio.server or not has_app_context():
        return
    if ev.room_id is not None and "seq" in ev.payload:
        payload = ev.payload
        if ev.meta.get("anonymous"):  # member.* of a non-attributed room: nobody is named
            from rooms import pseudonyms

            payload = pseudonyms.member_event(payload)
        socketio.emit(ev.name, payload, to=room_key(ev.room_id), namespace=NS)
    uid = ev.meta.get("user_id")
    if ev.name.startswith("notification.") and uid:
        socketio.emit(ev.name, ev.payload, to=user_key(uid), namespace=NS)
    app = current_app._get_current_object()
    if ev.name == "notification.created" and ev.meta.get("kind") == "mention" and app.config.get("SMTP_HOST"):
        from rooms import notifications

        spawn(app, notifications.send_mention_email, ev.meta["notification_id"],
              lambda u: is_online(u, app))


@sa_event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Is the room of a member.* event non-attributed? Decided now, while the database
    can be asked, so the after-commit broadcast needs none."""
    for ev in events.pending(session):
        if ev.name.startswith("member.") and ev.room_id is not None and "anonymous" not in ev.meta:
            room = session.get(Room, ev.room_id)
            ev.meta["anonymous"] = bool(room is not None and room.non_attributed)


def _account_changed(target, reason: str, **extra: Any) -> None:
    session = object_session(target)
    uid = target.id if isinstance(target, User) else target.user_id
    if session is not None and uid is not None:
        events.queue(session, "account.changed", {"user_id": uid, "reason": reason, **extra})


@sa_event.listens_for(User.active, "set")
def _on_active(target: User, value, oldvalue, _initiator) -> None:
    if value is False and oldvalue is not False:
        _account_changed(target, "deactivated")


@sa_event.listens_for(User.session_token, "set")
def _on_session_token(target: User, value, oldvalue, _initiator) -> None:
    if value and value != oldvalue:
        _account_changed(target, "signed_out", stoken=digest(value)[:16])


@sa_event.listens_for(ApiToken.revoked_at, "set")
def _on_token_revoked(target: ApiToken, value, oldvalue, _initiator) -> None:
    if value is not None and oldvalue is None:
        _account_changed(target, "token_revoked", token_id=target.id)


# -- connecting ------------------------------------------------------------------------------------

_MFA_MESSAGE = ("Two-step sign-in is required for this account and is not set up yet: sign in to Collab in a "
                "browser to set it up, then connect again.")


def _refuse(code: str, message: str) -> ConnectionRefusedError:
    return ConnectionRefusedError({"code": code, "message": message})


def _authenticate(auth: Any) -> Conn:
    token: str | None = None
    if auth is not None:
        if not isinstance(auth, dict) or ("token" in auth and not isinstance(auth["token"], str)):
            raise _refuse("invalid", 'auth must be an object like {"token": "<personal access token>"}.')
        token = auth.get("token")
    if token is None:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and raw.strip():
            token = raw.strip()
    if token is not None:
        from auth.services import user_for_token

        user = user_for_token(token)
        if user is None:
            raise _refuse("unauthorized", "That access token is not valid (unknown, revoked or its account is "
                                          "deactivated).")
        if mfa.must_enrol(user):  # refused by the REST API too (collab/api.py)
            raise _refuse("mfa_required", _MFA_MESSAGE)
        tok = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
        return Conn(sid=request.sid, user_id=user.id, name=user.name, via="token", token_id=tok.id)
    if not current_user.is_authenticated:
        raise _refuse("unauthorized", "Sign in first, or connect with a personal access token: "
                                      'auth={"token": "<token>"} or an Authorization: Bearer header.')
    origin = request.headers.get("Origin")
    allowed = current_app.config["PUBLIC_URL"].rstrip("/")
    if origin != allowed:
        raise _refuse("bad_origin", f"Connections signed in with a browser session must come from {allowed}.")
    user = current_user._get_current_object()
    if mfa.must_enrol(user):
        raise _refuse("mfa_required", _MFA_MESSAGE)
    from auth import sessions as user_sessions

    skey = user_sessions.connection_key(user)  # this browser's server-side session (auth/sessions.py)
    if skey is None:
        raise _refuse("unauthorized", "This session has ended, or two-step sign-in must be set up first.")
    return Conn(sid=request.sid, user_id=user.id, name=user.name, via="cookie", stoken=skey)


@socketio.on("connect")
def _connect(auth=None):
    try:
        conn = _authenticate(auth)
    except ConnectionRefusedError:
        raise
    except Exception:
        log.exception("socket connect failed")
        raise _refuse("server_error", "The server could not check this connection. Try again.") from None
    finally:
        _end_read()
    app = current_app._get_current_object()
    start_background(app)
    st = state(app)
    with st.lock:
        st.conns[conn.sid] = conn
    socketio.server.enter_room(conn.sid, user_key(conn.user_id), namespace=NS)
    st.store_safely("online_put", conn.sid, conn.user_id, conn.details())


@socketio.on("disconnect")
def _disconnect(reason=None):
    st = state()
    with st.lock:
        conn = st.conns.pop(request.sid, None)
    if conn is None:
        return
    st.store_safely("online_drop", conn.sid, conn.user_id)
    for room_id in conn.rooms:
        st.store_safely("presence_drop", room_id, conn.sid)
        schedule_presence(room_id)


# -- event handlers ---------------------------------------------------------------------------------

def _end_read() -> None:
    """Finish the read transaction a handler opened (and forget cached rows), so the
    next event sees the database as it is now."""
    try:
        if db.session().in_transaction():
            db.session.commit()
    except Exception:  # noqa: BLE001 - a failed commit of a read is rolled back, nothing is lost
        db.session.rollback()


def _fail(event: str, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if field:
        err["field"] = field
    socketio.emit("error", dict(err, event=event), to=request.sid, namespace=NS)
    return {"ok": False, "error": err}


def _fresh_user(conn: Conn) -> User | None:
    """The account behind a connection, re-read: None if it was deactivated, signed
    out everywhere (cookie) or its token revoked."""
    user = db.session.get(User, conn.user_id, populate_existing=True)
    if user is None or not user.active:
        return None
    if conn.via == "cookie":
        from auth import sessions as user_sessions

        if not user_sessions.is_live_key(user, conn.stoken):
            return None
    if conn.via == "token":
        tok = db.session.get(ApiToken, conn.token_id, populate_existing=True)
        if tok is None or tok.revoked_at is not None or mfa.must_enrol(user):
            return None
    return user


def _limit(rule: str, event: str, sid: str) -> None:
    from limits import parse

    if not limiter.enabled:  # COLLAB/RATELIMIT_ENABLED off: Flask-Limiter has no storage, nothing to count
        return
    item = parse(rule)
    if not limiter.limiter.hit(item, "live", event, sid):
        reset = limiter.limiter.get_window_stats(item, "live", event, sid).reset_time
        wait = max(1, int(reset - time.time() + 0.999))
        raise RateLimited(f"Too many {event} messages on this connection. Wait {wait} s and try again.")


def _payload(data: Any, event: str, max_bytes: int) -> dict[str, Any]:
    if data is None:
        data = {}
    if data is TOO_DEEP:  # see collab/socket_packets.py
        raise Invalid(f"The {event} message is nested too deeply to read; send a flat JSON object.", "payload")
    if not isinstance(data, dict):
        raise Invalid(f"The {event} message must be a JSON object.", "payload")
    try:
        size = len(json.dumps(data))
    except (TypeError, ValueError):
        raise Invalid(f"The {event} message is not valid JSON.", "payload") from None
    except RecursionError:  # readable on the wire, but deeper than this point of the stack can walk
        raise Invalid(f"The {event} message is nested too deeply to read; send a flat JSON object.",
                      "payload") from None
    if size > max_bytes:
        raise Invalid(f"The {event} message is too large ({size} bytes; at most {max_bytes}).", "payload")
    return data


def _int_field(data: dict, name: str, *, required: bool = True, minimum: int = 1) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > 2**62:
        raise Invalid(f"{name} must be a whole number of at least {minimum}.", name)
    return value


def handler(event: str, *, rate: str | Callable[[], str] | None = None, max_bytes: int = MAX_PAYLOAD):
    """Wrap a socket event: find the connection, re-check the account, rate-limit,
    validate the payload shape, run, and answer `{"ok": ...}`; every refusal is
    also sent as an `error` event. Nothing raised here reaches python-socketio."""
    def deco(fn: Callable[[Conn, User, dict], dict]):
        @functools.wraps(fn)
        def wrapped(*args):
            sid = request.sid
            conn = state().conns.get(sid)
            try:
                if conn is None:
                    raise Unauthorized("This connection is not signed in. Reconnect.")
                user = _fresh_user(conn)
                if user is None:
                    socketio.emit("session.ended", {"reason": "unauthorized",
                                                    "message": "Your session has ended. Sign in again."},
                                  to=sid, namespace=NS)
                    socketio.server.disconnect(sid, namespace=NS)
                    raise Unauthorized("Your session has ended. Sign in again.")
                if len(args) > 1:
                    raise Invalid(f"Send {event} with a single JSON object.", "payload")
                data = _payload(args[0] if args else None, event, max_bytes)
                if rate:
                    _limit(rate() if callable(rate) else rate, event, sid)
                result = fn(conn, user, data)
                return {"ok": True, **(result or {})}
            except ServiceError as err:
                db.session.rollback()
                return _fail(event, err.code, err.message, err.field)
            except Exception:
                log.exception("socket event %s failed", event)
                db.session.rollback()
                return _fail(event, "server_error", "Something went wrong on our side; nothing was saved. Try again.")
            finally:
                _end_read()

        socketio.on(event)(wrapped)
        return wrapped
    return deco


def _me(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name}


@handler("subscribe", rate=SUBSCRIBE_LIMIT)
def on_subscribe(conn: Conn, user: User, data: dict) -> dict:
    room = services.get_room(user, _int_field(data, "room_id"))
    socketio.server.enter_room(conn.sid, room_key(room.id), namespace=NS)
    conn.rooms.add(room.id)
    _put_presence(conn, room.id)
    # Read after joining: any event numbered above this reaches the client live.
    seq = db.session.scalar(select(Room.last_seq).where(Room.id == room.id))
    return {"room_id": room.id, "seq": seq, "me": _me(user), "can_post": policy.can_post(user, room),
            "can_moderate": policy.can_moderate(user, room), "presence": presence_snapshot(room.id)}


@handler("unsubscribe", rate=SUBSCRIBE_LIMIT)
def on_unsubscribe(conn: Conn, user: User, data: dict) -> dict:
    room_id = _int_field(data, "room_id")
    if room_id in conn.rooms:
        forget_room(conn, room_id)
    return {"room_id": room_id}


@handler("subscribe_thread", rate=SUBSCRIBE_LIMIT)
def on_subscribe_thread(conn: Conn, user: User, data: dict) -> dict:
    thread = services.get_thread(user, _int_field(data, "thread_id"))
    if thread.room_id not in conn.rooms:
        socketio.server.enter_room(conn.sid, room_key(thread.room_id), namespace=NS)
        conn.rooms.add(thread.room_id)
    socketio.server.enter_room(conn.sid, thread_key(thread.id), namespace=NS)
    conn.threads[thread.id] = thread.room_id
    _update_presence(conn, user)
    return {"thread_id": thread.id, "room_id": thread.room_id}


@handler("unsubscribe_thread", rate=SUBSCRIBE_LIMIT)
def on_unsubscribe_thread(conn: Conn, user: User, data: dict) -> dict:
    thread_id = _int_field(data, "thread_id")
    if conn.threads.pop(thread_id, None) is not None:
        socketio.server.leave_room(conn.sid, thread_key(thread_id), namespace=NS)
        _update_presence(conn, user)
    return {"thread_id": thread_id}


def _redact(items: list[dict]) -> list[dict]:
    """Replay removed posts as the tombstones they are now, never their old text."""
    ids = {it["data"]["post"]["id"] for it in items if isinstance(it["data"].get("post"), dict)}
    if not ids:
        return items
    gone = {p.id: p for p in db.session.scalars(select(Post).where(
        Post.id.in_(ids), Post.deleted_at.is_not(None) | Post.hidden_at.is_not(None)))}  # hidden: no text either
    for it in items:
        post = it["data"].get("post")
        if isinstance(post, dict) and post.get("id") in gone:
            it["data"]["post"] = post_dict(gone[post["id"]])
    return items


@handler("sync", rate=SYNC_LIMIT)
def on_sync(conn: Conn, user: User, data: dict) -> dict:
    room_id = _int_field(data, "room_id")
    after = _int_field(data, "after_seq", minimum=0)
    items = services.events_after(user, room_id, after, limit=SYNC_BATCH + 1)
    more = len(items) > SYNC_BATCH
    items = _redact(items[:SYNC_BATCH])
    from rooms import pseudonyms

    items = pseudonyms.redact_events(db.session.get(Room, room_id), items)
    last = items[-1]["data"]["seq"] if items else after
    return {"room_id": room_id, "after_seq": after, "events": items, "seq": last, "more": more}


def _post_rate() -> str:
    return current_app.config.get("LIVE_POST_LIMIT") or "20 per 10 seconds"


@handler("post", rate=_post_rate, max_bytes=MAX_POST_PAYLOAD)
def on_post(conn: Conn, user: User, data: dict) -> dict:
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        raise Invalid("client_id is required: a unique id the client makes for each post, so that sending "
                      "it again never makes a second post.", "client_id")
    post, created = services.create_post(user, _int_field(data, "thread_id"), body=data.get("body"),
                                         parent_id=_int_field(data, "parent_id", required=False),
                                         client_id=client_id)
    return {"post": post_dict(post), "created": created}


@handler("typing", rate=TYPING_LIMIT)
def on_typing(conn: Conn, user: User, data: dict) -> dict:
    thread = services.get_thread(user, _int_field(data, "thread_id"))
    if not policy.can_post(user, thread.room):
        raise Forbidden("You can read this thread but not write in it.")
    from rooms import pseudonyms

    who = pseudonyms.person(thread.id, user.id) if thread.room.non_attributed else _me(user)
    socketio.emit("typing", {"thread_id": thread.id, "room_id": thread.room_id, "user": who},
                  to=thread_key(thread.id), skip_sid=conn.sid, namespace=NS)
    if conn.idle:
        conn.idle = False
        _update_presence(conn, user)
    return {"thread_id": thread.id}


@handler("activity", rate=ACTIVITY_LIMIT)
def on_activity(conn: Conn, user: User, data: dict) -> dict:
    idle = data.get("idle")
    if not isinstance(idle, bool):
        raise Invalid("idle must be true or false.", "idle")
    if idle != conn.idle:
        conn.idle = idle
        _update_presence(conn, user)
    return {"idle": idle}


@socketio.on("*")
def _unknown(event, *args):
    return _fail(str(event)[:40], "unknown_event",
                 f"Unknown event {str(event)[:40]!r}. See docs/realtime.md for the events this server accepts.")


EVENTS = ("subscribe", "unsubscribe", "subscribe_thread", "unsubscribe_thread", "sync", "post", "typing", "activity")
