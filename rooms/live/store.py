"""Who is online and where: kept in process memory, or in Redis when COLLAB_REDIS_URL is set.

The store is only for showing and counting (presence, and whether an account is online at all,
for e-mail): every process re-writes its own entries periodically (the heartbeat in
rooms/live/presence.py), so a Redis that restarted empty, or started after the web processes,
heals by itself. Nothing here is needed to cut anyone off (rooms/revocation.py uses each
process's own connections, rooms/live/connections.py).
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any


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

    def rewrite(self, conns: list[Any]) -> None:  # conns: rooms.live.connections.Conn
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

    def rewrite(self, conns: list[Any]) -> None:
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

