"""Structured logs: one JSON line per request and per significant event (COLLAB_LOG_FORMAT=json).

Why a module of its own: an operator's log pipeline (journald, Loki, Elastic) needs lines it can
parse, and a request id that follows one action from the web process to the media worker (a header
on its control calls, media/control.py) and the search worker (the outbox is logged with the id of
the request that wrote it, the worker logs the posts it applied). What a line may hold is decided
here, once: the request line names the route's *rule* (`/invite/<token>`), never the path or the
query string, so invitation, reset and meeting tokens cannot reach a log; events carry ids and
counts, never post text, passwords or tokens (`event()` refuses fields named like secrets).
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request
from flask_login import current_user

EVENTS = logging.getLogger("collab.events")
REQUESTS = logging.getLogger("collab.requests")
HEADER = "X-Request-Id"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Field names an event may never carry (they would be secrets or people's words).
_FORBIDDEN = re.compile(r"(password|token|secret|body|text|key|code|sdp)", re.I)


_BOUND: contextvars.ContextVar[str | None] = contextvars.ContextVar("collab_request_id", default=None)


def request_id() -> str | None:
    """The id of the request being served, or of the request a background task was spawned by."""
    if has_request_context() and g.get("request_id"):
        return g.request_id
    return _BOUND.get()


@contextlib.contextmanager
def bound(rid: str | None):
    """Name `rid` as the request of what runs inside (a background task, collab/tasks.py spawn)."""
    token = _BOUND.set(rid)
    try:
        yield
    finally:
        _BOUND.reset(token)


def _incoming_id() -> str:
    """The caller's X-Request-Id when it is a plain short id (a proxy's), else a new one: a header
    is attacker-chosen text, so anything else (newlines, JSON, kilobytes) is replaced, not logged."""
    given = request.headers.get(HEADER, "")
    return given if _GOOD_ID.match(given) else uuid.uuid4().hex


_json = False  # COLLAB_LOG_FORMAT=json in this process (configure)


def event(name: str, *, routine: bool = False, **fields) -> None:
    """Log one significant event (login, lockout, upload, meeting start/end…) with ids and counts.
    `routine` events (an index change queued or applied) are written only as JSON lines, where they
    let a pipeline follow one request across processes; plain text logs stay short."""
    bad = [k for k in fields if _FORBIDDEN.search(k)]
    if bad:
        raise ValueError(f"log events carry no secrets or people's words: {bad}")
    if routine and not _json:
        return
    EVENTS.info(name, extra={"collab": {"event": name, **fields}})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "pid": record.process, "msg": record.getMessage()}
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            line["request_id"] = rid
        line.update(getattr(record, "collab", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(log_format: str) -> None:
    """Give the root handlers the JSON formatter when asked (called once per app, after basicConfig)."""
    global _json
    _json = log_format == "json"
    if not _json:
        return
    formatter = JsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def request_fields(status: int, duration: float) -> dict:
    """What the request line says: no path, no query string, no form (tokens live there)."""
    api = g.get("api_user")  # the API's caller, by personal access token (collab/api.py)
    try:
        from_user = api.id if api is not None else (
            current_user.id if current_user and current_user.is_authenticated else None)
    except Exception:  # noqa: BLE001 - a failed user lookup (database down) must not lose the line
        from_user = None
    rule = request.url_rule.rule if request.url_rule is not None else None
    return {"method": request.method, "endpoint": request.endpoint or "(none)", "route": rule, "status": status,
            "duration_ms": round(duration * 1000, 2), "user_id": from_user}


def init_app(app: Flask) -> None:
    configure(app.config.get("LOG_FORMAT", "text"))

    def _start():
        g.request_id = _incoming_id()
        g.request_started = time.perf_counter()

    # First of all: a hook registered earlier that answers at once (a redirect to two-step set-up) would
    # otherwise leave its request without an id, a log line or a measured time.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _finish(resp):
        rid = g.get("request_id")
        if rid:
            resp.headers[HEADER] = rid
        if _json and g.get("request_started") is not None:
            fields = request_fields(resp.status_code, time.perf_counter() - g.request_started)
            REQUESTS.info("request", extra={"collab": fields})
        return resp
