"""This process's live connections: the channel names, the record of each connection, and the
per-process registry (`LiveState.conns`) that rooms/revocation.py acts on.

Each process keeps its own connections in memory (account, rooms, threads, meetings); it is the
only one that knows them, so losing access reaches every process through the Socket.IO message
queue (collab/live_queue.py) and each acts on its own. `LiveState` also holds the handle of the
presence store (rooms/live/store.py): showing who is online is best effort, so a store that does
not answer is logged once per outage and its missed drops are tried again by the heartbeat
(rooms/live/presence.py).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from rooms.live.store import MemoryStore, RedisStore

log = logging.getLogger(__name__)

NS = "/"


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


_STORE_DEFAULTS: dict[str, Any] = {"user_sids": {}, "is_online": False, "presence_entries": [], "presence_get": None,
                                   "presence_drop": None}


class LiveState:
    """One server process's live state: its own connections (`conns`, the registry revocation uses)
    and the presence store. (Its background tasks are collab/tasks.py's.)"""

    def __init__(self, app: Flask) -> None:
        self.app = app
        url = app.config.get("REDIS_URL")
        self.store: MemoryStore | RedisStore | None = None
        self.redis_url = url
        self.conns: dict[str, Conn] = {}
        self.lock = threading.RLock()
        self.flush_pending: set[int] = set()
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
    """This process's live state for `app` (the current app when None), made on first use."""
    app = app or current_app._get_current_object()
    st = app.extensions.get("collab_live")
    if st is None:
        st = app.extensions["collab_live"] = LiveState(app)
    return st

