"""Fan-out: after a commit, every numbered room event goes to the room's channel, notifications
to their account's channel, and a mention e-mail to someone not online.

Nothing here asks the database after the commit (the session is closed there): whether a
member.* event's room is non-attributed is decided before the commit (`_before_commit`).
Losing access after a commit -- member.removed, room.updated, account.changed -- is
rooms/revocation.py.
"""
from __future__ import annotations

import time

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from collab import events, metrics
from collab.extensions import socketio
from collab.tasks import spawn
from rooms import notify_email, pseudonyms
from rooms.live.connections import NS, room_key, user_key
from rooms.live.presence import is_online
from rooms.models import Room


@events.listen
def _on_event(ev: events.Event) -> None:
    if not socketio.server or not has_app_context():
        return
    started = time.perf_counter()
    _deliver(ev)
    metrics.FANOUT_SECONDS.observe(time.perf_counter() - started)


def _deliver(ev: events.Event) -> None:
    if ev.room_id is not None and "seq" in ev.payload:
        payload = ev.payload
        if ev.meta.get("anonymous"):  # member.* of a non-attributed room: nobody is named
            payload = pseudonyms.member_event(payload)
        socketio.emit(ev.name, payload, to=room_key(ev.room_id), namespace=NS)
    uid = ev.meta.get("user_id")
    if ev.name.startswith("notification.") and uid:
        socketio.emit(ev.name, ev.payload, to=user_key(uid), namespace=NS)
    app = current_app._get_current_object()
    if ev.name == "notification.created" and ev.meta.get("kind") == "mention" and app.config.get("SMTP_HOST"):
        spawn(app, notify_email.send_mention_email, ev.meta["notification_id"],
              lambda u: is_online(u, app))


@sa_event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Is the room of a member.* event non-attributed? Decided now, while the database
    can be asked, so the after-commit broadcast needs none."""
    for ev in events.pending(session):
        if ev.name.startswith("member.") and ev.room_id is not None and "anonymous" not in ev.meta:
            room = session.get(Room, ev.room_id)
            ev.meta["anonymous"] = bool(room is not None and room.non_attributed)
