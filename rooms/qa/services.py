"""Q&A operations, one function each (the pages, the JSON API and tests call them): opening a session
(a thread, made by rooms/posts.py, with its session row and hosts in the same write), naming hosts,
asking (a post in the session's thread: no author when anonymous), voting and withdrawing a vote,
moderating (approve, edit, merge, decline), "now answering", answering (a written reply, or aloud),
ending the session (owners and due dates for what is left) and revealing an anonymous asker.

Each checks permission through rooms/policy.py, writes in one transaction, records numbered room
events and commits; live readers hear of it only after the commit. A question waiting for approval is
a post hidden by moderation (so the thread page, search and exports skip it) and is announced only to
those who moderate the session, on their own channels (rooms/qa/realtime.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Optional

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from auth import audit
from auth.models import User
from collab import events, timezones, validate
from collab.db import utcnow
from collab.errors import Conflict, Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import policy, pseudonyms, services
from rooms import posts as room_posts
from rooms.markdown import render
from rooms.meetings.models import Meeting
from rooms.models import Membership, Post, Room, Thread, path_segment
from rooms.qa.models import LIVE_STATUSES, STATUSES, QaHost, QaQuestion, QaSession, QaVote
from rooms.qa.serialize import question_event, session_event
from rooms.serialize import post_dict

MAX_QUESTION = 1000
MAX_ANSWER = 10_000
MAX_REASON = 500
MAX_HOSTS = 20
SORTS = {"votes": "Popular", "newest": "Recent"}
DUE_DAYS = 14
PENDING_NOTE = "Waiting for a moderator's approval."
OPENING = ("Questions for this Q&A session are asked and voted on from its page. Answers are posted here as "
           "replies, so they can be searched.")


# -- reading ------------------------------------------------------------------------------------------

def get_session(actor: Optional[User], session_id: object) -> QaSession:
    sid = validate.int_id(session_id, "session_id")
    session = db.session.get(QaSession, sid)
    if session is None or not policy.may_see_qa_session(actor, session):
        raise NotFound("Q&A session not found.")
    return session


def get_question(actor: Optional[User], question_id: object) -> QaQuestion:
    qid = validate.int_id(question_id, "question_id")
    q = db.session.get(QaQuestion, qid)
    if q is None or not policy.may_see_question(actor, q):
        raise NotFound("Question not found.")
    return q


def hosts(session: QaSession) -> list[QaHost]:
    return list(db.session.scalars(select(QaHost).where(QaHost.session_id == session.id).order_by(QaHost.id)))


def room_sessions(room: Room, limit: int = 50) -> list[QaSession]:
    return list(db.session.scalars(select(QaSession).where(QaSession.room_id == room.id)
                                   .order_by(QaSession.starts_at.desc(), QaSession.id.desc()).limit(limit)))


def session_for_meeting(actor: User, meeting_id: int) -> Optional[QaSession]:
    """The meeting's Q&A session (the newest, if several), for the meeting page's Q&A tab."""
    s = db.session.scalar(select(QaSession).where(QaSession.meeting_id == meeting_id)
                          .order_by(QaSession.id.desc()).limit(1))
    return s if s is not None and policy.may_see_qa_session(actor, s) else None


def session_for_thread(thread_id: int) -> Optional[QaSession]:
    return db.session.scalar(select(QaSession).where(QaSession.thread_id == thread_id))


def questions(actor: User, session: QaSession, *, sort: object = "votes", limit: int = 500) -> list[QaQuestion]:
    """The questions `actor` may see, sorted: everyone sees approved ones; the asker their own waiting or
    declined ones; those who moderate the session all of them."""
    sort_v = validate.choice(sort or "votes", "sort", SORTS)
    q = (select(QaQuestion).join(Post, Post.id == QaQuestion.post_id)
         .where(QaQuestion.session_id == session.id, Post.deleted_at.is_(None)))
    if not policy.may_moderate_qa(actor, session):
        seen = QaQuestion.status.in_((*LIVE_STATUSES, "answered"))
        q = q.where(seen | (QaQuestion.asker_id == actor.id))
    order = ((QaQuestion.vote_count.desc(), QaQuestion.id.asc()) if sort_v == "votes" else (QaQuestion.id.desc(),))
    return list(db.session.scalars(q.order_by(*order).limit(limit)))


def my_votes(actor: User, question_ids: Iterable[int]) -> set[int]:
    ids = list(question_ids)
    if not ids:
        return set()
    return set(db.session.scalars(select(QaVote.question_id).where(QaVote.user_id == actor.id,
                                                                   QaVote.question_id.in_(ids))))


def meetings_to_link(room: Room) -> list[Meeting]:
    """The room's meetings that have not ended, newest first: those a new session may belong to."""
    return list(db.session.scalars(select(Meeting).where(Meeting.room_id == room.id, Meeting.ended_at.is_(None))
                                   .order_by(Meeting.id.desc()).limit(50)))


def answered_aloud_in_meeting(meeting_id: int) -> list[str]:
    """The questions answered aloud in a meeting's Q&A sessions, as plain text for its minutes (which
    name nobody: no asker, no host)."""
    rows = db.session.scalars(
        select(Post.body).join(QaQuestion, QaQuestion.post_id == Post.id)
        .join(QaSession, QaSession.id == QaQuestion.session_id)
        .where(QaSession.meeting_id == meeting_id, QaQuestion.status == "answered", QaQuestion.answered_aloud.is_(True),
               Post.deleted_at.is_(None), Post.hidden_at.is_(None))
        .order_by(QaQuestion.answered_at, QaQuestion.id))
    return list(rows)


# -- sessions and hosts ------------------------------------------------------------------------------

def _when(actor: User, value: object, field: str, *, required: bool) -> Optional[datetime]:
    """A time as typed (the form's local time, in the caller's zone) or sent (ISO 8601; with an offset or
    Z it says which moment it is), as naive UTC."""
    label = "Starts" if field == "starts_at" else "Ends"
    when = timezones.parse_local(value, timezones.zone_name_for(actor), field, label)
    if when is None and required:
        raise Invalid("starts_at is required: the date and time the session starts.", field)
    return when


def _host_ids(actor: User, room: Room, value: object) -> list[int]:
    if value is None or value == "":
        return [actor.id]
    if not isinstance(value, list) or len(value) > MAX_HOSTS:
        raise Invalid(f"hosts must be a list of at most {MAX_HOSTS} account ids.", "hosts")
    ids = []
    for v in value:
        uid = validate.int_id(v, "hosts")
        if uid not in ids:
            ids.append(uid)
    if not ids:
        ids = [actor.id]
    if ids != [actor.id] and not policy.can_add_qa_hosts(actor, room):
        raise Forbidden("Only the room's owners and moderators can name other hosts; you host your own session.")
    for uid in ids:
        u = db.session.get(User, uid)
        if u is None or not policy.can_read_room(u, room):
            raise Invalid("Every host must be an account that can read this room.", "hosts")
    return ids


def create_session(actor: User, room_id: object, *, title: object, starts_at: object, ends_at: object = None,
                   meeting_id: object = None, moderated: object = False, hosts: object = None,
                   body: object = "") -> QaSession:
    room = services.get_room(actor, room_id)
    if not policy.can_create_qa(actor, room):
        raise Forbidden("This room is archived: it can be read but not written to." if room.archived
                        else "You can read this room but not open a Q&A session in it.")
    if not isinstance(moderated, bool):
        raise Invalid("moderated must be true or false.", "moderated")
    start = _when(actor, starts_at, "starts_at", required=True)
    end = _when(actor, ends_at, "ends_at", required=False)
    if end is not None and end <= start:
        raise Invalid("The end must be after the start.", "ends_at")
    mid = validate.int_id(meeting_id, "meeting_id", required=False)
    if mid is not None:
        meeting = db.session.get(Meeting, mid)
        if meeting is None or meeting.room_id != room.id:
            raise Invalid("Choose a meeting of this room.", "meeting_id")
    host_ids = _host_ids(actor, room, hosts)
    text = validate.text(body, "body", max_len=5000, required=False, multiline=True) or OPENING
    made: list[QaSession] = []

    def add_session(thread: Thread, _post: Post) -> None:
        s = QaSession(room_id=room.id, thread_id=thread.id, meeting_id=mid, created_by_id=actor.id,
                      moderated=moderated, starts_at=start, ends_at=end, created_at=thread.created_at)
        db.session.add(s)
        db.session.flush()
        db.session.add_all(QaHost(session_id=s.id, user_id=uid, added_by_id=actor.id) for uid in host_ids)
        services.record_event(room.id, "qa.created", {"session": session_event(s)})
        made.append(s)

    room_posts.create_thread(actor, room.id, title=title, body=text, within=add_session)
    return made[0]


def add_host(actor: User, session_id: object, user_id: object) -> QaHost:
    session = get_session(actor, session_id)
    if not policy.can_add_qa_hosts(actor, session.room):
        raise Forbidden("Only the room's owners and moderators can add hosts.")
    uid = validate.int_id(user_id, "user_id")
    target = db.session.get(User, uid)
    if target is None or not target.active or not policy.can_read_room(target, session.room):
        raise Invalid("That account cannot read this room.", "user_id")
    db.begin_write()
    row = db.session.scalar(select(QaHost).where(QaHost.session_id == session.id, QaHost.user_id == uid))
    if row is None:
        if db.session.scalar(select(func.count(QaHost.id)).where(QaHost.session_id == session.id)) >= MAX_HOSTS:
            db.session.rollback()
            raise Conflict(f"A session has at most {MAX_HOSTS} hosts.", "user_id")
        row = QaHost(session_id=session.id, user_id=uid, added_by_id=actor.id)
        db.session.add(row)
        audit.record("qa.host_added", actor=actor, target_type="user", target_id=uid, room_id=session.room_id,
                     detail={"session_id": session.id})
        services.record_event(session.room_id, "qa.updated", {"session": session_event(session)})
    db.session.commit()
    return row


# -- asking --------------------------------------------------------------------------------------------

_threads, _posts = Thread.__table__, Post.__table__
_BUMP = (update(_threads).where(_threads.c.id == bindparam("tid"))
         .values(post_count=_threads.c.post_count + 1, last_post_at=bindparam("now"), last_post_id=bindparam("pid")))


def _insert_post(thread: Thread, parent: Post, author_id: Optional[int], body: str) -> Post:
    """A question (a reply to the session's opening post) or a written answer (a reply to the question),
    written here rather than by rooms/posts.py create_post, whose post always has its writer as author
    and is announced at once: an anonymous question has no author, and a question waiting for approval
    is announced to nobody but the session's moderators."""
    now = utcnow()
    post = Post(thread_id=thread.id, parent_id=parent.id, author_id=author_id, body=body, html=render(body),
                depth=parent.depth + 1, created_at=now, attachments=[])
    db.session.add(post)
    db.session.flush()
    post.path = f"{parent.path}/{path_segment(post.id)}"
    db.session.execute(_BUMP, {"tid": thread.id, "now": now, "pid": post.id})
    if author_id is not None and thread.room.non_attributed:
        pseudonyms.assign(thread.id, author_id)
    db.session.flush()
    return post


def _moderators(session: QaSession) -> list[int]:
    """Who hears of a question waiting for approval: the session's hosts and the room's moderators and
    owners, while they may read the room."""
    mods = select(Membership.user_id).where(Membership.room_id == session.room_id,
                                            Membership.role.in_(policy.MODERATING_ROLES))
    host = select(QaHost.user_id).where(QaHost.session_id == session.id)
    return sorted(db.session.scalars(select(User.id).where(User.id.in_(mods.union(host)),
                                                           policy.room_readers_clause(session.room))))


def _announce(q: QaQuestion, name: str = "qa.question") -> None:
    services.record_event(q.room_id, name, {"question": question_event(q)})


def ask(actor: User, session_id: object, *, body: object, anonymous: object = False) -> QaQuestion:
    session = get_session(actor, session_id)
    text = validate.text(body, "body", max_len=MAX_QUESTION, multiline=True, label="Question")
    if not isinstance(anonymous, bool):
        raise Invalid("anonymous must be true or false.", "anonymous")
    if session.ended:
        raise Conflict("This Q&A session has ended: it no longer takes questions.")
    if not policy.can_ask_question(actor, session):
        raise Forbidden("This room is archived: it can be read but not written to." if session.room.archived
                        else "You can read this room but not ask questions in it.")
    db.begin_write()
    try:
        db.session.refresh(session)
        if session.ended:
            raise Conflict("This Q&A session has ended: it no longer takes questions.")
        pending = session.moderated and not policy.may_moderate_qa(actor, session)
        opening = room_posts.opening_post(session.thread)
        post = _insert_post(session.thread, opening, None if anonymous else actor.id, text)
        if pending:
            post.hidden_at, post.hidden_reason = utcnow(), PENDING_NOTE
        q = QaQuestion(session_id=session.id, room_id=session.room_id, post_id=post.id, asker_id=actor.id,
                       anonymous=anonymous, status="pending" if pending else "open", vote_count=0,
                       edited_by_moderator=False, answered_aloud=False, created_at=post.created_at)
        db.session.add(q)
        db.session.flush()
        if pending:
            events.queue(db.session, "qa.pending", {"session_id": session.id, "question_id": q.id},
                         to_users=tuple(_moderators(session)))
        else:
            services.record_event(session.room_id, "post.created", {"post": post_dict(post)})
            _announce(q)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return q


# -- voting --------------------------------------------------------------------------------------------

_questions = QaQuestion.__table__
_COUNT = (update(_questions).where(_questions.c.id == bindparam("qid"))
          .values(vote_count=_questions.c.vote_count + bindparam("step")).returning(_questions.c.vote_count))


def _question_in_write(actor: User, qid: int) -> QaQuestion:
    """Inside the write: the question with its state as the change relies on it (on PostgreSQL its row
    locked, so a vote never lands on a question being merged away or answered meanwhile)."""
    if not db.is_sqlite:
        db.session.execute(select(QaQuestion.id).where(QaQuestion.id == qid).with_for_update())
    q = get_question(actor, qid)
    db.session.refresh(q)
    return q


def _check_vote(actor: User, q: QaQuestion) -> None:
    if q.session.ended:
        raise Conflict("This Q&A session has ended: votes can no longer change.")
    if q.status not in LIVE_STATUSES:
        raise Conflict(f"This question is {STATUSES[q.status].lower()}: votes can no longer change.")
    if not policy.can_ask_question(actor, q.session):
        raise Forbidden("You can read this room but not vote in it.")


def _tally(q: QaQuestion, step: int) -> None:
    count = db.session.connection().execute(_COUNT, {"qid": q.id, "step": step}).scalar_one()
    set_committed_value(q, "vote_count", count)   # what the plain-SQL UPDATE wrote
    services.record_event(q.room_id, "qa.voted", {"question_id": q.id, "session_id": q.session_id, "votes": count})


def vote(actor: User, question_id: object) -> QaQuestion:
    """One upvote per person per question."""
    qid = validate.int_id(question_id, "question_id")
    db.begin_write()
    try:
        q = _question_in_write(actor, qid)
        _check_vote(actor, q)
        if db.session.scalar(select(QaVote.id).where(QaVote.question_id == q.id,
                                                     QaVote.user_id == actor.id)) is not None:
            raise Conflict("You have already voted for this question.")
        db.session.add(QaVote(question_id=q.id, user_id=actor.id, created_at=utcnow()))
        db.session.flush()
        _tally(q, 1)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("You have already voted for this question.") from None
    except BaseException:
        db.session.rollback()
        raise
    return q


def withdraw(actor: User, question_id: object) -> QaQuestion:
    qid = validate.int_id(question_id, "question_id")
    db.begin_write()
    try:
        q = _question_in_write(actor, qid)
        _check_vote(actor, q)
        n = db.session.execute(delete(QaVote).where(QaVote.question_id == q.id, QaVote.user_id == actor.id)
                               .execution_options(synchronize_session=False)).rowcount
        if not n:
            raise Conflict("You have not voted for this question.")
        _tally(q, -1)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return q
