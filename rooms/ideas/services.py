"""Idea operations, one function each (the pages, the JSON API and tests call them): settings and
decision-makers of a room, posting an idea (a thread, made by rooms/posts.py, with its idea row in
the same write), voting and withdrawing a vote, and changing the status with a response.

Each checks permission through rooms/policy.py, writes in one transaction, records a numbered room
event and commits; live readers hear of it only after the commit. Votes count against the room's
budget while their idea is open (new, under review), so closing an idea gives its votes back.
"""
from __future__ import annotations

from datetime import date
from typing import Iterable, Optional

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from auth import audit
from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Conflict, Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import policy, services, watching
from rooms import posts as room_posts
from rooms.ideas.models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    SAID_DONE_STATUSES,
    STATUSES,
    TRANSITIONS,
    Idea,
    IdeaDecider,
    IdeaSettings,
    IdeaStatusChange,
    IdeaVote,
)
from rooms.ideas.serialize import event_dict
from rooms.live import coalesce
from rooms.moderation import notice_in_tx
from rooms.models import Post, Room, Thread

MAX_BUDGET = 1000
MAX_RESPONSE = 5000
SORTS = {"votes": "Most votes", "newest": "Newest"}
FILTERS = {"all": "All ideas", "open": "Open (new or under review)", **STATUSES}


# -- reading ------------------------------------------------------------------------------------------

def get_idea(actor: Optional[User], idea_id: object) -> Idea:
    iid = validate.int_id(idea_id, "idea_id")
    idea = db.session.get(Idea, iid)
    if idea is None or not policy.may_see_idea(actor, idea):
        raise NotFound("Idea not found.")
    return idea


def idea_for_thread(thread_id: int) -> Optional[Idea]:
    return db.session.scalar(select(Idea).where(Idea.thread_id == thread_id))


def room_ideas(actor: User, room: Room, *, sort: object = "votes", status: object = "all",
               limit: int = 200) -> list[Idea]:
    """A room's ideas (the caller may read the room: services.get_room first), sorted and filtered."""
    sort_v = validate.choice(sort or "votes", "sort", SORTS)
    status_v = validate.choice(status or "all", "status", FILTERS)
    q = select(Idea).where(Idea.room_id == room.id)
    if status_v == "open":
        q = q.where(Idea.status.in_(OPEN_STATUSES))
    elif status_v != "all":
        q = q.where(Idea.status == status_v)
    order = (Idea.vote_count.desc(), Idea.id.desc()) if sort_v == "votes" else (Idea.id.desc(),)
    return list(db.session.scalars(q.order_by(*order).limit(limit)))


def my_votes(actor: User, idea_ids: Iterable[int]) -> set[int]:
    ids = list(idea_ids)
    if not ids:
        return set()
    return set(db.session.scalars(select(IdeaVote.idea_id).where(IdeaVote.user_id == actor.id,
                                                                 IdeaVote.idea_id.in_(ids))))


def open_votes_used(actor: User, room: Room) -> int:
    return db.session.scalar(
        select(func.count(IdeaVote.id)).join(Idea, Idea.id == IdeaVote.idea_id)
        .where(IdeaVote.user_id == actor.id, IdeaVote.room_id == room.id, Idea.status.in_(OPEN_STATUSES))) or 0


def budget(actor: User, room: Room) -> Optional[dict[str, int]]:
    """{"total", "used", "left"} of the caller's open votes in the room; None when there is no limit."""
    total = policy.idea_settings(room).vote_budget
    if total is None:
        return None
    used = open_votes_used(actor, room)
    return {"total": total, "used": used, "left": max(0, total - used)}


def deciders(room: Room) -> list[IdeaDecider]:
    return list(db.session.scalars(select(IdeaDecider).where(IdeaDecider.room_id == room.id)
                                   .order_by(IdeaDecider.id)))


def history(idea: Idea) -> list[IdeaStatusChange]:
    return list(db.session.scalars(select(IdeaStatusChange).where(IdeaStatusChange.idea_id == idea.id)
                                   .order_by(IdeaStatusChange.id)))


def said_done(actor: User, *, room: Optional[Room] = None, status: object = "", room_id: object = None,
              q: object = "", limit: int = 500) -> list[Idea]:
    """"You said, we did": adopted and done ideas with their responses, newest decision first, in one
    room (read by the caller) or in every room the caller may read; optionally one status, one room,
    or titles containing `q`."""
    status_v = validate.choice(status, "status", {s: STATUSES[s] for s in SAID_DONE_STATUSES}) if status else None
    text = validate.text(q, "q", max_len=200, required=False) if q else ""
    stmt = select(Idea).join(Thread, Thread.id == Idea.thread_id)
    if room is not None:
        stmt = stmt.where(Idea.room_id == room.id)
    else:
        stmt = stmt.join(Room, Room.id == Idea.room_id).where(policy.readable_rooms_clause(actor))
        rid = validate.int_id(room_id, "room_id", required=False)
        if rid is not None:
            stmt = stmt.where(Idea.room_id == rid)
    stmt = stmt.where(Idea.status.in_([status_v] if status_v else SAID_DONE_STATUSES))
    if text:
        stmt = stmt.where(func.lower(Thread.title).contains(text.lower(), autoescape=True))
    return list(db.session.scalars(stmt.order_by(Idea.decided_at.desc(), Idea.id.desc()).limit(limit)))


# -- settings and decision-makers --------------------------------------------------------------------

def _budget_value(value: object) -> Optional[int]:
    if value is None or value == "" or value == 0 or value == "0":
        return None
    n = validate.int_id(value, "vote_budget")
    if n > MAX_BUDGET:
        raise Invalid(f"vote_budget must be a whole number from 1 to {MAX_BUDGET}, or empty for no limit.",
                      "vote_budget")
    return n


def update_settings(actor: User, room_id: object, *, enabled: object, vote_budget: object = None,
                    judge_on_merit: object = False) -> IdeaSettings:
    room = services.get_room(actor, room_id)
    if not policy.can_manage_room(actor, room) or room.archived:
        raise Forbidden("Only the room's owners can change its idea settings.")
    budget_v = _budget_value(vote_budget)
    if not all(isinstance(v, bool) for v in (enabled, judge_on_merit)):
        raise Invalid("enabled and judge_on_merit must be true or false.", "enabled")
    db.begin_write()
    s = db.session.get(IdeaSettings, room.id)
    if s is None:
        s = IdeaSettings(room_id=room.id)
        db.session.add(s)
    s.enabled, s.vote_budget, s.judge_on_merit = enabled, budget_v, judge_on_merit
    audit.record("ideas.settings", actor=actor, target_type="room", target_id=room.id, room_id=room.id,
                 detail={"enabled": enabled, "vote_budget": budget_v, "judge_on_merit": judge_on_merit})
    services.record_event(room.id, "ideas.settings", {"ideas": {
        "enabled": enabled, "vote_budget": budget_v, "judge_on_merit": judge_on_merit}})
    db.session.commit()
    return s


def name_decider(actor: User, room_id: object, user_id: object, *, named: bool = True) -> None:
    """Name someone who may decide on the room's ideas (or take it back): owners and moderators."""
    room = services.get_room(actor, room_id)
    if not policy.can_name_idea_deciders(actor, room):
        raise Forbidden("Only the room's owners and moderators can name decision-makers.")
    uid = validate.int_id(user_id, "user_id")
    target = db.session.get(User, uid)
    if target is None or not target.active or not policy.can_read_room(target, room):
        raise Invalid("That account cannot read this room.", "user_id")
    db.begin_write()
    row = db.session.scalar(select(IdeaDecider).where(IdeaDecider.room_id == room.id, IdeaDecider.user_id == uid))
    if named and row is None:
        db.session.add(IdeaDecider(room_id=room.id, user_id=uid, named_by_id=actor.id))
    elif not named and row is not None:
        db.session.delete(row)
    audit.record("ideas.decider_named" if named else "ideas.decider_removed", actor=actor, target_type="user",
                 target_id=uid, room_id=room.id)
    db.session.commit()


# -- posting and voting --------------------------------------------------------------------------------

def create_idea(actor: User, room_id: object, *, title: object, body: object) -> Idea:
    room = services.get_room(actor, room_id)
    if not policy.idea_settings(room).enabled:
        raise Forbidden("This room does not take ideas: its owners can switch ideas on in its settings.")
    made: list[Idea] = []

    def add_idea(thread: Thread, _post: Post) -> None:
        if not policy.can_post_idea(actor, room):
            raise Forbidden("You may not post ideas in this room.")
        idea = Idea(thread_id=thread.id, room_id=room.id, status="new", vote_count=0, created_at=thread.created_at)
        db.session.add(idea)
        db.session.flush()
        services.record_event(room.id, "idea.created", {"idea": event_dict(idea)})
        made.append(idea)

    room_posts.create_thread(actor, room.id, title=title, body=body, within=add_idea)
    return made[0]


_ideas = Idea.__table__
_COUNT = (update(_ideas).where(_ideas.c.id == bindparam("iid"))
          .values(vote_count=_ideas.c.vote_count + bindparam("step")).returning(_ideas.c.vote_count))


def _check_vote(actor: User, idea: Idea) -> None:
    if not idea.is_open:
        raise Conflict(f"This idea is closed ({STATUSES[idea.status].lower()}): votes can no longer change.")
    if not policy.can_vote_idea(actor, idea.room):
        if idea.room.archived:
            raise Forbidden("This room is archived: it can be read but not written to.")
        raise Forbidden("You can read this room but not vote in it.")


def _tally(idea: Idea, step: int) -> int:
    """Count the vote; the room hears the new count after commit as `idea.voted` (who voted, never),
    coalesced per idea (rooms/live/coalesce.py; `order` taken here, while the write holds the idea)."""
    count = db.session.connection().execute(_COUNT, {"iid": idea.id, "step": step}).scalar_one()
    events.queue(db.session, "idea.voted", {"idea_id": idea.id, "thread_id": idea.thread_id,
                                            "room_id": idea.room_id, "votes": count},
                 to_room=idea.room_id, order=coalesce.next_order())
    return count


def _idea_in_write(actor: User, iid: int) -> Idea:
    """Inside the vote's write: the idea (as get_idea) with its status as the vote relies on it. On
    PostgreSQL the voter's row and then the idea's are locked, so two votes of one person never both fit
    the last slot of the budget and a vote never lands on an idea being closed (SQLite's write lock is
    the whole database)."""
    if not db.is_sqlite:
        db.session.execute(select(User.id).where(User.id == actor.id).with_for_update())
    idea = get_idea(actor, iid)
    if not db.is_sqlite:
        set_committed_value(idea, "status", db.session.scalar(
            select(Idea.status).where(Idea.id == iid).with_for_update()))
    _check_vote(actor, idea)
    return idea


def vote(actor: User, idea_id: object) -> Idea:
    """One vote per person per idea, within the room's budget of open votes. One write transaction: the
    checks read what the vote relies on, and nothing is asked twice."""
    iid = validate.int_id(idea_id, "idea_id")
    db.begin_write()
    try:
        idea = _idea_in_write(actor, iid)
        if db.session.scalar(select(IdeaVote.id).where(IdeaVote.idea_id == idea.id,
                                                       IdeaVote.user_id == actor.id)) is not None:
            raise Conflict("You have already voted for this idea.")
        total = policy.idea_settings(idea.room).vote_budget
        if total is not None and open_votes_used(actor, idea.room) >= total:
            raise Conflict(f"You have used all {total} of your votes in this room. Withdraw a vote, or wait "
                           "until an idea you voted for is decided: its vote comes back then.")
        db.session.add(IdeaVote(idea_id=idea.id, user_id=actor.id, room_id=idea.room_id, created_at=utcnow()))
        db.session.flush()
        count = _tally(idea, 1)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("You have already voted for this idea.") from None
    except BaseException:
        db.session.rollback()
        raise
    set_committed_value(idea, "vote_count", count)   # what the plain-SQL UPDATE wrote
    return idea


def withdraw(actor: User, idea_id: object) -> Idea:
    """Take back your vote while the idea is open (its budget slot comes back at once)."""
    iid = validate.int_id(idea_id, "idea_id")
    db.begin_write()
    try:
        idea = _idea_in_write(actor, iid)
        n = db.session.execute(delete(IdeaVote).where(IdeaVote.idea_id == idea.id, IdeaVote.user_id == actor.id)
                               .execution_options(synchronize_session=False)).rowcount
        if not n:
            raise Conflict("You have not voted for this idea.")
        count = _tally(idea, -1)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    set_committed_value(idea, "vote_count", count)
    return idea


# -- status ------------------------------------------------------------------------------------------

def _review_date(value: object) -> Optional[date]:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid("review_on must be a date like 2026-03-01.", "review_on")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid("review_on must be a date like 2026-03-01.", "review_on") from None


def _followers(idea: Idea) -> set[int]:
    """Who hears of a status change besides the author: the voters and the watchers of the idea's thread
    (rooms/watching.py), unless the thread is muted for them, and only while they may read the room."""
    voters = select(User.id).where(User.id.in_(select(IdeaVote.user_id).where(IdeaVote.idea_id == idea.id)),
                                   policy.room_readers_clause(idea.room))
    return set(db.session.scalars(voters.union(watching.thread_followers(idea.thread)))) - set(
        db.session.scalars(watching.thread_muters(idea.thread)))


def _author_reads(idea: Idea) -> set[int]:
    aid = idea.thread.author_id
    if aid is None:
        return set()
    return set(db.session.scalars(select(User.id).where(User.id == aid, policy.room_readers_clause(idea.room))))


def set_status(actor: User, idea_id: object, *, status: object, response: object = None,
               duplicate_of: object = None, review_on: object = None) -> Idea:
    idea = get_idea(actor, idea_id)
    if not policy.can_decide_ideas(actor, idea.room):
        raise Forbidden("Only the room's owners and moderators, or people they name, can decide on ideas.")
    new = validate.choice(status, "status", STATUSES)
    text = validate.text(response, "response", max_len=MAX_RESPONSE, required=False, multiline=True,
                         label="Response") if response not in (None, "") else ""
    if new not in TRANSITIONS[idea.status]:
        allowed = ", ".join(STATUSES[s].lower() for s in TRANSITIONS[idea.status]) or "nothing: it is final"
        raise Conflict(f"An idea that is {STATUSES[idea.status].lower()} cannot become {STATUSES[new].lower()}; "
                       f"it can become {allowed}.", "status")
    if new == "not_adopted" and not text:
        raise Invalid("Give the reason this idea is not adopted.", "response")
    other = None
    if new == "already_exists":
        other = get_idea(actor, validate.int_id(duplicate_of, "duplicate_of"))
        if other.id == idea.id or other.room_id != idea.room_id:
            raise Invalid("Choose another idea of this room that this one repeats.", "duplicate_of")
    review = _review_date(review_on) if new == "under_review" else None
    db.begin_write()
    db.session.refresh(idea)
    if new not in TRANSITIONS[idea.status]:   # someone decided meanwhile
        db.session.rollback()
        raise Conflict("Someone changed this idea's status meanwhile: reload the page.", "status")
    now = utcnow()
    db.session.add(IdeaStatusChange(idea_id=idea.id, from_status=idea.status, to_status=new, response=text or None,
                                    review_on=review, user_id=actor.id, created_at=now))
    idea.status, idea.review_on = new, review
    idea.duplicate_of_id = other.id if other else idea.duplicate_of_id
    if text or new in DECIDED_STATUSES:
        idea.response = text or idea.response
    idea.decided_by_id, idea.decided_at = actor.id, now
    audit.record("ideas.status", actor=actor, target_type="idea", target_id=idea.id, room_id=idea.room_id,
                 detail={"status": new})
    db.session.flush()
    opening = room_posts.opening_post(idea.thread)
    for uid in sorted(_author_reads(idea) | _followers(idea)):
        notice_in_tx("idea", opening, actor, user_id=uid)
    services.record_event(idea.room_id, "idea.status", {"idea": event_dict(idea)})
    db.session.commit()
    return idea
