"""Polls and proposals (issue 13): one function per operation. Each checks permission through
rooms/policy.py, writes in one transaction, records a numbered room event and commits, so the
live pages and the search index hear of it only after the commit.

A poll is created with its thread (rooms/posts.py create_thread: the question and options are the
opening post, so search, moderation, labels, non-attributed rooms and retention apply unchanged).
Closing records the outcome statement on the poll and posts it in the thread.

Anonymous polls: a vote's account is stored only so each account votes once and can change its
vote; it is never put in a response, an event, the search index, an e-mail or an export, to anyone
(moderators included). Non-anonymous polls show who voted what to those who see the results
(`policy.sees_poll_voters`), never in a non-attributed room."""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from collab.extensions import db
from rooms import policy
from rooms import posts as room_posts
from rooms.live import coalesce
from rooms.meetings import access
from rooms.meetings.models import Meeting
from rooms.models import Post
from rooms.polls import tally as counting
from rooms.polls.models import KINDS, MAX_SCORE, PROPOSAL_OPTIONS, RESULTS, Poll, PollVote
from rooms.polls.serialize import options as poll_options
from rooms.polls.serialize import poll_dict, public_dict, with_quorum
from rooms.services import get_room, record_event

log = logging.getLogger(__name__)

MAX_OPTIONS = 20
MAX_OPTION_LEN = 200
MAX_REASON = 2000
MAX_OUTCOME = 5000
DEFAULT_DOTS = 8
LOCKED = ("anonymous", "results", "kind", "options", "dots")
KIND_NAMES = {"single": "Single choice", "multiple": "Multiple choice", "ranked": "Ranked choice",
              "score": f"Score (0 to {MAX_SCORE})", "dot": "Dot vote", "proposal": "Proposal"}
RESULT_NAMES = {"always": "always", "after_vote": "after voting", "after_close": "after the poll closes"}


# -- reading ---------------------------------------------------------------------------------------

def get_poll(actor: Optional[User], poll_id: object) -> Poll:
    pid = validate.int_id(poll_id, "poll_id")
    poll = db.session.get(Poll, pid)
    if poll is None or not policy.may_see_poll(actor, poll):
        raise NotFound("Poll not found.")
    return poll


def poll_for_thread(thread_id: int) -> Optional[Poll]:
    """The poll of a thread the caller has already been allowed to read, if it has one."""
    return db.session.scalar(select(Poll).where(Poll.thread_id == thread_id))


def _ballots(poll: Poll) -> list[list[int]]:
    return [json.loads(c) for c in db.session.scalars(
        select(PollVote.choices).where(PollVote.poll_id == poll.id).order_by(PollVote.id))]


def tally(poll: Poll) -> dict[str, Any]:
    """The counts, for code that has already checked `policy.may_see_poll_results`."""
    return counting.count(poll.kind, len(poll_options(poll)), _ballots(poll))


def my_vote(actor: Optional[User], poll: Poll) -> Optional[dict[str, Any]]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    v = db.session.scalar(select(PollVote).where(PollVote.poll_id == poll.id, PollVote.user_id == actor.id))
    return None if v is None else {"choices": json.loads(v.choices), "reason": v.reason or None}


def view(actor: User, poll: Poll, *, counts: Optional[dict[str, Any]] = None,
         mine: Optional[dict[str, Any]] = None, with_voters: bool = True) -> dict[str, Any]:
    """The poll as `actor` may see it (rooms/polls/serialize.py poll_dict). `counts`, `mine`: the tally
    and the caller's ballot when the caller has just computed them (a vote), so they are not read again.
    `with_voters` False: without the list of who voted what (a vote's answer: the list grows with every
    vote, and sending it with each of 1,000 votes made voting cost grow with the number of voters)."""
    from_me = mine if mine is not None else my_vote(actor, poll)
    sees = policy.may_see_poll_results(actor, poll, voted=from_me is not None)
    voters = None
    if with_voters and sees and policy.sees_poll_voters(actor, poll):
        rows = db.session.execute(select(User.id, User.name, PollVote.choices, PollVote.reason)
                                  .join(User, User.id == PollVote.user_id)
                                  .where(PollVote.poll_id == poll.id).order_by(User.name)).all()
        voters = [{"user": {"id": r.id, "name": r.name}, "choices": json.loads(r.choices),
                   "reason": r.reason or None} for r in rows]
    counted = (counts if counts is not None else tally(poll)) if sees else None
    return poll_dict(poll, viewer=actor, tally=counted, my_vote=from_me, voters=voters)


def _shown_to_room(poll: Poll) -> bool:
    """Whether the room's channel (every reader) may carry the poll's text and tallies: not once its
    opening post is hidden or removed (then `policy.may_see_poll` narrows or ends who sees it)."""
    post = db.session.get(Post, poll.post_id, options=[lazyload(Post.attachments)]) if poll.post_id else None
    return post is not None and not post.deleted and post.hidden_at is None


def _room_poll(poll: Poll) -> dict[str, Any]:
    """The poll as room events carry it: public_dict, or only its ids if it is not shown to the room."""
    if _shown_to_room(poll):
        return public_dict(poll)
    return {"id": poll.id, "room_id": poll.room_id, "thread_id": poll.thread_id, "hidden": True,
            "closed": poll.closed_at is not None}


# -- creating --------------------------------------------------------------------------------------

def _bool(value: object, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false.", field)
    return value


def _options(kind: str, value: object) -> list[str]:
    if kind == "proposal":
        if value not in (None, [], list(PROPOSAL_OPTIONS)):
            raise Invalid("A proposal's options are always Agree, Abstain, Disagree and Block: send none.",
                          "options")
        return list(PROPOSAL_OPTIONS)
    if not isinstance(value, list):
        raise Invalid("options must be a list of texts.", "options")
    opts = [validate.text(o, "options", max_len=MAX_OPTION_LEN, label="Each option") for o in value]
    if len(opts) < 2:
        raise Invalid("Give at least two options.", "options")
    if len(opts) > MAX_OPTIONS:
        raise Invalid(f"At most {MAX_OPTIONS} options.", "options")
    if len({o.casefold() for o in opts}) != len(opts):
        raise Invalid("Two options are the same: make each one different.", "options")
    return opts


def _positive(value: object, field: str, label: str, hi: int) -> Optional[int]:
    if value is None or value == "":
        return None
    if isinstance(value, str) and validate.digits(value) and len(value) < 7:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise Invalid(f"{label} must be a whole number from 1 to {hi}.", field)
    return value


def _closes_at(value: object) -> Optional[datetime]:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    else:
        when = validate.iso_datetime(value, "closes_at")
    if when <= utcnow():
        raise Invalid("The closing time must be in the future.", "closes_at")
    return when


def _opening_text(question: str, kind: str, opts: list[str], dots: Optional[int], anonymous: bool,
                  results: str, quorum: Optional[int], body: str) -> str:
    lines = [f"**{KIND_NAMES[kind]} poll:** {question}", ""]
    lines += [f"{i + 1}. {o}" for i, o in enumerate(opts)]
    lines += ["", f"Results are shown {RESULT_NAMES[results]}." + (" Votes are anonymous." if anonymous else "")]
    if dots:
        lines.append(f"Each voter places {dots} dots.")
    if quorum:
        lines.append(f"Quorum: {quorum} voters.")
    if body:
        lines += ["", body]
    return "\n".join(lines)


def create_poll(actor: User, room_id: object, *, question: object, kind: object, options: object = None,
                closes_at: object = None, anonymous: object = False, results: object = "always",
                quorum: object = None, dots: object = None, body: object = "", meeting_id: object = None) -> Poll:
    """A poll and its thread. Every input is checked before anything is written. `meeting_id`: a
    meeting of the same room, which its chairs take the poll in (its outcome goes into the minutes)."""
    room = get_room(actor, room_id)
    if not policy.can_post(actor, room):
        raise Forbidden("You can read this room but not start a poll in it.")
    meeting = meeting_for_new_poll(actor, room.id, meeting_id)
    q = validate.text(question, "question", max_len=300, label="Question")
    k = validate.choice(kind, "kind", KINDS, label="Kind")
    opts = _options(k, options)
    res = validate.choice(results if results is not None else "always", "results", RESULTS, label="Results")
    anon = _bool(anonymous, "anonymous")
    quo = _positive(quorum, "quorum", "Quorum", 1_000_000)
    budget = (_positive(dots, "dots", "Dots", 100) or DEFAULT_DOTS) if k == "dot" else None
    if k != "dot" and dots not in (None, ""):
        raise Invalid("Only dot votes have dots.", "dots")
    closes = _closes_at(closes_at)
    extra = validate.text(body, "body", max_len=10_000, required=False, multiline=True, label="Details")
    thread = room_posts.create_thread(actor, room.id, title=q[:200],
                                      body=_opening_text(q, k, opts, budget, anon, res, quo, extra))
    db.begin_write()
    post_id = db.session.scalar(select(Post.id).where(Post.thread_id == thread.id, Post.parent_id.is_(None)))
    poll = Poll(room_id=room.id, thread_id=thread.id, post_id=post_id, created_by_id=actor.id, question=q,
                kind=k, options=json.dumps(opts), dots=budget, anonymous=anon, results=res, quorum=quo,
                closes_at=closes, outcome="", created_at=utcnow(), meeting_id=meeting.id if meeting else None)
    db.session.add(poll)
    db.session.flush()
    record_event(room.id, "poll.created", {"poll": public_dict(poll)})
    db.session.commit()
    return poll


def meeting_for_new_poll(actor: User, room_id: int, meeting_id: object) -> Optional[Meeting]:
    """The meeting a new poll belongs to, if one is asked for: seen by the actor (else "not found"),
    in the poll's room, not ended, and the actor one who may chair it (meetings/access.py may_end)."""
    if meeting_id is None or meeting_id == "":
        return None
    meeting = access.get_meeting(actor, meeting_id)
    if meeting.room_id != room_id:
        raise Invalid("That meeting belongs to another room.", "meeting_id")
    if meeting.ended:
        raise Conflict("That meeting has ended: start the poll in its room instead.", "meeting_id")
    if not access.may_end(actor, meeting):
        raise Forbidden("Only the meeting's chairs and the room's moderators can take a poll in it.")
    return meeting


def meeting_polls(meeting: Meeting) -> list[Poll]:
    """The polls taken in a meeting (the caller may see the meeting), oldest first, without those
    whose opening post was hidden or removed (`_shown_to_room`: the minutes are read by the whole room)."""
    polls = db.session.scalars(select(Poll).where(Poll.meeting_id == meeting.id).order_by(Poll.id))
    return [p for p in polls if _shown_to_room(p)]


def outcome_lines(poll: Poll) -> list[str]:
    """What the minutes say of a poll: closed, its outcome statement and the counts (no voter is ever
    named); open, only that it is open (its tally may be hidden until it closes)."""
    if poll.closed_at is None:
        return [f"Still open{' (results hidden until it closes)' if poll.results != 'always' else ''}."]
    return [f"Outcome: {poll.outcome}", *_summary(poll, tally(poll)).splitlines()]


def change_poll(actor: User, poll_id: object, changes: dict[str, Any]) -> Poll:
    """Only the closing time can change (creator or moderators, while open); anonymity, results
    visibility, kind and options are locked at creation: any attempt is refused, nothing changed."""
    poll = get_poll(actor, poll_id)
    if not policy.may_close_poll(actor, poll):
        raise Forbidden("Only the poll's creator and the room's moderators can change it.")
    locked = [k for k in LOCKED if k in changes]
    if locked:
        raise Conflict(f"{', '.join(locked)}: chosen when the poll was created and locked; "
                       "start a new poll to change them.", locked[0])
    unknown = sorted(set(changes) - {"closes_at"})
    if unknown:
        raise Invalid(f"Only closes_at can be changed ({unknown[0]} cannot).", unknown[0])
    if poll.closed_at is not None:
        raise Conflict("This poll is closed.", "closes_at")
    closes = _closes_at(changes.get("closes_at"))
    db.begin_write()
    db.session.refresh(poll)
    if poll.closed_at is not None:
        db.session.commit()
        raise Conflict("This poll is closed.", "closes_at")
    poll.closes_at = closes
    record_event(poll.room_id, "poll.updated", {"poll": _room_poll(poll)})
    db.session.commit()
    return poll


# -- voting ----------------------------------------------------------------------------------------

def _closed_message(poll: Poll) -> str:
    return "This poll is closed: votes can no longer be cast or changed."


def _is_past_close(poll: Poll) -> bool:
    return poll.closes_at is not None and poll.closes_at <= utcnow()


def vote(actor: User, poll_id: object, *, choices: object,
         reason: object = "") -> tuple[dict[str, Any], bool, dict[str, Any], Poll]:
    """Cast or change the caller's vote (until the poll closes). Returns (their ballot, first vote?,
    the tally just after it, the poll) -- the tally for `view`, which shows it only if allowed.
    Everything is checked inside the one write transaction, with the poll's row locked (PostgreSQL;
    SQLite's write lock does the same), so a close and a vote never cross and every vote is counted
    in the tally its event carries."""
    pid = validate.int_id(poll_id, "poll_id")
    for attempt in (1, 2):
        try:
            return _vote_once(actor, pid, choices, reason)
        except IntegrityError:  # two first votes of one account at once (PostgreSQL): the second updates
            db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _vote_once(actor: User, pid: int, choices: object,
               reason: object) -> tuple[dict[str, Any], bool, dict[str, Any], Poll]:
    db.begin_write()
    try:
        poll = db.session.scalar(select(Poll).where(Poll.id == pid).with_for_update(of=Poll)
                                 .execution_options(populate_existing=True))
        if poll is None or not policy.may_see_poll(actor, poll):
            raise NotFound("Poll not found.")
        if poll.closed_at is not None or _is_past_close(poll):
            raise Conflict(_closed_message(poll), "choices")
        if not policy.may_vote_in_poll(actor, poll):
            raise Forbidden("You can read this poll but not vote in it.")
        why = validate.text(reason, "reason", max_len=MAX_REASON, required=False, multiline=True, label="Reason")
        ballot = counting.check_ballot(poll.kind, len(poll_options(poll)), choices, dots=poll.dots, reason=why)
    except ServiceError:
        db.session.commit()  # nothing written
        raise
    now = utcnow()
    existing = db.session.scalar(select(PollVote).where(PollVote.poll_id == poll.id, PollVote.user_id == actor.id))
    created = existing is None
    if created:
        db.session.add(PollVote(poll_id=poll.id, user_id=actor.id, choices=json.dumps(ballot), reason=why,
                                created_at=now, updated_at=now))
    else:
        existing.choices, existing.reason, existing.updated_at = json.dumps(ballot), why, now
    db.session.flush()
    counts = _record_tally(poll)
    db.session.commit()
    return {"choices": ballot, "reason": why or None}, created, counts, poll


def _record_tally(poll: Poll) -> dict[str, Any]:
    """Inside the write: the room hears that the count changed (how many voted, nothing more), and
    the new tally goes, after commit, only to those who may see it (rooms/polls/realtime.py, which
    coalesces both by `order`, taken here while the write holds the poll): the room's channel when the
    results are public, else the voters still reading the room, each on their own channel; nobody while
    hidden until close. No voter is ever named."""
    counts = tally(poll)
    if not _shown_to_room(poll):
        return counts   # hidden by a moderator: its few readers see the tally on the page, not live
    order = coalesce.next_order()
    events.queue(db.session, "poll.voted", {"poll_id": poll.id, "thread_id": poll.thread_id,
                                            "room_id": poll.room_id, "voters": counts["voters"]},
                 to_room=poll.room_id, order=order)
    payload = {"poll_id": poll.id, "thread_id": poll.thread_id, "results": with_quorum(poll, counts)}
    if poll.results == "always":
        events.queue(db.session, "poll.tally", payload, room_id=None, to_room=poll.room_id, order=order)
    elif poll.results == "after_vote":
        readers = policy.room_readers_clause(poll.room)
        ids = list(db.session.scalars(select(PollVote.user_id).join(User, User.id == PollVote.user_id)
                                      .where(PollVote.poll_id == poll.id, readers)))
        events.queue(db.session, "poll.tally", payload, room_id=None, to_users=ids, order=order)
    return counts


# -- closing ---------------------------------------------------------------------------------------

def _summary(poll: Poll, counts: dict[str, Any]) -> str:
    opts = poll_options(poll)
    n = counts["voters"]
    lines = [f"{n} {'person' if n == 1 else 'people'} voted."]
    if poll.quorum is not None:
        lines.append("Quorum reached." if n >= poll.quorum else f"Quorum of {poll.quorum} not reached.")
    if poll.kind == "ranked":
        w = counts.get("winner")
        lines.append(f"Winner after {len(counts['rounds'])} round(s): {opts[w]}." if w is not None else "No winner.")
    else:
        unit = {"score": "points", "dot": "dots"}.get(poll.kind, "votes")
        lines += [f"- {o}: {t} {unit}" for o, t in zip(opts, counts["totals"])]
    return "\n".join(lines)


def close(actor: Optional[User], poll_id: object, *, outcome: object = "", automatic: bool = False) -> Poll:
    """Close a poll (its creator or the room's moderators; `automatic`: the closing time has come,
    actor None) and record the outcome statement: on the poll, in the `poll.closed` event with the
    final results (everyone in the room may now see them) and as a post in the thread."""
    if automatic:
        poll = db.session.get(Poll, validate.int_id(poll_id, "poll_id"))
        if poll is None:
            raise NotFound("Poll not found.")
    else:
        poll = get_poll(actor, poll_id)
        if not policy.may_close_poll(actor, poll):
            raise Forbidden("Only the poll's creator and the room's moderators can close it.")
    statement = validate.text(outcome, "outcome", max_len=MAX_OUTCOME, required=False, multiline=True,
                              label="Outcome")
    if poll.closed_at is not None:
        raise Conflict("This poll is already closed.", "outcome")
    db.begin_write()
    now = utcnow()
    claimed = db.session.execute(update(Poll).where(Poll.id == poll.id, Poll.closed_at.is_(None))
                                 .values(closed_at=now, closed_by_id=actor.id if actor else None,
                                         outcome=statement or ("Closed automatically at its closing time."
                                                               if automatic else "Closed."))
                                 .execution_options(synchronize_session=False)).rowcount
    if not claimed:
        db.session.commit()
        raise Conflict("This poll is already closed.", "outcome")
    db.session.refresh(poll)
    counts = tally(poll)
    shown = _shown_to_room(poll)
    record_event(poll.room_id, "poll.closed", {"poll": _room_poll(poll),
                                               "results": with_quorum(poll, counts) if shown else None})
    db.session.commit()
    _post_outcome(actor, poll, counts)
    return poll


def _post_outcome(actor: Optional[User], poll: Poll, counts: dict[str, Any]) -> None:
    """The outcome as a reply to the poll's opening post, by whoever closed it (closing by time: the
    poll's creator). If it cannot be posted (the room archived meanwhile, the creator gone) the
    outcome stays on the poll."""
    author = actor if actor is not None else (db.session.get(User, poll.created_by_id)
                                              if poll.created_by_id else None)
    if author is None:
        return
    text = f"**Outcome of the poll:** {poll.outcome}\n\n{_summary(poll, counts)}"
    try:
        post, _ = room_posts.create_post(author, poll.thread_id, body=text, parent_id=poll.post_id)
    except ServiceError as err:
        log.info("poll %s: outcome not posted in its thread (%s)", poll.id, err.message)
        return
    db.begin_write()
    db.session.execute(update(Poll).where(Poll.id == poll.id).values(outcome_post_id=post.id)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(poll)


def close_due(now: Optional[datetime] = None) -> int:
    """Close every open poll whose closing time has come (rooms/polls/jobs.py); how many."""
    now = now or utcnow()
    due = list(db.session.scalars(select(Poll.id).where(Poll.closed_at.is_(None), Poll.closes_at.is_not(None),
                                                        Poll.closes_at <= now).order_by(Poll.id)))
    db.session.commit()
    done = 0
    for pid in due:
        try:
            close(None, pid, automatic=True)
            done += 1
        except Conflict:
            db.session.rollback()  # closed meanwhile by someone (or another process)
    return done
