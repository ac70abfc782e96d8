"""Background work of a server process, in one place.

`spawn(app, fn, *args)` runs one piece of work after a commit without holding up the request
(a presence flush, an e-mail, asking a media worker to drop someone), in an app context of its
own; `settle(app)` waits until all of it has finished (tests and CLI commands).

Loops run for the life of a process. The package whose work it is registers one with `loop(...)`
at import (this module imports none of them); the factory calls `start(app)` once all are
imported, and each registered loop whose `when(app)` holds starts, once per process:

- "presence heartbeat" (rooms/live/presence.py): re-writes this process's presence entries in
  Redis; with COLLAB_REDIS_URL, in the server or in any process holding live connections
  (the first connection starts it there);
- "notification digests" (rooms/notification_views.py): daily digests, every 15 minutes;
- "meeting jobs" (rooms/meetings/jobs.py): reminders and half-converted decks, every minute.

The last two run in the server (`flask serve`, gevent) unless LIVE_DIGEST_LOOP or
MEETING_JOBS_LOOP says otherwise; cron can run the same work with a CLI command. Each turn has
its own app context and database session; a turn that fails is logged and the loop goes on (a run of
failures is logged once, with reminders, not at every turn).
`stop(app)` ends this process's loops at their next turn (tests).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from collab import logs, outage
from collab.extensions import db, socketio

log = logging.getLogger(__name__)


class TaskState:
    """One app's background work in this process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tasks: list[Any] = []
        self.loops: dict[str, int] = {}      # loop name -> the process id it runs in


def _state(app: Flask | None = None) -> TaskState:
    app = app or current_app._get_current_object()
    st = app.extensions.get("collab_tasks")
    if st is None:
        st = app.extensions["collab_tasks"] = TaskState()
    return st


def spawn(app: Flask, fn: Callable, *args: Any) -> Any:
    """Run `fn(*args)` in the background with an app context (a greenlet under
    gevent, a thread otherwise); `settle()` waits for these."""
    st = _state(app)
    rid = logs.request_id()  # the request that asked, named in the task's log lines and worker calls

    def run():
        with app.app_context(), logs.bound(rid):
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
    st = _state(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with st.lock:
            running = [t for t in st.tasks if _alive(t)]
        if not running:
            return
        for t in running:
            t.join(max(0.0, deadline - time.monotonic()))


# -- loops --------------------------------------------------------------------------------------------

Seconds = float | Callable[[Flask], float]


@dataclass(frozen=True)
class Loop:
    name: str
    turn: Callable[[Flask], None]
    every: Seconds
    first: Seconds
    when: Callable[[Flask], bool]


_loops: dict[str, Loop] = {}


def server_process(app: Flask) -> bool:
    """Is this a web process of the server (`flask serve`: gunicorn, gevent), not a CLI command or a test?"""
    return app.config.get("ASYNC_MODE") == "gevent"


def loop(name: str, *, every: Seconds, first: Seconds = 0.0,
         when: Callable[[Flask], bool] = server_process) -> Callable[[Callable[[Flask], None]], Callable]:
    """Register `fn(app)` as one turn of a loop: `first` seconds after it starts, then every `every`
    seconds (either may be a function of the app, read each time)."""
    def deco(fn: Callable[[Flask], None]) -> Callable[[Flask], None]:
        _loops[name] = Loop(name, fn, every, first, when)
        return fn
    return deco


def _seconds(value: Seconds, app: Flask) -> float:
    return float(value(app) if callable(value) else value)


def start(app: Flask) -> list[str]:
    """Start every registered loop whose `when(app)` holds and that does not run in this process yet
    (a forked worker starts its own). Cheap to call again; returns the names started now."""
    st = _state(app)
    pid = os.getpid()
    now = []
    with st.lock:
        for lp in list(_loops.values()):
            if st.loops.get(lp.name) != pid and lp.when(app):
                st.loops[lp.name] = pid
                now.append(lp)
    for lp in now:
        socketio.start_background_task(_drive, app, lp, pid)
    return [lp.name for lp in now]


def stop(app: Flask) -> None:
    """This process's loops of `app` end at their next turn."""
    st = _state(app)
    with st.lock:
        st.loops.clear()


REMIND_EVERY = 600.0  # seconds between the reminders that a loop is still failing


def _drive(app: Flask, lp: Loop, pid: int) -> None:
    """Run `lp` until stopped. While its turns keep failing (the database is down for an hour, say) the log
    gets the first failure with its traceback (one line when the database is down), a one-line reminder every REMIND_EVERY seconds, and a line
    when it works again: not a traceback per turn, which would bury everything else an operator needs."""
    st = _state(app)
    failed, reminded = 0, 0.0
    socketio.sleep(_seconds(lp.first, app))
    while st.loops.get(lp.name) == pid:
        with app.app_context():
            try:
                lp.turn(app)
            except Exception as err:
                failed += 1
                if failed == 1:
                    reminded = time.monotonic()
                    if outage.is_database_down(err):  # one line: the requests' 503s say the rest
                        log.error("background loop %r cannot reach the database (%s); it runs again at its next "
                                  "turn", lp.name, outage.cause_of(err))
                    else:
                        log.exception("background loop %r failed; it runs again at its next turn", lp.name)
                elif time.monotonic() - reminded >= REMIND_EVERY:
                    reminded = time.monotonic()
                    log.error("background loop %r is still failing (%d turns in a row): %s: %s", lp.name, failed,
                              type(err).__name__, err)
                db.session.rollback()
            else:
                if failed:
                    log.warning("background loop %r works again after %d failed turns", lp.name, failed)
                    failed = 0
            finally:
                db.session.remove()
        socketio.sleep(_seconds(lp.every, app))
