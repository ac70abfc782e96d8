"""The one JSON shape of a poll, for the API, the pages and the live events. No voter's name or
account id is ever in it for an anonymous poll; the tallies only for whoever may see them
(`policy.may_see_poll_results`)."""
from __future__ import annotations

import json
from typing import Any, Optional

from rooms import policy
from rooms.polls.models import Poll
from rooms.serialize import iso


def options(poll: Poll) -> list[str]:
    return json.loads(poll.options)


def public_dict(poll: Poll) -> dict[str, Any]:
    """What every reader of the room may know: no tallies, no voters."""
    return {
        "id": poll.id,
        "room_id": poll.room_id,
        "thread_id": poll.thread_id,
        "post_id": poll.post_id,
        "meeting_id": poll.meeting_id,
        "question": poll.question,
        "kind": poll.kind,
        "options": options(poll),
        "dots": poll.dots,
        "anonymous": bool(poll.anonymous),
        "results_visibility": poll.results,
        "quorum": poll.quorum,
        "closes_at": iso(poll.closes_at),
        "closed": poll.closed_at is not None,
        "closed_at": iso(poll.closed_at),
        "outcome": poll.outcome or None,
        "outcome_post_id": poll.outcome_post_id,
        "created_at": iso(poll.created_at),
    }


def with_quorum(poll: Poll, tally: dict[str, Any]) -> dict[str, Any]:
    out = dict(tally)
    out["quorum_reached"] = None if poll.quorum is None else tally["voters"] >= poll.quorum
    return out


def poll_dict(poll: Poll, *, viewer: Any, tally: Optional[dict[str, Any]], my_vote: Optional[dict[str, Any]],
              voters: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """For one reader: `results` is None unless they may see it; `my_vote` is their own ballot."""
    out = public_dict(poll)
    sees = tally is not None and policy.may_see_poll_results(viewer, poll, voted=my_vote is not None)
    out["results"] = with_quorum(poll, tally) if sees else None
    out["results_hidden_reason"] = None if sees else (
        "Results are shown once you have voted." if poll.results == "after_vote"
        else "Results are shown when the poll closes.")
    out["my_vote"] = my_vote
    out["voted"] = my_vote is not None
    out["may_vote"] = policy.may_vote_in_poll(viewer, poll)
    out["may_close"] = poll.closed_at is None and policy.may_close_poll(viewer, poll)
    if voters is not None and sees and policy.sees_poll_voters(viewer, poll):
        out["voters"] = voters
    return out
