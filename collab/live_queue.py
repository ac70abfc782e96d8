"""Notes from one server process to every server process, in order with the Socket.IO emits.

Each web process holds its own Socket.IO connections and is the only one that knows them
(rooms/live/connections.py keeps them in `LiveState.conns`). When something must happen to an account's
connections wherever they are — a revocation (rooms/revocation.py) — the process that decided it
sends a *note*; every process, itself included, acts on its own connections.

With Redis (COLLAB_REDIS_URL), a note travels on the Socket.IO message queue itself, as an emit
to a reserved room no client is ever in (`NOTE`), which `NoteQueue` hands to the note listeners
instead of to clients. Riding the same channel keeps a note in order with the events around
it: a post made after a removal cannot overtake the removal on any process. Nothing about a
note is stored in Redis, so a Redis that lost every key (restarted) still routes notes as soon
as its pub/sub is back. Without Redis there is one process and a note is handled at once.

The sending process always handles its note itself first and synchronously, so its own
connections are cut even while Redis is down.

Redis down and back (issue 17). python-socketio's own listener retries with a back-off that grows to a
minute (a 45-s outage meant 18 s more without cross-process delivery) and can die silently
(miguelgrinberg/python-socketio#1581). `NoteQueue` listens instead in short turns (`get_message` with a
1-s timeout and a PING every 2 s, so a connection that went quiet is noticed), retries every second at
most, and a watchdog restarts the listener if it stops taking turns: every process re-subscribes within
a few seconds of Redis answering again. While the queue is down, `is_down()` is true: new live
connections are refused at once with a clear `connect_error` (rooms/live/handlers.py), emits are not
published (they are in the database; no thousand "cannot publish" lines), and existing connections keep
working for everything this process can do alone (`sync` answers from the database). When it is back, the
`on_queue_back` listeners run: presence is written again and every connection of this process is told to
`sync` what it missed (rooms/live/presence.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import socketio as sio_lib
from flask import Flask

from collab.extensions import socketio

log = logging.getLogger(__name__)

NOTE = "collab.note"          # event name and room name of a note; never delivered to a client

NoteListener = Callable[[Flask, dict[str, Any]], None]
_listeners: list[NoteListener] = []
BackListener = Callable[[Flask], None]
_back_listeners: list[BackListener] = []

TURN = 1.0            # seconds the listener waits for a message before taking another turn
PING_EVERY = 2.0      # seconds between PINGs on the subscription (a dead connection is noticed)
SILENT_LIMIT = 6.0    # no PONG for this long: the subscription is dead, reconnect
RETRY_MAX = 1.0       # seconds between attempts to reach Redis again, at most
STALL_LIMIT = 15.0    # the listener took no turn for this long (a handler stuck; a dead one is seen at once): restart it


def on_note(fn: NoteListener) -> NoteListener:
    """Register `fn(app, note)`, called in every process for every note (no app context, no request)."""
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def on_queue_back(fn: BackListener) -> BackListener:
    """Register `fn(app)`, called in a process when its message queue answers again after an outage."""
    if fn not in _back_listeners:
        _back_listeners.append(fn)
    return fn


def _hand_out(app: Flask, note: dict[str, Any]) -> None:
    for fn in list(_listeners):
        try:
            fn(app, note)
        except Exception:  # one listener's failure must not keep the note from the others
            log.exception("note listener %s failed for %s", getattr(fn, "__name__", fn), note.get("op"))


class NoteQueue(sio_lib.RedisManager):
    """The Redis message queue of python-socketio, plus notes and outage handling (see the module docstring)."""

    def __init__(self, app: Flask, url: str, channel: str) -> None:
        super().__init__(url, channel=channel,
                         redis_options={"socket_connect_timeout": 1.0, "socket_timeout": 2.0})
        self.app = app
        self.up = True                 # until the listener finds otherwise
        self.down_since: float | None = None
        self.turn_at = time.monotonic()  # when the listener last took a turn
        self.generation = 0            # a listener of an older generation stops at its next turn
        self.unpublished = 0           # emits not published while down (their events are in the database)
        self.closed = False

    def _handle_emit(self, message: dict[str, Any]) -> None:
        # Called for emits of this process (before publishing) and for those heard from others.
        if message.get("event") == NOTE and message.get("room") == NOTE:
            data = message.get("data")
            note = data[0] if isinstance(data, list) and data else data
            if isinstance(note, dict):
                _hand_out(self.app, note)
            return
        super()._handle_emit(message)

    # -- outage handling ------------------------------------------------------------------------

    def initialize(self) -> None:
        self.turn_at = time.monotonic()
        super().initialize()
        if not self.write_only:
            self.server.start_background_task(self._watchdog)

    def _publish(self, data: Any) -> None:
        if not self.up:   # delivered here already; the others sync from the database when it is back
            self.unpublished += 1
            return None
        return super()._publish(data)

    def _set_up(self, up: bool, reason: object = None) -> None:
        if up == self.up:
            return
        self.up = up
        if not up:
            self.down_since = time.monotonic()
            log.warning("message queue (Redis) unavailable (%s): new live connections are refused and this "
                        "process's events reach only its own connections until it is back", reason)
            return
        down_for = time.monotonic() - (self.down_since or time.monotonic())
        log.warning("message queue (Redis) answers again after %.1f s: re-subscribed; %d events were not "
                    "published meanwhile, connections are told to sync", down_for, self.unpublished)
        self.unpublished = 0
        self.down_since = None
        self.server.start_background_task(self._back)

    def _back(self) -> None:
        for fn in list(_back_listeners):
            try:
                fn(self.app)
            except Exception:  # one listener's failure must not keep the others from running
                log.exception("queue-back listener %s failed", getattr(fn, "__name__", fn))

    def _listen(self):
        """Only this listener's own subscription's messages (python-socketio's version unsubscribes through
        `self.pubsub`, which a newer listener may own by then)."""
        channel = self.channel.encode("utf-8")
        for message in self._redis_listen_with_retries():
            if message.get("channel") == channel and message.get("type") == "message" and "data" in message:
                yield message["data"]

    def _redis_listen_with_retries(self):
        """Messages from Redis, for python-socketio's listener loop: in short turns, reconnecting quickly,
        until a newer listener replaces this one (the watchdog bumps `generation`)."""
        generation = self.generation
        retry = 0.2
        pubsub = None
        last_ping = last_pong = time.monotonic()
        try:
            while generation == self.generation:
                try:
                    if pubsub is None:
                        self._redis_connect()
                        pubsub = self.pubsub
                        pubsub.subscribe(self.channel)
                        self._set_up(True)
                        retry = 0.2
                        last_ping = last_pong = time.monotonic()
                    self.turn_at = time.monotonic()
                    message = pubsub.get_message(timeout=TURN)
                    now = time.monotonic()
                    if message is not None and message.get("type") == "pong":
                        last_pong = now
                    elif message is not None and generation == self.generation:
                        yield message
                    if now - last_pong > SILENT_LIMIT:
                        raise ConnectionError(f"no answer to PING for {now - last_pong:.0f} s")
                    if now - last_ping > PING_EVERY:
                        pubsub.ping()
                        last_ping = now
                except Exception as exc:  # noqa: BLE001 - any Redis error: down until a reconnect works
                    self._set_up(False, exc)
                    _close(pubsub)
                    pubsub = None
                    self.turn_at = time.monotonic()
                    self.server.sleep(retry)
                    retry = min(retry * 2, RETRY_MAX)
        finally:
            _close(pubsub)

    def _listener_alive(self) -> bool:
        thread = getattr(self, "thread", None)
        if thread is None:
            return False
        if hasattr(thread, "dead"):            # a greenlet (gevent)
            return not thread.dead
        return thread.is_alive()               # a thread

    def close(self) -> None:
        """Stop listening (the listener ends at its next turn, the watchdog at its next look)."""
        self.closed = True
        self.generation += 1

    def _watchdog(self) -> None:
        """Start another listener if this one died or stopped taking turns (python-socketio#1581)."""
        while not self.closed:
            self.server.sleep(1.0)
            if self.closed:
                return
            try:
                stalled = time.monotonic() - self.turn_at > STALL_LIMIT
                if self._listener_alive() and not stalled:
                    continue
                log.error("message queue listener %s: starting another", "stalled" if stalled else "died")
                self._set_up(False, "listener " + ("stalled" if stalled else "died"))
                self.generation += 1
                self.turn_at = time.monotonic()
                self.thread = self.server.start_background_task(self._thread)
            except Exception:  # noqa: BLE001 - the watchdog itself must never stop
                log.exception("message queue watchdog failed; it runs again in a second")


def _close(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # noqa: BLE001 - it is broken already
            pass


def is_down(app: Flask) -> bool:
    """True while this process's message queue (Redis) does not answer."""
    manager = getattr(socketio.server, "manager", None)
    return isinstance(manager, NoteQueue) and manager.app is app and not manager.up


def client_manager(app: Flask, url: str | None, channel: str) -> sio_lib.Manager:
    """The Socket.IO client manager for this app: a NoteQueue with Redis, else a local one."""
    return NoteQueue(app, url, channel) if url else sio_lib.Manager()


def send(app: Flask, note: dict[str, Any]) -> None:
    """Deliver `note` to every server process: this one now, the others through the queue."""
    server = socketio.server
    manager = getattr(server, "manager", None)
    if isinstance(manager, NoteQueue) and manager.app is app:
        manager.emit(NOTE, note, namespace="/", room=NOTE)
    else:
        _hand_out(app, note)
