"""What a Q&A session's hosts and moderators do, one function each: approve, edit (the question then
says "edited by moderator"), merge duplicates (votes combined, one per person kept), decline with a
reason the asker is told, mark "now answering" (one question at a time), answer in writing (a reply
post, searchable) or aloud (in the meeting's minutes when the session has a meeting), end the session
(what is left gets an owner and a due date), remind owners of what is due, and reveal who asked an
anonymous question (room moderators only, audited).

As in rooms/qa/services.py: check through rooms/policy.py, one write, numbered room events, commit."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import delete, func, select, update

from auth import audit
from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Conflict, Forbidden, Invalid
from collab.extensions import db
from rooms import policy, services
from rooms.markdown import render
from rooms.moderation import notice_in_tx
from rooms.models import PostRevision
from rooms.qa.models import LIVE_STATUSES, STATUSES, QaQuestion, QaSession, QaVote
from rooms.qa.serialize import session_event
from rooms.qa.services import (
    DUE_DAYS,
    MAX_ANSWER,
    MAX_QUESTION,
    MAX_REASON,
    _announce,
    _insert_post,
    _question_in_write,
    get_question,
    get_session,
)
from rooms.serialize import post_dict

REMIND_EVERY = timedelta(days=1)


def _moderating(actor: User, qid: object) -> QaQuestion:
    q = get_question(actor, qid)
    if not policy.may_moderate_qa(actor, q.session):
        raise Forbidden("Only the session's hosts and the room's moderators can moderate its questions.")
    return q


def _hide(q: QaQuestion, actor: User, reason: str) -> None:
    post = q.post
    was_shown = post.hidden_at is None
    post.hidden_at, post.hidden_by_id, post.hidden_reason = utcnow(), actor.id, reason
    if was_shown:
        services.record_event(q.room_id, "post.updated", {"post": post_dict(post)})


def _stop_answering(session: QaSession, q: QaQuestion) -> None:
    if session.now_answering_id == q.id:
        session.now_answering_id = None


def approve(actor: User, question_id: object) -> QaQuestion:
    q = _moderating(actor, question_id)
    db.begin_write()
    try:
        q = _question_in_write(actor, q.id)
        if q.status != "pending":
            raise Conflict(f"This question is {STATUSES[q.status].lower()}, not waiting for approval.")
        q.status = "open"
        q.post.hidden_at = q.post.hidden_by_id = q.post.hidden_reason = None
        audit.record("qa.approved", actor=actor, target_type="qa_question", target_id=q.id, room_id=q.room_id)
        services.record_event(q.room_id, "post.created", {"post": post_dict(q.post)})
        _announce(q)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return q


def edit(actor: User, question_id: object, *, body: object) -> QaQuestion:
    """A moderator's edit of the question's text: the earlier text is kept as the post's history and the
    question says "edited by moderator" to everyone."""
    q = _moderating(actor, question_id)
    text = validate.text(body, "body", max_len=MAX_QUESTION, multiline=True, label="Question")
    if q.status not in ("pending", *LIVE_STATUSES):
        raise Conflict(f"This question is {STATUSES[q.status].lower()}: it can no longer be edited.")
    if text == q.post.body:
        return q
    db.begin_write()
    post = q.post
    db.session.add(PostRevision(post_id=post.id, body=post.body, html=post.html,
                                written_at=post.edited_at or post.created_at, editor_id=actor.id))
    post.body, post.html, post.edited_at = text, render(text), utcnow()
    q.edited_by_moderator = True
    audit.record("qa.edited", actor=actor, target_type="qa_question", target_id=q.id, room_id=q.room_id)
    if post.hidden_at is None:
        services.record_event(q.room_id, "post.updated", {"post": post_dict(post)})
        _announce(q)
    db.session.commit()
    return q


def merge(actor: User, question_id: object, *, into: object) -> QaQuestion:
    """Merge a duplicate into another question of the same session: its votes go to the other (a person
    who voted for both keeps one vote), it is hidden with a note, and the other's tally is recounted."""
    dup = _moderating(actor, question_id)
    target = get_question(actor, validate.int_id(into, "into"))
    if target.session_id != dup.session_id:
        raise Invalid("Only questions of the same session can be merged.", "into")
    if target.id == dup.id:
        raise Invalid("Choose another question to merge this one into.", "into")
    db.begin_write()
    try:
        first, second = sorted((dup.id, target.id))   # the same lock order in every merge
        _question_in_write(actor, first)
        _question_in_write(actor, second)
        for q, verb in ((dup, "merged"), (target, "merged into")):
            if q.status not in ("pending", *LIVE_STATUSES):
                raise Conflict(f"A question that is {STATUSES[q.status].lower()} cannot be {verb}.")
        both = select(QaVote.user_id).where(QaVote.question_id == target.id)
        db.session.execute(delete(QaVote).where(QaVote.question_id == dup.id, QaVote.user_id.in_(both))
                           .execution_options(synchronize_session=False))
        db.session.execute(update(QaVote).where(QaVote.question_id == dup.id).values(question_id=target.id)
                           .execution_options(synchronize_session=False))
        target.vote_count = db.session.scalar(select(func.count(QaVote.id)).where(QaVote.question_id == target.id))
        dup.vote_count, dup.status, dup.merged_into_id = 0, "merged", target.id
        _stop_answering(dup.session, dup)
        _hide(dup, actor, "Merged into a similar question.")
        audit.record("qa.merged", actor=actor, target_type="qa_question", target_id=dup.id, room_id=dup.room_id,
                     detail={"into": target.id})
        _announce(dup)
        if target.status != "pending":
            _announce(target)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return target


def decline(actor: User, question_id: object, *, reason: object) -> QaQuestion:
    """Decline with a reason; the asker is told (a notification, also to an anonymous asker)."""
    q = _moderating(actor, question_id)
    why = validate.text(reason, "reason", max_len=MAX_REASON, multiline=True, label="Reason")
    db.begin_write()
    try:
        q = _question_in_write(actor, q.id)
        if q.status not in ("pending", *LIVE_STATUSES):
            raise Conflict(f"This question is {STATUSES[q.status].lower()}: it can no longer be declined.")
        was_public = q.status != "pending"
        q.status, q.decline_reason = "declined", why
        _stop_answering(q.session, q)
        _hide(q, actor, f"Declined: {why}")
        audit.record("qa.declined", actor=actor, target_type="qa_question", target_id=q.id, room_id=q.room_id)
        notice_in_tx("qa_decline", q.post, actor, user_id=q.asker_id)
        if was_public:
            _announce(q)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return q


# -- answering -----------------------------------------------------------------------------------------

def _hosting(actor: User, question_id: object) -> QaQuestion:
    q = get_question(actor, question_id)
    if not policy.may_answer_question(actor, q):
        raise Forbidden("Only the session's hosts can answer its questions.")
    return q


def now_answering(actor: User, question_id: object) -> QaQuestion:
    """The host marks the question being answered now (the one before goes back to open)."""
    q = _hosting(actor, question_id)
    if not policy.may_host_qa(actor, q.session):
        raise Forbidden("Only the session's hosts can mark the question being answered.")
    db.begin_write()
    try:
        q = _question_in_write(actor, q.id)
        session = q.session
        db.session.refresh(session)
        if session.ended:
            raise Conflict("This Q&A session has ended.")
        if q.status not in LIVE_STATUSES:
            raise Conflict(f"This question is {STATUSES[q.status].lower()}: it cannot be answered now.")
        before = db.session.get(QaQuestion, session.now_answering_id) if session.now_answering_id else None
        if before is not None and before.id != q.id and before.status == "answering":
            before.status = "open"
        q.status, session.now_answering_id = "answering", q.id
        services.record_event(q.room_id, "qa.answering", {"session_id": session.id, "question_id": q.id,
                                                          "previous_id": before.id if before else None})
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return q


def answer(actor: User, question_id: object, *, body: object = None, aloud: object = False) -> QaQuestion:
    """A written answer (a reply to the question, searchable) or "answered aloud" (with an optional
    note); the asker is told, anonymous or not."""
    q = _hosting(actor, question_id)
    if not isinstance(aloud, bool):
        raise Invalid("aloud must be true or false.", "aloud")
    text = validate.text(body, "body", max_len=MAX_ANSWER, required=False, multiline=True, label="Answer")
    if not text and not aloud:
        raise Invalid("Write an answer, or mark the question answered aloud.", "body")
    db.begin_write()
    try:
        q = _question_in_write(actor, q.id)
        if q.status not in LIVE_STATUSES:
            raise Conflict(f"This question is {STATUSES[q.status].lower()}: it cannot be answered.")
        if text:
            reply = _insert_post(q.session.thread, q.post, actor.id, text)
            services.record_event(q.room_id, "post.created", {"post": post_dict(reply)})
            q.answer_post_id = reply.id
        now = utcnow()
        q.status, q.answered_aloud, q.answered_by_id, q.answered_at = "answered", aloud, actor.id, now
        _stop_answering(q.session, q)
        notice_in_tx("qa_answer", q.post, actor, user_id=q.asker_id)
        _announce(q, "qa.answered")
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return q


# -- the end -------------------------------------------------------------------------------------------

def _due(value: object) -> date:
    if value in (None, ""):
        return (utcnow() + timedelta(days=DUE_DAYS)).date()
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid("due_on must be a date like 2026-03-01.", "due_on")
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise Invalid("due_on must be a date like 2026-03-01.", "due_on") from None
    if d < utcnow().date():
        raise Invalid("The due date cannot be in the past.", "due_on")
    return d


def end(actor: User, session_id: object, *, owner_id: object = None, due_on: object = None) -> QaSession:
    """End the session: it takes no more questions or votes and becomes an archive; every open question
    gets an owner (the host ending it, unless another is named) and a due date, and is reminded then."""
    session = get_session(actor, session_id)
    if not policy.may_host_qa(actor, session):
        raise Forbidden("Only the session's hosts can end it.")
    oid = validate.int_id(owner_id, "owner_id", required=False) or actor.id
    owner = db.session.get(User, oid)
    if owner is None or not owner.active or not policy.can_read_room(owner, session.room):
        raise Invalid("The owner must be an account that can read this room.", "owner_id")
    due = _due(due_on)
    db.begin_write()
    try:
        db.session.refresh(session)
        if session.ended:
            raise Conflict("This Q&A session has already ended.")
        session.ended_at, session.ended_by_id, session.now_answering_id = utcnow(), actor.id, None
        left = list(db.session.scalars(select(QaQuestion).where(QaQuestion.session_id == session.id,
                                                               QaQuestion.status.in_(LIVE_STATUSES))))
        for q in left:
            q.status, q.owner_id, q.due_on = "open", owner.id, due
        audit.record("qa.ended", actor=actor, target_type="qa_session", target_id=session.id,
                     room_id=session.room_id, detail={"owner_id": owner.id, "due_on": due.isoformat(),
                                                      "unanswered": len(left)})
        services.record_event(session.room_id, "qa.ended", {"session": session_event(session),
                                                            "unanswered": len(left)})
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return session


def remind_due(now: Optional[datetime] = None) -> int:
    """Remind the owners of unanswered questions whose due date has come (again each day until they are
    answered). Each reminder is claimed by one conditional UPDATE, so several processes never send one
    twice; it goes only to an owner who may still read the room."""
    now = now or utcnow()
    cutoff = now - REMIND_EVERY
    ids = list(db.session.scalars(select(QaQuestion.id).where(
        QaQuestion.status == "open", QaQuestion.owner_id.is_not(None), QaQuestion.due_on <= now.date(),
        (QaQuestion.reminded_at.is_(None)) | (QaQuestion.reminded_at <= cutoff)).limit(500)))
    db.session.rollback()
    sent = 0
    for qid in ids:
        db.begin_write()
        claimed = db.session.execute(
            update(QaQuestion).where(QaQuestion.id == qid, QaQuestion.status == "open",
                                     (QaQuestion.reminded_at.is_(None)) | (QaQuestion.reminded_at <= cutoff))
            .values(reminded_at=now).execution_options(synchronize_session=False)).rowcount
        q = db.session.get(QaQuestion, qid) if claimed else None
        if q is not None and q.owner is not None and policy.can_read_room(q.owner, q.session.room) \
                and not q.post.deleted:
            notice_in_tx("qa_due", q.post, None, user_id=q.owner_id)
            sent += 1
        db.session.commit()
    return sent


# -- anonymous askers ----------------------------------------------------------------------------------

def reveal_asker(actor: User, question_id: object, *, reason: object) -> Optional[User]:
    """Who asked an anonymous question (a rude one, a follow-up): the room's moderators only, with a
    reason, and every reveal is written to the audit log."""
    q = get_question(actor, question_id)
    if not policy.may_reveal_qa_asker(actor, q.session):
        raise Forbidden("Only the room's moderators can see who asked an anonymous question.")
    why = validate.text(reason, "reason", max_len=MAX_REASON, label="Reason")
    if not q.anonymous:
        raise Invalid("This question is not anonymous: its asker is shown with it.", "question_id")
    db.begin_write()
    audit.record("qa.asker_revealed", actor=actor, target_type="qa_question", target_id=q.id, room_id=q.room_id,
                 detail={"reason": why})
    db.session.commit()
    return db.session.get(User, q.asker_id) if q.asker_id else None

