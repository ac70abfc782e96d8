"""Presence: who is online in a room (idle or not, which threads), and whether an account is
online at all (mentions and digests are e-mailed only to people who are not).

Entries live in the store (rooms/live/store.py); each connection also remembers its own
(`Conn.entries`) so the heartbeat can write them all again: every LIVE_HEARTBEAT_SECONDS this
process re-writes its host key and the entries of its connections, so a Redis that restarted
empty, or started after the web processes, heals by itself. Changes are coalesced: at most one
`presence` message per room per LIVE_PRESENCE_DELAY seconds.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app

from auth.models import User
from collab import live_queue, tasks
from collab.extensions import db, socketio
from collab.tasks import spawn
from rooms import policy
from rooms.live.connections import NS, Conn, meeting_keys, room_key, state, thread_key
from rooms.live.store import RedisStore
from rooms.models import Room

log = logging.getLogger(__name__)

PRESENCE_LIST_MAX = 50            # people listed in one presence message (the count is exact)


def is_online(user_id: int, app: Flask | None = None) -> bool:
    return bool(state(app).store_safely("is_online", user_id))


# -- the heartbeat (a loop of collab/tasks.py) ---------------------------------------------------

def _heartbeat_every(app: Flask) -> float:
    return float(app.config.get("LIVE_HEARTBEAT_SECONDS", RedisStore.HOST_TTL / 3))


def _beats_here(app: Flask) -> bool:
    """With Redis: in the server, and in any other process once it holds a connection."""
    return bool(app.config.get("REDIS_URL")) and (tasks.server_process(app) or bool(state(app).conns))


@tasks.loop("presence heartbeat", every=_heartbeat_every, when=_beats_here)
def heartbeat(app: Flask) -> None:
    """Re-write this process's host key and the online and presence entries of all its connections,
    from its own registry: a Redis that restarted empty, or that was down while this process
    started, heals by itself. A Redis that does not answer is tried again at the next beat (and
    missed drops with it)."""
    st = state(app)
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
            log.warning("presence heartbeat failed (%s); trying again every %s s", exc, _heartbeat_every(app))
        st.store_failing = True


@live_queue.on_queue_back
def queue_back(app: Flask) -> None:
    """Redis answers again after an outage: write presence again now (not at the next beat), so the online
    counts are right at once, and tell each connection of this process to `sync` its rooms: events made
    on other processes meanwhile never reached it (they are in the database)."""
    heartbeat(app)
    st = state(app)
    with st.lock:
        conns = [(c.sid, sorted(c.rooms)) for c in st.conns.values()]
    rooms: set[int] = set()
    for sid, room_ids in conns:
        rooms.update(room_ids)
        socketio.server.emit("live.resync", {"room_ids": room_ids, "reason": "The server's message queue was "
                             "unavailable for a while: ask for what you missed with sync."},
                             to=sid, namespace=NS, ignore_queue=True)
    with app.app_context():
        for room_id in rooms:
            schedule_presence(room_id)


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


def put_presence(conn: Conn, room_id: int) -> None:
    """Write (and remember, for the heartbeat) this connection's presence in a room."""
    conn.entries[room_id] = _entry(conn, room_id)
    state().store_safely("presence_put", room_id, conn.sid, conn.entries[room_id])
    schedule_presence(room_id)


def update_presence(conn: Conn, user: User) -> None:
    """Re-write this connection's presence in each room it follows, dropping any
    room the account may no longer read."""
    for room_id in list(conn.rooms):
        room = db.session.get(Room, room_id)
        if room is None or not policy.can_read_room(user, room):
            forget_room(conn, room_id, meetings=True)
            continue
        put_presence(conn, room_id)


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

