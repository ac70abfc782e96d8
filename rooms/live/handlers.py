"""Socket.IO event handlers of the live rooms (default namespace), and the `handler` decorator
every live event uses (rooms/meetings/realtime.py too).

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
  ``member.removed``, ``room.updated``) to ``room-<id>``, after the commit
  (rooms/live/fanout.py); ``presence``, ``typing``, ``notification.created``,
  ``notification.read``, ``access.revoked``, ``session.ended``, ``error``, and ``live.resync``
  {room_ids} after the server's message queue (Redis) was down: ``sync`` those rooms.
- connect is refused with ``{"code": "unavailable"}`` while the message queue is down: try again later.

Every handler re-reads the account (deactivated, signed out everywhere or
token revoked = the connection ends) and asks `rooms.policy`, through the
room services, whether the account may do what it asks.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_login import current_user
from limits import parse
from socketio.exceptions import ConnectionRefusedError
from sqlalchemy import select

from auth import mfa
from auth import sessions as user_sessions
from auth.models import ApiToken, User
from auth.services import user_for_token
from collab import limits, live_queue, metrics, outage, tasks
from collab.errors import Forbidden, Invalid, RateLimited, ServiceError, Unauthorized
from collab.extensions import db, limiter, socketio
from collab.socket_packets import TOO_DEEP
from collab.tokens import digest
from rooms import policy, pseudonyms, services
from rooms import posts as room_posts
from rooms.live.connections import NS, Conn, room_key, state, thread_key, user_key
from rooms.live.presence import (
    forget_room,
    presence_snapshot,
    put_presence,
    schedule_presence,
    update_presence,
)
from rooms.models import Post, Room
from rooms.serialize import post_dict

log = logging.getLogger(__name__)

IDLE_AFTER_SECONDS = 300          # the browser reports idle after 5 minutes without input
SYNC_BATCH = 500                  # events per `sync` answer; `more` says ask again
TYPING_LIMIT = "10 per 10 seconds"
ACTIVITY_LIMIT = "30 per minute"
SUBSCRIBE_LIMIT = "60 per minute"
SYNC_LIMIT = "120 per minute"
MAX_PAYLOAD = 4_000               # bytes of JSON for every event but `post`
MAX_POST_PAYLOAD = 400_000        # a 50,000-character post, escaped


# -- connecting ------------------------------------------------------------------------------------

_MFA_MESSAGE = ("Two-step sign-in is required for this account and is not set up yet: sign in to Collab in a "
                "browser to set it up, then connect again.")


class Refused(ConnectionRefusedError):
    """A refused connection whose `connect_error` data is {"code", "message"} (docs/realtime.md), plus
    `data.code` for the JavaScript client, which passes only `message` and `data` on. (Python's built-in
    ConnectionRefusedError, used here before, reached clients as a bare "Connection refused by server".)"""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error_args = {"code": code, "message": message, "data": {"code": code}}


def _refuse(code: str, message: str) -> Refused:
    return Refused(code, message)


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
    skey = user_sessions.connection_key(user)  # this browser's server-side session (auth/sessions.py)
    if skey is None:
        raise _refuse("unauthorized", "This session has ended, or two-step sign-in must be set up first.")
    return Conn(sid=request.sid, user_id=user.id, name=user.name, via="cookie", stoken=skey)


_QUEUE_DOWN_MESSAGE = ("Live updates are unavailable right now (the server's message queue does not answer). "
                       "Pages still work; connect again in a few seconds.")


@socketio.on("connect")
def _connect(auth=None):
    if live_queue.is_down(current_app._get_current_object()):
        # refused at once, before anything is recorded: a connection now would miss other processes' events
        raise _refuse("unavailable", _QUEUE_DOWN_MESSAGE)
    try:
        conn = _authenticate(auth)
    except ConnectionRefusedError:
        raise
    except Exception as exc:
        if outage.is_database_down(exc):   # logged once per cause per minute, not once per connection
            outage.throttled(outage.cause_of(exc), "socket connect refused, database unavailable: %s",
                             outage.cause_of(exc))
            raise _refuse("unavailable", "Live updates are unavailable right now: the server's database is not "
                                         "answering. Connect again in a minute.") from None
        log.exception("socket connect failed")
        raise _refuse("server_error", "The server could not check this connection. Try again.") from None
    finally:
        _end_read()
    app = current_app._get_current_object()
    st = state(app)
    with st.lock:
        st.conns[conn.sid] = conn
    metrics.SOCKET_CONNECTIONS.inc()
    metrics.SOCKET_CONNECTS.inc()
    tasks.start(app)  # a process holding connections beats (with Redis; the server already does)
    socketio.server.enter_room(conn.sid, user_key(conn.user_id), namespace=NS)
    st.store_safely("online_put", conn.sid, conn.user_id, conn.details())


@socketio.on("disconnect")
def _disconnect(reason=None):
    st = state()
    with st.lock:
        conn = st.conns.pop(request.sid, None)
    if conn is None:
        return
    metrics.SOCKET_CONNECTIONS.dec()
    st.store_safely("online_drop", conn.sid, conn.user_id)
    for room_id in conn.rooms:
        st.store_safely("presence_drop", room_id, conn.sid)
        schedule_presence(room_id)


# -- event handlers ---------------------------------------------------------------------------------

def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the session is discarded at the end of the event
        db.session.remove()


def _end_read() -> None:
    """Finish the read transaction a handler opened (and forget cached rows), so the
    next event sees the database as it is now."""
    try:
        if db.session().in_transaction():
            db.session.commit()
    except Exception:  # noqa: BLE001 - a failed commit of a read is rolled back, nothing is lost
        _rollback()


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
        if not user_sessions.is_live_key(user, conn.stoken):
            return None
    if conn.via == "token":
        tok = db.session.get(ApiToken, conn.token_id, populate_existing=True)
        if tok is None or tok.revoked_at is not None or mfa.must_enrol(user):
            return None
    return user


def _limit(rule: str, event: str, sid: str) -> None:
    if not limiter.enabled:  # COLLAB/RATELIMIT_ENABLED off: Flask-Limiter has no storage, nothing to count
        return
    allowed, reset = limits.hit(parse(rule), "live", event, sid)   # in memory while Redis is down
    if not allowed:
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
            except Exception as exc:
                _rollback()
                if outage.is_database_down(exc):   # logged once per cause per minute, not once per event
                    outage.throttled(outage.cause_of(exc), "socket event %s: database unavailable: %s", event,
                                     outage.cause_of(exc))
                    return _fail(event, "unavailable", outage.MESSAGE)
                log.exception("socket event %s failed", event)
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
    put_presence(conn, room.id)
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
    update_presence(conn, user)
    return {"thread_id": thread.id, "room_id": thread.room_id}


@handler("unsubscribe_thread", rate=SUBSCRIBE_LIMIT)
def on_unsubscribe_thread(conn: Conn, user: User, data: dict) -> dict:
    thread_id = _int_field(data, "thread_id")
    if conn.threads.pop(thread_id, None) is not None:
        socketio.server.leave_room(conn.sid, thread_key(thread_id), namespace=NS)
        update_presence(conn, user)
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
    metrics.EVENTS_REPLAYED.inc(len(items))
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
    post, created = room_posts.create_post(user, _int_field(data, "thread_id"), body=data.get("body"),
                                           parent_id=_int_field(data, "parent_id", required=False),
                                           client_id=client_id)
    return {"post": post_dict(post), "created": created}


@handler("typing", rate=TYPING_LIMIT)
def on_typing(conn: Conn, user: User, data: dict) -> dict:
    thread = services.get_thread(user, _int_field(data, "thread_id"))
    if not policy.can_post(user, thread.room):
        raise Forbidden("You can read this thread but not write in it.")
    who = pseudonyms.person(thread.id, user.id) if thread.room.non_attributed else _me(user)
    socketio.emit("typing", {"thread_id": thread.id, "room_id": thread.room_id, "user": who},
                  to=thread_key(thread.id), skip_sid=conn.sid, namespace=NS)
    if conn.idle:
        conn.idle = False
        update_presence(conn, user)
    return {"thread_id": thread.id}


@handler("activity", rate=ACTIVITY_LIMIT)
def on_activity(conn: Conn, user: User, data: dict) -> dict:
    idle = data.get("idle")
    if not isinstance(idle, bool):
        raise Invalid("idle must be true or false.", "idle")
    if idle != conn.idle:
        conn.idle = idle
        update_presence(conn, user)
    return {"idle": idle}


@socketio.on("*")
def _unknown(event, *args):
    return _fail(str(event)[:40], "unknown_event",
                 f"Unknown event {str(event)[:40]!r}. See docs/realtime.md for the events this server accepts.")


EVENTS = ("subscribe", "unsubscribe", "subscribe_thread", "unsubscribe_thread", "sync", "post", "typing", "activity")
