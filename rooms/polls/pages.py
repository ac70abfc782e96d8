"""Poll pages (HTML), on the `polls` blueprint: start a poll in a room, the poll with the voting form
of its kind and its results (an SVG chart and a table), voting, closing with an outcome, and the
results fragment the page fetches on a live `poll.tally`. Each route calls one service; permission
is the services' (rooms/policy.py). Ranked choice is a rank select per option and dot votes a number
per option: operable by keyboard and screen reader with no dragging (WCAG 2.5.7); the page's script
(static/js/polls.js) adds "Move up"/"Move down" buttons and a live count of dots left."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from collab import timezones
from collab.errors import Forbidden, Invalid
from collab.forms import attempt, field, flash_ok
from rooms import policy
from rooms import services as room_services
from rooms.polls import chart, services
from rooms.polls.models import KINDS, MAX_SCORE, PROPOSAL_OPTIONS, RESULTS
from rooms.polls.serialize import options as poll_options

bp = Blueprint("polls", __name__, cli_group=None)

KIND_HELP = {
    "single": "Single choice: each person picks one option.",
    "multiple": "Multiple choice: each person picks any number of options.",
    "ranked": "Ranked choice: each person ranks every option; counted by instant runoff, round by round.",
    "score": f"Score: each person gives every option 0 to {MAX_SCORE}.",
    "dot": "Dot vote: each person spreads a number of dots over the options.",
    "proposal": "Proposal: agree, abstain, disagree or block (a block needs a reason).",
}
RESULT_HELP = {"always": "Always, as votes come in", "after_vote": "To each person once they have voted",
               "after_close": "Only when the poll closes"}


@bp.app_template_global("poll_of_thread")
def _poll_of_thread(thread_id: int) -> dict[str, Any] | None:
    """For the thread page: the poll of a thread the reader may already see, as they may see it."""
    poll = services.poll_for_thread(thread_id)
    if poll is None or not policy.may_see_poll(current_user, poll):
        return None
    return _context(poll)


def _context(poll) -> dict[str, Any]:
    v = services.view(current_user, poll)
    results = v["results"]
    return {"poll": poll, "v": v, "rows": chart.rows(poll.kind, v["options"], results) if results else [],
            "chart": chart.bar_chart(poll.kind, v["options"], results, f"poll-{poll.id}-chart-title")
            if results else None}


@bp.route("/rooms/<int:room_id>/polls/new", methods=["GET", "POST"])
@login_required
def new(room_id: int):
    room = room_services.get_room(current_user, room_id)
    if not policy.can_post(current_user, room):
        raise Forbidden("You can read this room but not start a poll in it.")
    errors: dict[str, str] = {}
    # From a meeting's Votes tab: the poll is taken in that meeting (its chairs only; create_poll checks)
    meeting_id = (request.form.get("meeting_id") if request.method == "POST" else request.args.get("meeting_id")) or None
    meeting = services.meeting_for_new_poll(current_user, room.id, meeting_id) if meeting_id else None
    if request.method == "POST":
        kind = field("kind")
        options = [line.strip() for line in field("options").splitlines() if line.strip()]
        poll = attempt(lambda: services.create_poll(
            current_user, room.id, question=field("question"), kind=kind,
            options=None if kind == "proposal" else options,
            closes_at=timezones.parse_local(field("closes_at"), timezones.current_zone_name(), "closes_at",
                                            "Closing time"),
            anonymous=field("anonymous") == "on", results=field("results") or "always",
            quorum=field("quorum") or None, dots=(field("dots") or None) if kind == "dot" else None,
            body=field("body"), meeting_id=meeting.id if meeting else None), errors)
        if poll is not None:
            flash_ok("Your poll is open. It is shown in its own thread, where people vote and discuss it.")
            return redirect(url_for("rooms.thread", thread_id=poll.thread_id))
    return render_template("polls/new.html", room=room, errors=errors, form=request.form if request.method == "POST"
                           else None, kinds=KINDS, kind_help=KIND_HELP, results=RESULTS, result_help=RESULT_HELP,
                           time_zone=timezones.current_zone_name(), meeting=meeting)


@bp.app_template_global("meeting_polls")
def _meeting_polls(meeting) -> list[dict[str, Any]]:
    """For a meeting's Votes tab: the polls taken in it that the reader may see, newest last."""
    return [{"question": p.question, "thread_id": p.thread_id, "closed": p.closed_at is not None,
             "outcome": p.outcome or ""}
            for p in services.meeting_polls(meeting) if policy.may_see_poll(current_user, p)]


@bp.get("/polls/<int:poll_id>")
@login_required
def poll(poll_id: int):
    p = services.get_poll(current_user, poll_id)
    return redirect(url_for("rooms.thread", thread_id=p.thread_id, _anchor=f"poll-{p.id}"))


@bp.get("/polls/<int:poll_id>/results")
@login_required
def results(poll_id: int):
    """The results region alone (for the live update), or its "hidden until ..." note."""
    p = services.get_poll(current_user, poll_id)
    return render_template("polls/_results.html", **_context(p))


def _ballot(kind: str, n: int) -> Any:
    """The form's fields as the service's `choices` (rooms/polls/tally.py): the service checks them."""
    if kind in ("single", "proposal"):
        raw = request.form.get("choice", "")
        return [int(raw)] if raw.isdigit() else []
    if kind == "multiple":
        return [int(c) for c in request.form.getlist("choice") if c.isdigit()]
    values = []
    for i in range(n):
        raw = request.form.get(f"option-{i}", "").strip()
        if not raw.lstrip("-").isdigit():
            label = {"ranked": "a rank", "score": "a score", "dot": "a number of dots"}[kind]
            raise Invalid(f"Give every option {label}.", "choices")
        values.append(int(raw))
    if kind != "ranked":
        return values
    # ranks (1 = first) -> options in order of preference; a repeated or missing rank is refused
    if sorted(values) != list(range(1, n + 1)):
        repeated = sorted({r for r in values if values.count(r) > 1})
        raise Invalid(f"Rank each option once, from 1 to {n}"
                      + (f": rank {repeated[0]} is given twice." if repeated else "."), "choices")
    return sorted(range(n), key=lambda i: values[i])


@bp.post("/polls/<int:poll_id>/vote")
@login_required
def vote(poll_id: int):
    p = services.get_poll(current_user, poll_id)
    errors: dict[str, str] = {}
    ok = attempt(lambda: services.vote(current_user, p.id, choices=_ballot(p.kind, len(poll_options(p))),
                                       reason=field("reason")), errors)
    if ok is not None:
        flash_ok("Your vote is recorded. You can change it until the poll closes.")
        return redirect(url_for("rooms.thread", thread_id=p.thread_id, _anchor=f"poll-{p.id}"))
    return _thread_with_errors(p, errors)


@bp.post("/polls/<int:poll_id>/close")
@login_required
def close(poll_id: int):
    p = services.get_poll(current_user, poll_id)
    errors: dict[str, str] = {}
    ok = attempt(lambda: services.close(current_user, p.id, outcome=field("outcome")), errors)
    if ok is not None:
        flash_ok("The poll is closed; its outcome is posted in the thread.")
        return redirect(url_for("rooms.thread", thread_id=p.thread_id, _anchor=f"poll-{p.id}"))
    return _thread_with_errors(p, errors)


def _thread_with_errors(p, errors: dict[str, str]):
    """The poll again, with what was wrong and what the person chose (nothing was changed)."""
    ctx = _context(p)
    return render_template("polls/poll_page.html", room=p.room, errors=errors, form=request.form,
                           proposal_options=PROPOSAL_OPTIONS, **ctx), 422
