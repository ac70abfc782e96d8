"""Domain events, queued during a transaction and delivered only after commit.

Services call `queue(...)`; listeners (Socket.IO broadcast, search indexing,
notifications) register with `listen(...)`. A rollback drops the queue, so no
listener ever sees a change that did not happen.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_KEY = "collab_events"


@dataclass
class Event:
    name: str
    payload: dict[str, Any]
    room_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]
_listeners: list[Listener] = []


def listen(fn: Listener) -> Listener:
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def queue(session: Session, name: str, payload: dict[str, Any], room_id: int | None = None, **meta: Any) -> None:
    session.info.setdefault(_KEY, []).append(Event(name, payload, room_id, meta))


def pending(session: Session) -> list[Event]:
    """The events queued so far in this session's transaction (for before-commit hooks)."""
    return list(session.info.get(_KEY, []))


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    if session.in_nested_transaction():
        # "after_commit" fires for a SAVEPOINT's release too, while the real transaction (and on SQLite
        # its write lock) is still open: deliver only after the outermost commit.
        return
    pending: list[Event] = session.info.pop(_KEY, [])
    for ev in pending:
        for fn in list(_listeners):
            try:
                fn(ev)
            except Exception:  # a listener must never undo a committed write
                log.exception("event listener %s failed for %s", getattr(fn, "__name__", fn), ev.name)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
