"""Live counts, coalesced: the messages that only say "this count is now N" (`idea.voted`, `poll.voted`,
`poll.tally`) go out at most once per key every EVERY seconds, carrying the latest counts. The first
after a quiet spell goes at once (a single vote is seen at once); during a burst the latest waits until
its turn. 1,000 votes a second on a poll followed by 500 people become a few messages a second each,
not 500,000. A message is sent by the commit whose turn has come (not only by the timer), so a
burst is heard every EVERY seconds even when the worker is too busy to run timers on time.

These are not numbered room events (rooms/services.py record_event): they are states, not history, so
a client that missed some needs only the next one, or reads the idea or poll again (the pages and the
JSON API always carry the current count).

"Latest" is the count of the write committed last: each carries an `order` taken inside its write
transaction (`next_order`), while the write holds the lock that orders it against the other votes of
the same thing (SQLite's write lock; on PostgreSQL the idea's or poll's row lock), so a count never
replaces a newer one even when the after-commit listeners of two votes run in the other order. The last
message sent for a key carries the stored count. Several server processes each coalesce the votes they
committed; a watcher then hears each process's latest.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from collab.extensions import socketio
from collab.tasks import spawn

EVERY = 0.15   # seconds: at most one message per key this often

_orders = itertools.count(1)


def next_order() -> int:
    """Inside a vote's write transaction, once its count is written: the commit order of this process."""
    return next(_orders)


@dataclass
class _Key:
    sent_at: float = 0.0
    sent_order: int = -1
    pending: tuple[int, Callable[[], None]] | None = None
    timer: bool = False


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: dict[tuple, _Key] = field(default_factory=dict)


def _state(app: Flask) -> _State:
    st = app.extensions.get("collab_coalesced")
    if st is None:
        st = app.extensions["collab_coalesced"] = _State()
    return st


def _flush_later(app: Flask, key: tuple, delay: float) -> None:
    """In the background (collab/tasks.py spawn: an app context, and tests' `settle` waits for it)."""
    socketio.sleep(delay)
    st = _state(app)
    with st.lock:
        k = st.keys.get(key)
        if k is None:
            return
        k.timer = False
        item, k.pending = k.pending, None
        if item is None or item[0] <= k.sent_order:
            return
        k.sent_at, k.sent_order = time.monotonic(), item[0]
    item[1]()


def send(app: Flask, key: tuple, order: int, emit: Callable[[], None]) -> None:
    """Send `emit` (the message of count `order` for `key`) now, later with the latest, or never (a newer
    one has gone or waits)."""
    st = _state(app)
    now = time.monotonic()
    with st.lock:
        k = st.keys.setdefault(key, _Key())
        if order <= k.sent_order or (k.pending is not None and order <= k.pending[0]):
            return
        if now - k.sent_at >= EVERY:
            # its turn has come: sent now, even if a timer is set (under load a busy gevent worker runs the
            # timer late, each request taking its turn first); the timer then finds nothing newer to send
            k.sent_at, k.sent_order, k.pending = now, order, None
        else:
            k.pending = (order, emit)
            if not k.timer:
                k.timer = True
                spawn(app, _flush_later, app, key, max(0.0, k.sent_at + EVERY - now))
            return
    emit()
