"""The JSON shape of a Q&A session and its questions, for one reader (the API, the pages) or for
everyone (live events).

An anonymous question's post has no author, so nothing drawn from the post names anyone; its asker
(`QaQuestion.asker_id`) is never put in any of these shapes, for anyone: a moderator who must know
asks `services.reveal_asker`, which is audited. Live events carry no question text (the post's own
`post.created`/`post.updated` carry it, and are scrubbed when the post is removed,
rooms/post_removal.py), only ids, states and tallies."""
from __future__ import annotations

from typing import Any, Optional

from auth.models import User
from collab.extensions import db
from collab.urls import path_for
from rooms import policy, pseudonyms
from rooms.qa.models import STATUSES, QaHost, QaQuestion, QaSession
from rooms.serialize import iso

ANONYMOUS = {"name": "Anonymous", "anonymous": True}


def _person(room, viewer: Optional[User], user: Optional[User], fallback: str) -> Optional[dict[str, Any]]:
    """A host, answerer or owner as the room shows names: nobody is named in a non-attributed room to
    those who do not see names."""
    if user is None:
        return None
    if room.non_attributed and (viewer is None or not policy.sees_names(viewer, room)):
        return {"name": fallback, "pseudonym": True}
    return {"id": user.id, "name": user.name}


def asker(question: QaQuestion) -> Optional[dict[str, Any]]:
    """Who asked, as everyone may see it: "Anonymous" for an anonymous question (its post has no author)."""
    if question.anonymous:
        return dict(ANONYMOUS)
    return pseudonyms.post_author(question.post)


def session_event(session: QaSession) -> dict[str, Any]:
    return {"id": session.id, "thread_id": session.thread_id, "room_id": session.room_id,
            "meeting_id": session.meeting_id, "moderated": session.moderated,
            "starts_at": iso(session.starts_at), "ends_at": iso(session.ends_at), "ended_at": iso(session.ended_at),
            "now_answering_id": session.now_answering_id,
            "url": path_for("qa.session_page", qa_id=session.id)}


def session_dict(session: QaSession, viewer: User, hosts: list[QaHost]) -> dict[str, Any]:
    out = session_event(session)
    room = session.room
    out["title"] = session.thread.title
    out["hosts"] = [_person(room, viewer, h.user, "A host") for h in hosts]
    out["is_host"] = any(h.user_id == viewer.id for h in hosts)
    out["can_ask"] = policy.can_ask_question(viewer, session)
    out["can_moderate"] = policy.may_moderate_qa(viewer, session)
    out["can_host"] = policy.may_host_qa(viewer, session)
    return out


def question_event(q: QaQuestion) -> dict[str, Any]:
    """A question in a live event (to every reader of the room): ids, state and tally, no text, no asker."""
    return {"id": q.id, "session_id": q.session_id, "post_id": q.post_id, "status": q.status, "votes": q.vote_count,
            "answered_aloud": q.answered_aloud, "merged_into_id": q.merged_into_id}


def question_dict(q: QaQuestion, viewer: User, *, voted: bool = False) -> dict[str, Any]:
    post = q.post
    room = q.session.room
    moderates = policy.may_moderate_qa(viewer, q.session)
    mine = q.asker_id is not None and q.asker_id == viewer.id
    out = question_event(q)
    out.update({
        "status_label": STATUSES[q.status],
        "body": post.body if not post.deleted else "",
        "html": post.html if not post.deleted else "",
        "author": asker(q),
        "anonymous": q.anonymous,
        "mine": mine,
        "my_vote": voted,
        "edited_by_moderator": q.edited_by_moderator,
        "created_at": iso(q.created_at),
        "answered_at": iso(q.answered_at),
        "answered_by": _person(room, viewer, db.session.get(User, q.answered_by_id) if q.answered_by_id else None,
                               "A host"),
        "answer": None,
        "decline_reason": q.decline_reason if (mine or moderates) else None,
        "owner": _person(room, viewer, q.owner, "An owner") if q.owner_id else None,
        "due_on": q.due_on.isoformat() if q.due_on else None,
    })
    ans = q.answer_post
    if ans is not None and not ans.deleted and policy.may_read_post(viewer, ans):
        out["answer"] = {"post_id": ans.id, "body": ans.body, "html": ans.html}
    return out
