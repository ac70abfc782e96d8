"""Key messages and their votes.

A key message is drafted by the chair (editable while it is a draft or open),
put to the participants (agree / disagree / abstain, with an optional
comment), counted live, and closed by the chair with an outcome (agreed, not
agreed, deferred). One vote per person per message, changeable until the vote
closes; people in the room are recorded by the chair as counts.

- The outcome is always the chair's choice: `close` has no default, whichever
  path asks (the `km_close` event, a service call), so a 1-1 tie is never
  "Agreed" unless the chair says so.
- The chair may open a vote with its running tally hidden (`hide_tally`):
  until it closes, only the chairs and those who have voted on it see the tally
  (rooms.policy.sees_tally; state.py keeps it out of everything else).
- A vote still open when the meeting ends stays open, with no outcome: nothing
  closes it for the chair. It takes no more votes, everyone sees its tally, and
  the minutes say "No outcome recorded (the meeting ended while the vote was
  open)" (`result`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms.meetings import access, pseudonyms, state
from rooms.meetings.models import KeyMessage, Vote

CHOICES = ("agree", "disagree", "abstain")
OUTCOMES = ("agreed", "not_agreed", "deferred")
OUTCOME_LABELS = {"agreed": "Agreed", "not_agreed": "Not agreed", "deferred": "Deferred"}
ENDED_OPEN = "No outcome recorded (the meeting ended while the vote was open)"
NO_OUTCOME = "Choose the outcome (Agreed, Not agreed or Deferred) to close the vote."
MAX_TEXT = 1000
MAX_COMMENT = 500
MAX_COUNT = 1000


class VoteClosed(Forbidden):
    code = "vote_closed"


def _km(actor: User, key_message_id: object) -> tuple[KeyMessage, Any]:
    kid = validate.int_id(key_message_id, "key_message_id")
    km = db.session.get(KeyMessage, kid)
    if km is None:
        raise NotFound("Key message not found.")
    meeting = access.get_meeting(actor, km.meeting_id)   # 404 unless the room is readable
    return km, meeting


def _chair_km(actor: User, key_message_id: object):
    km, meeting = _km(actor, key_message_id)
    access.require_chair(actor, meeting.id)
    return km, meeting


def draft(actor: User, meeting_id: object, *, text: object) -> dict[str, Any]:
    meeting = access.require_chair(actor, meeting_id)
    text_v = validate.text(text, "text", max_len=MAX_TEXT, multiline=True, label="Key message")
    db.begin_write()
    km = KeyMessage(meeting_id=meeting.id, text=text_v, status="draft", outcome="", room_agree=0,
                    room_disagree=0, room_abstain=0, created_at=utcnow())
    db.session.add(km)
    db.session.flush()
    snap = state.publish(meeting)
    db.session.commit()
    return dict(snap, key_message_id=km.id)


def edit(actor: User, key_message_id: object, *, text: object) -> dict[str, Any]:
    km, meeting = _chair_km(actor, key_message_id)
    if km.status == "closed":
        raise VoteClosed("This key message is closed; its wording is on record.")
    text_v = validate.text(text, "text", max_len=MAX_TEXT, multiline=True, label="Key message")
    db.begin_write()
    km = db.session.get(KeyMessage, km.id)
    km.text = text_v
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def result(status: str, outcome: str, ended: bool) -> str:
    """What the record says of a key message (the minutes, the state's `result`)."""
    if status == "closed":
        return OUTCOME_LABELS.get(outcome, outcome) or "No outcome recorded"
    if status == "open":
        return ENDED_OPEN if ended else "Vote open"
    return "Not put to the vote"


def open_vote(actor: User, key_message_id: object, *, hide_tally: object = False) -> dict[str, Any]:
    """Put a drafted key message to the vote. `hide_tally`: keep the running tally from everyone but
    the chairs and those who have voted, until the vote closes (chosen now, for this vote)."""
    km, meeting = _chair_km(actor, key_message_id)
    if hide_tally is None:
        hide_tally = False
    if not isinstance(hide_tally, bool):
        raise Invalid("hide_tally must be true or false.", "hide_tally")
    if km.status == "closed":
        raise VoteClosed("The vote on this key message has closed.")
    db.begin_write()
    km = db.session.get(KeyMessage, km.id)
    if km.status == "draft":
        km.status, km.opened_at, km.hide_tally = "open", utcnow(), hide_tally
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def cast(actor: User, key_message_id: object, *, choice: object, comment: object = "") -> dict[str, Any]:
    """Vote, or change your vote, while the vote is open."""
    km, meeting = _km(actor, key_message_id)
    access.check_writable(actor, meeting)
    access.require_participant(actor, meeting)
    choice_v = validate.choice(choice, "choice", CHOICES, label="Vote")
    comment_v = validate.text(comment or "", "comment", max_len=MAX_COMMENT, required=False, multiline=True) or ""
    if km.status == "closed":
        raise VoteClosed("The vote on this key message has closed; your vote was not counted.")
    if meeting.ended:
        raise VoteClosed("The meeting has ended, so its votes are over; your vote was not counted.")
    if km.status != "open":
        raise Forbidden("This key message has not been put to the vote yet.")
    db.begin_write()
    pseudonyms.assign(meeting, [actor.id])
    km = db.session.get(KeyMessage, km.id)   # re-read inside the write: the chair may have just closed it
    if km.status != "open":
        raise VoteClosed("The vote on this key message has closed; your vote was not counted.")
    v = db.session.scalar(select(Vote).where(Vote.key_message_id == km.id, Vote.user_id == actor.id))
    if v is None:
        db.session.add(Vote(key_message_id=km.id, user_id=actor.id, choice=choice_v, comment=comment_v,
                            updated_at=utcnow()))
    else:
        v.choice, v.comment, v.updated_at = choice_v, comment_v, utcnow()
    snap = state.publish(meeting)
    counted = state.tally(km)   # who has voted sees the tally, hidden or not (rooms.policy.sees_tally)
    db.session.commit()
    return dict(snap, my_vote={"choice": choice_v, "comment": comment_v}, tally=counted)


def _count(value: object, field: str) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{field} must be a whole number.", field)
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Invalid(f"{field} must be a whole number.", field) from None
    if not 0 <= n <= MAX_COUNT:
        raise Invalid(f"{field} must be from 0 to {MAX_COUNT}.", field)
    return n


def room_counts(actor: User, key_message_id: object, *, agree: object, disagree: object,
                abstain: object) -> dict[str, Any]:
    """The chair records the show of hands in the room."""
    km, meeting = _chair_km(actor, key_message_id)
    counts = [_count(agree, "agree"), _count(disagree, "disagree"), _count(abstain, "abstain")]
    if km.status != "open":
        raise VoteClosed("Record the room's votes while the vote is open.")
    db.begin_write()
    km = db.session.get(KeyMessage, km.id)
    km.room_agree, km.room_disagree, km.room_abstain = counts
    snap = state.publish(meeting)
    db.session.commit()
    return snap


def close(actor: User, key_message_id: object, *, outcome: object) -> dict[str, Any]:
    """The chair closes the vote with the outcome they choose; there is no default."""
    km, meeting = _chair_km(actor, key_message_id)
    if outcome is None or outcome == "":
        raise Invalid(NO_OUTCOME, "outcome")
    outcome_v = validate.choice(outcome, "outcome", OUTCOMES, label="Outcome")
    if km.status == "closed":
        raise VoteClosed("This vote is already closed.")
    db.begin_write()
    km = db.session.get(KeyMessage, km.id)
    km.status, km.outcome, km.closed_at = "closed", outcome_v, utcnow()
    km.opened_at = km.opened_at or km.closed_at
    snap = state.publish(meeting)
    db.session.commit()
    return snap
