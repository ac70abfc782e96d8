"""Similar ideas (issue 13): while someone types an idea's title, the ideas of the room whose text
matches any of its words, best first, through the one search service (so only what the person may
read, as search shows it). Here, not in rooms/ideas/, because rooms/ never imports search/."""
from __future__ import annotations

import re

from sqlalchemy import select

from auth.models import User
from collab.extensions import db
from rooms import services as room_services
from rooms.ideas.models import Idea
from search import service

MAX_WORDS = 8
_WORD = re.compile(r"\w{3,}")
_OPERATORS = {"OR", "AND", "NOT"}


def similar_ideas(actor: User, room_id: object, title: object, limit: int = 5) -> list[Idea]:
    room = room_services.get_room(actor, room_id)
    words = [w for w in _WORD.findall(title if isinstance(title, str) else "")[:50] if w.upper() not in _OPERATORS]
    if not words:
        return []
    res = service.search(actor, " OR ".join(words[:MAX_WORDS]), room_id=room.id, sort="relevance", page=1)
    order: list[int] = []
    for r in res.results:
        if r.thread_id not in order:
            order.append(r.thread_id)
    if not order:
        return []
    found = {i.thread_id: i for i in db.session.scalars(select(Idea).where(Idea.thread_id.in_(order)))}
    return [found[t] for t in order if t in found][:limit]
