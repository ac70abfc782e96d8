"""Live tallies of polls, after commit, only to those who may see them (`policy.may_see_poll_results`):

- results "always": the room's channel (every reader of the room);
- results "after_vote": each voter still reading the room, on their own account's channel (the list
  is made inside the vote's write, rooms/polls/services.py `_record_tally`); never the room's channel;
- results "after_close": no tally until the poll closes; then `poll.closed`, a room event, carries them.

The numbered room events `poll.created`, `poll.voted` (how many have voted, no names), `poll.updated`
and `poll.closed` go to the room's channel like every room event (rooms/live/fanout.py)."""
from __future__ import annotations

from flask import has_app_context

from collab import events
from collab.extensions import socketio
from rooms.live.connections import NS, room_key, user_key


@events.listen
def _on_tally(ev: events.Event) -> None:
    if ev.name != "poll.tally" or not socketio.server or not has_app_context():
        return
    if ev.meta.get("to_room") is not None:
        socketio.emit("poll.tally", ev.payload, to=room_key(ev.meta["to_room"]), namespace=NS)
        return
    for uid in ev.meta.get("to_users", ()):
        socketio.emit("poll.tally", ev.payload, to=user_key(uid), namespace=NS)
