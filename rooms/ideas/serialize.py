"""The JSON shape of an idea, for one reader (the API, the pages) or for everyone (live events).

Who wrote and who voted is shown as the room shows names (rooms/pseudonyms.py: "Participant n" in a
non-attributed room); a rank or job title only where `policy.sees_ranks` allows, and never in a
live event, which goes to every reader of the room alike."""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select

from auth.models import User
from collab.extensions import db
from collab.urls import path_for
from rooms import policy, pseudonyms
from rooms.ideas.models import STATUSES, Idea, IdeaVote
from rooms.serialize import iso


def decider_name(idea: Idea, viewer: Optional[User] = None) -> Optional[str]:
    """The decision-maker as shown: named, except in a non-attributed room to those who do not see names."""
    if idea.decided_by_id is None:
        return None
    if idea.room.non_attributed and (viewer is None or not policy.sees_names(viewer, idea.room)):
        return "A decision-maker"
    who = db.session.get(User, idea.decided_by_id)
    return who.name if who else "Former member"


def _author(idea: Idea, ranks: bool) -> Optional[dict[str, Any]]:
    who = pseudonyms.thread_author(idea.thread)
    if who is None:
        return None
    who = dict(who)
    author = idea.thread.author
    if ranks and author is not None and not who.get("pseudonym"):
        who["job_title"] = author.job_title
    return who


def public_dict(idea: Idea) -> dict[str, Any]:
    """The idea as every reader of the room may see it (live events): no rank, no voter."""
    return {
        "id": idea.id,
        "thread_id": idea.thread_id,
        "room_id": idea.room_id,
        "title": idea.thread.title,
        "author": _author(idea, False),
        "status": idea.status,
        "status_label": STATUSES[idea.status],
        "response": idea.response,
        "decided_by": decider_name(idea),
        "decided_at": iso(idea.decided_at),
        "review_on": idea.review_on.isoformat() if idea.review_on else None,
        "duplicate_of": ({"id": idea.duplicate_of.id, "title": idea.duplicate_of.thread.title}
                         if idea.duplicate_of_id and idea.duplicate_of else None),
        "votes": idea.vote_count,
        "created_at": iso(idea.created_at),
        "url": path_for("ideas.idea_page", idea_id=idea.id),
    }


def event_dict(idea: Idea) -> dict[str, Any]:
    """The idea as its live events carry it: `public_dict` without the title and the author (the
    `thread.created` before it carries those, and is the one event rewritten when the opening post is
    removed, rooms/post_removal.py scrub_events; an idea event must not keep a removed title)."""
    out = public_dict(idea)
    del out["title"], out["author"]
    if out["duplicate_of"]:
        out["duplicate_of"] = {"id": out["duplicate_of"]["id"]}
    return out


def idea_dict(idea: Idea, viewer: User, *, voted: Optional[bool] = None, voters: bool = False) -> dict[str, Any]:
    """As `public_dict`, for one reader: ranks where they may see them, whether they voted, and with
    `voters` the list of voters (only for those who see names)."""
    ranks = policy.sees_ranks(viewer, idea.room, decided=idea.decided)
    out = public_dict(idea)
    out["author"] = _author(idea, ranks)
    out["decided_by"] = decider_name(idea, viewer)
    if voted is None:
        voted = db.session.scalar(select(IdeaVote.id).where(IdeaVote.idea_id == idea.id,
                                                            IdeaVote.user_id == viewer.id)) is not None
    out["my_vote"] = voted
    out["can_vote"] = idea.is_open and policy.can_vote_idea(viewer, idea.room)
    out["can_decide"] = policy.can_decide_ideas(viewer, idea.room)
    if voters:
        if policy.sees_names(viewer, idea.room):
            rows = db.session.scalars(select(IdeaVote).where(IdeaVote.idea_id == idea.id).order_by(IdeaVote.id))
            out["voters"] = [{"id": v.user.id, "name": v.user.name, **({"job_title": v.user.job_title} if ranks else {})}
                             for v in rows]
        else:
            out["voters"] = None   # a non-attributed room: the count only
    return out
