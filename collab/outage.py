"""When the database does not answer: a clear 503 page or JSON instead of a 500, logged once per cause per
interval instead of once per request (issue 17). The same for a request that found every connection of its
pool in use for the pool's whole timeout (an overloaded process): 503 "busy", not a 500.

A request that meets a database that is down (PostgreSQL restarting, the network to it cut, SQLite locked
for longer than its busy timeout) is answered "503, try again shortly" with Retry-After. The page is drawn
without the database: `unavailable.html` stands alone (no base.html, whose header asks who is signed in and
counts unread notifications) and is rendered straight from the Jinja environment, so no context processor
runs; the request's account is set to anonymous first, so nothing after it (the after-request headers) asks
the database again. The engine's pool_pre_ping (collab/db.py) replaces dead connections, so the app recovers
by itself once the database is back; nothing was committed by the failed request (its transaction is
rolled back), so no post is half-written.

Logging: hundreds of requests a second all failing for the same reason must not write hundreds of lines a
second. `ThrottledLog` writes the first occurrence of each cause at once, then at most one line per
`interval` saying how many more there were.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask, g, jsonify, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from collab.extensions import db, login_manager

log = logging.getLogger(__name__)

RETRY_AFTER = 10   # seconds, told to clients in Retry-After
MESSAGE = ("The service is briefly unavailable: its database is not answering. Nothing was saved. "
           "Please try again in a minute.")
BUSY = ("The service is too busy to answer right now. Nothing was saved. Please try again in a moment.")


class ThrottledLog:
    """Log a cause at most once per `interval` seconds, with the count of repeats left unlogged."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self.lock = threading.Lock()
        self.seen: dict[str, tuple[float, int]] = {}   # cause -> (when last logged, repeats since)

    def __call__(self, cause: str, message: str, *args: object, level: int = logging.ERROR) -> bool:
        """Log `message % args` if `cause` was not logged in the last interval; True if it was logged."""
        now = time.monotonic()
        with self.lock:
            last, repeats = self.seen.get(cause, (-1e18, 0))
            if now - last < self.interval:
                self.seen[cause] = (last, repeats + 1)
                return False
            self.seen[cause] = (now, 0)
        suffix = f" ({repeats} more like it in the last {self.interval:.0f} s not logged)" if repeats else ""
        self.logger.log(level, message + suffix, *args)
        return True


throttled = ThrottledLog(log)


def is_database_down(err: BaseException) -> bool:
    """True for errors that say the database cannot be reached or dropped the connection, not for a bad query;
    and for a request that waited its pool's whole timeout for a connection (`is_overloaded`): every one was in
    use by others, so it is not answered either, but with 503 "busy" rather than a 500."""
    if isinstance(err, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(err, DBAPIError) and bool(err.connection_invalidated)


def cause_of(err: BaseException) -> str:
    """A short, stable name for why the database failed (the driver's first line, without numbers that vary)."""
    orig = getattr(err, "orig", None) or err
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {''.join('#' if c.isdigit() else c for c in first)[:160]}"


def is_overloaded(err: BaseException) -> bool:
    """The database answers, but this process's connections were all in use for the pool's whole timeout."""
    return isinstance(err, PoolTimeout)


def unavailable_response(app: Flask, message: str = MESSAGE):
    """The 503 answer, made without touching the database."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the session is discarded below anyway
        pass
    db.session.remove()
    g._login_user = login_manager.anonymous_user()   # nothing after this asks the database who is signed in
    wants_json = request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"
    if wants_json:
        resp = jsonify({"error": {"code": "unavailable", "message": message}})
    else:
        resp = app.response_class(app.jinja_env.get_template("unavailable.html").render(message=message),
                                  mimetype="text/html")
    resp.status_code = 503
    resp.headers["Retry-After"] = str(RETRY_AFTER)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def answer(app: Flask, err: Exception):
    """Log (throttled) and answer a request that met a database that is down."""
    if is_overloaded(err):
        throttled("pool timeout", "too busy on %s %s: every database connection of this process was in use for "
                  "the pool's whole timeout", request.method, request.path, level=logging.WARNING)
        return unavailable_response(app, BUSY)
    throttled(cause_of(err), "database unavailable on %s %s: %s", request.method, request.path, cause_of(err))
    return unavailable_response(app)
