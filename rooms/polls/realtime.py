"""Live counts of polls, after commit, and the `poll.vote` Socket.IO event (the same service as the page
and the JSON API).

- `poll.voted` {poll_id, thread_id, room_id, voters}: how many have voted, never who nor the tally, to
  the room's channel (every reader of the room; not while a moderator hides the poll).
- `poll.tally` {poll_id, thread_id, results}: only to those who may see the results
  (`policy.may_see_poll_results`): results "always", the room's channel; "after_vote", each voter still
  reading the room on their own account's channel (the list is made inside the vote's write,
  rooms/polls/services.py `_record_tally`), never the room's channel; "after_close", nobody until the
  poll closes (then `poll.closed`, a numbered room event, carries them).

Both are coalesced per poll (rooms/live/coalesce.py): at most one of each every 150 ms, the latest
counts, the last equal to the stored tally. The numbered room events `poll.created`, `poll.updated`
and `poll.closed` go to the room's channel like every room event (rooms/live/fanout.py)."""
from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context

from collab import events
from collab.extensions import socketio
from rooms.live import coalesce
from rooms.live.connections import NS, Conn, room_key, user_key
from rooms.live.handlers import _int_field, handler
from rooms.polls import services

VOTE_LIMIT = "30 per 10 seconds"
MAX_VOTE_PAYLOAD = 16_000  # a ranking of 20 options and a 2,000-character reason, escaped


def _emitter(name: str, payload: dict[str, Any], meta: dict[str, Any]):
    def emit() -> None:
        if meta.get("to_room") is not None:
            socketio.emit(name, payload, to=room_key(meta["to_room"]), namespace=NS)
            return
        for uid in meta.get("to_users", ()):
            socketio.emit(name, payload, to=user_key(uid), namespace=NS)
    return emit


@events.listen
def _on_count(ev: events.Event) -> None:
    if ev.name not in ("poll.voted", "poll.tally") or ev.room_id is not None or not socketio.server \
            or not has_app_context():
        return
    coalesce.send(current_app._get_current_object(), (ev.name, ev.payload["poll_id"]), int(ev.meta["order"]),
                  _emitter(ev.name, ev.payload, ev.meta))


# -- voting over Socket.IO ---------------------------------------------------------------------------

@handler("poll.vote", rate=VOTE_LIMIT, max_bytes=MAX_VOTE_PAYLOAD)
def on_poll_vote(conn: Conn, user: Any, data: dict) -> dict:
    """Cast or change a vote: {poll_id, choices[, reason]}; the ack carries the poll as the voter now
    sees it (as `POST /api/v1/polls/<id>/votes` answers) and whether this was their first vote."""
    ballot, created, counts, poll = services.vote(user, _int_field(data, "poll_id"), choices=data.get("choices"),
                                                  reason=data.get("reason", ""))
    return {"poll": services.view(user, poll, counts=counts, mine=ballot, with_voters=False), "created": created}


EVENTS = ("poll.vote",)
