"""Live tallies of polls, after commit, only to those who may see them (`policy.may_see_poll_results`),
and the `poll.vote` Socket.IO event (the same service as the page and the JSON API).

Who hears a `poll.tally`:
- results "always": the room's channel (every reader of the room);
- results "after_vote": each voter still reading the room, on their own account's channel (the list
  is made inside the vote's write, rooms/polls/services.py `_record_tally`); never the room's channel;
- results "after_close": no tally until the poll closes; then `poll.closed`, a room event, carries them.

Coalesced: a poll's tally goes out at once when none went out in the last TALLY_EVERY seconds, and
otherwise once when that time is up, carrying the latest counts (1,000 votes a second on a poll
followed by 500 people become a few tallies a second, not 500,000 messages). "Latest" is the tally of
the vote committed last: each carries its `poll.voted` room event's number (`seq`), which the writes
hand out in commit order, so a tally never replaces a newer one even when the after-commit listeners
of two votes run out of order. The last tally sent equals the stored tally.

The numbered room events `poll.created`, `poll.voted` (how many have voted, no names), `poll.updated`
and `poll.closed` go to the room's channel like every room event (rooms/live/fanout.py)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, has_app_context

from collab import events
from collab.extensions import socketio
from rooms.live.connections import NS, Conn, room_key, user_key
from collab.tasks import spawn
from rooms.live.handlers import _int_field, handler
from rooms.polls import services

TALLY_EVERY = 0.15        # seconds: at most one tally per poll this often
VOTE_LIMIT = "30 per 10 seconds"
MAX_VOTE_PAYLOAD = 16_000  # a ranking of 20 options and a 2,000-character reason, escaped


@dataclass
class _Poll:
    sent_at: float = 0.0            # when its last tally went out
    sent_order: int = -1            # the `seq` of that tally
    pending: tuple[int, dict[str, Any], dict[str, Any]] | None = None   # (seq, payload, meta) not yet sent
    timer: bool = False             # a flush is scheduled


@dataclass
class _Tallies:
    lock: threading.Lock = field(default_factory=threading.Lock)
    polls: dict[int, _Poll] = field(default_factory=dict)


def _state(app: Flask) -> _Tallies:
    st = app.extensions.get("collab_poll_tallies")
    if st is None:
        st = app.extensions["collab_poll_tallies"] = _Tallies()
    return st


def _emit(payload: dict[str, Any], meta: dict[str, Any]) -> None:
    if meta.get("to_room") is not None:
        socketio.emit("poll.tally", payload, to=room_key(meta["to_room"]), namespace=NS)
        return
    for uid in meta.get("to_users", ()):
        socketio.emit("poll.tally", payload, to=user_key(uid), namespace=NS)


def _flush_later(app: Flask, poll_id: int, delay: float) -> None:
    """In the background (collab/tasks.py spawn: an app context, waited for by `settle`)."""
    socketio.sleep(delay)
    st = _state(app)
    with st.lock:
        p = st.polls.get(poll_id)
        if p is None:
            return
        p.timer = False
        item, p.pending = p.pending, None
        if item is None or item[0] <= p.sent_order:
            return
        p.sent_at, p.sent_order = time.monotonic(), item[0]
    _emit(item[1], item[2])


@events.listen
def _on_tally(ev: events.Event) -> None:
    if ev.name != "poll.tally" or not socketio.server or not has_app_context():
        return
    app = current_app._get_current_object()
    st = _state(app)
    order = int(ev.meta.get("order", 0))
    now = time.monotonic()
    with st.lock:
        p = st.polls.setdefault(ev.payload["poll_id"], _Poll())
        if order <= p.sent_order or (p.pending is not None and order <= p.pending[0]):
            return   # a newer tally of this poll has gone out or is waiting
        if not p.timer and now - p.sent_at >= TALLY_EVERY:
            p.sent_at, p.sent_order = now, order
            send_now = True
        else:
            p.pending = (order, ev.payload, dict(ev.meta))
            send_now = False
            if not p.timer:
                p.timer = True
                spawn(app, _flush_later, app, ev.payload["poll_id"], max(0.0, p.sent_at + TALLY_EVERY - now))
    if send_now:
        _emit(ev.payload, ev.meta)


# -- voting over Socket.IO ---------------------------------------------------------------------------

@handler("poll.vote", rate=VOTE_LIMIT, max_bytes=MAX_VOTE_PAYLOAD)
def on_poll_vote(conn: Conn, user: Any, data: dict) -> dict:
    """Cast or change a vote: {poll_id, choices[, reason]}; the ack carries the poll as the voter now
    sees it (as `POST /api/v1/polls/<id>/votes` answers) and whether this was their first vote."""
    ballot, created, counts, poll = services.vote(user, _int_field(data, "poll_id"), choices=data.get("choices"),
                                                  reason=data.get("reason", ""))
    return {"poll": services.view(user, poll, counts=counts, mine=ballot), "created": created}


EVENTS = ("poll.vote",)
