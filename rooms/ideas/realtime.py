"""Voting on ideas over Socket.IO: `idea.vote` and `idea.withdraw` {idea_id}, calling the same services
as the page and the JSON API (rooms/ideas/services.py vote, withdraw). The ack carries the idea as the
voter now sees it and their budget, as `POST`/`DELETE /api/v1/ideas/<id>/vote` answer; a refusal (a
second vote, a budget used up, a closed idea, no right to vote) is `{"ok": false, "error": ...}`.

The new count reaches the room's channel as `idea.voted` {idea_id, thread_id, room_id, votes}, coalesced
per idea (rooms/live/coalesce.py: at most one every 150 ms, the latest): an idea's vote count is seen by
every reader of its room (`policy.may_see_idea`); who voted never is."""
from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context

from collab import events
from collab.extensions import socketio
from rooms.ideas import services
from rooms.ideas.serialize import idea_dict
from rooms.live import coalesce
from rooms.live.connections import NS, Conn, room_key
from rooms.live.handlers import _int_field, handler

VOTE_LIMIT = "30 per 10 seconds"


@events.listen
def _on_count(ev: events.Event) -> None:
    if ev.name != "idea.voted" or ev.room_id is not None or not socketio.server or not has_app_context():
        return
    payload, room = ev.payload, ev.meta["to_room"]
    coalesce.send(current_app._get_current_object(), (ev.name, payload["idea_id"]), int(ev.meta["order"]),
                  lambda: socketio.emit("idea.voted", payload, to=room_key(room), namespace=NS))


def _answer(user: Any, idea: Any, voted: bool) -> dict:
    return {"idea": dict(idea_dict(idea, user, voted=voted), budget=services.budget(user, idea.room))}


@handler("idea.vote", rate=VOTE_LIMIT)
def on_idea_vote(conn: Conn, user: Any, data: dict) -> dict:
    return _answer(user, services.vote(user, _int_field(data, "idea_id")), True)


@handler("idea.withdraw", rate=VOTE_LIMIT)
def on_idea_withdraw(conn: Conn, user: Any, data: dict) -> dict:
    return _answer(user, services.withdraw(user, _int_field(data, "idea_id")), False)


EVENTS = ("idea.vote", "idea.withdraw")
