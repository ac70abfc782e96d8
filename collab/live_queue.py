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
as its pub/sub is back; python-socketio's listener reconnects by itself. Without Redis there is
one process and a note is handled at once.

The sending process always handles its note itself first and synchronously, so its own
connections are cut even while Redis is down.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import socketio as sio_lib
from flask import Flask

from collab.extensions import socketio

log = logging.getLogger(__name__)

NOTE = "collab.note"          # event name and room name of a note; never delivered to a client

NoteListener = Callable[[Flask, dict[str, Any]], None]
_listeners: list[NoteListener] = []


def on_note(fn: NoteListener) -> NoteListener:
    """Register `fn(app, note)`, called in every process for every note (no app context, no request)."""
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def _hand_out(app: Flask, note: dict[str, Any]) -> None:
    for fn in list(_listeners):
        try:
            fn(app, note)
        except Exception:  # one listener's failure must not keep the note from the others
            log.exception("note listener %s failed for %s", getattr(fn, "__name__", fn), note.get("op"))


class NoteQueue(sio_lib.RedisManager):
    """The Redis message queue of python-socketio, plus notes (see the module docstring)."""

    def __init__(self, app: Flask, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self.app = app

    def _handle_emit(self, message: dict[str, Any]) -> None:
        # Called for emits of this process (before publishing) and for those heard from others.
        if message.get("event") == NOTE and message.get("room") == NOTE:
            data = message.get("data")
            note = data[0] if isinstance(data, list) and data else data
            if isinstance(note, dict):
                _hand_out(self.app, note)
            return
        super()._handle_emit(message)


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
