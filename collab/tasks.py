"""Background work of a server process, in one place.

`spawn(app, fn, *args)` runs one piece of work after a commit without holding up the request
(a presence flush, an e-mail, asking a media worker to drop someone), in an app context of its
own; `settle(app)` waits until all of it has finished (tests and CLI commands).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from collab.extensions import db, socketio

log = logging.getLogger(__name__)


class TaskState:
    """One app's background work in this process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tasks: list[Any] = []


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
    st = _state(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with st.lock:
            running = [t for t in st.tasks if _alive(t)]
        if not running:
            return
        for t in running:
            t.join(max(0.0, deadline - time.monotonic()))
