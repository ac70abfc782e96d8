"""Live Q&A events that are not for every reader of the room, after commit: `qa.pending` (a question
waiting for approval: ids only) goes to each of the session's moderators and hosts on their own
account's channel (the list is made inside the write, rooms/qa/services.py `ask`), never to the
room's channel. Every other Q&A event (`qa.created`, `qa.updated`, `qa.question`, `qa.voted`,
`qa.answering`, `qa.answered`, `qa.ended`) is a numbered room event and goes to the room's channel
like every room event (rooms/live/fanout.py); none carries a question's text or its asker."""
from __future__ import annotations

from flask import has_app_context

from collab import events
from collab.extensions import socketio
from rooms.live.connections import NS, user_key


@events.listen
def _on_pending(ev: events.Event) -> None:
    if ev.name != "qa.pending" or not socketio.server or not has_app_context():
        return
    for uid in ev.meta.get("to_users", ()):
        socketio.emit("qa.pending", ev.payload, to=user_key(uid), namespace=NS)
