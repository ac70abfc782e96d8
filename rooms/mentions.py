"""@mentions: who a post names ("@Full Name", longest name first) and the composer's suggestions of
people to name. rooms/notify_delivery.py turns the names found into notifications."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from auth.models import User
from collab import validate
from collab.extensions import db
from rooms import pseudonyms, services
from rooms.models import Thread

_WORD = re.compile(r"\w")


def find_mentions(body: str, people: Iterable[tuple[int, str]]) -> set[int]:
    """Ids of the people written as "@Full Name" in `body` (longest name wins, any case).

    An "@" glued to a word (an e-mail address) is not a mention, and the name must
    end at a word boundary, so "@Ann" does not mention "Anna"."""
    if "@" not in body:
        return set()
    names = sorted(((name.casefold(), uid) for uid, name in people if name), key=lambda x: -len(x[0]))
    folded = body.casefold()
    found: set[int] = set()
    for m in re.finditer("@", folded):
        i = m.start()
        if i > 0 and _WORD.match(folded[i - 1]):
            continue
        rest = folded[i + 1:]
        for name, uid in names:
            if rest.startswith(name) and (len(rest) == len(name) or not _WORD.match(rest[len(name)])):
                found.add(uid)
                break
    return found


def mention_candidates(actor: User, room_id: object, query: object = "", limit: int = 8,
                       thread_id: object = None) -> list[dict[str, Any]]:
    """Members of a room whose name matches, for the composer's @-autocomplete (in a
    non-attributed room: the pseudonyms of the thread's participants, never names)."""
    room = services.get_room(actor, room_id)
    q = query if isinstance(query, str) else ""
    q = validate.clean_text(q)[:60].strip().casefold()
    if room.non_attributed:
        tid = thread_id if isinstance(thread_id, int) else (int(thread_id) if isinstance(thread_id, str)
                                                             and validate.digits(thread_id) and len(thread_id) < 12 else None)
        thread = db.session.get(Thread, tid) if tid else None
        if thread is None or thread.room_id != room.id:
            return []
        return pseudonyms.mention_people(thread.id, exclude=actor.id, query=q)[:limit]
    out = []
    for m in services.room_members(actor, room):
        if not m.user.active or m.user_id == actor.id:
            continue
        name = m.user.name
        folded = name.casefold()
        if not q or folded.startswith(q) or any(part.startswith(q) for part in folded.split()):
            out.append({"id": m.user_id, "name": name, "job_title": m.user.job_title})
        if len(out) >= limit:
            break
    return out

