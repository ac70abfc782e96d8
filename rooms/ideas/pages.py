"""Idea pages (HTML) on the `ideas` blueprint: a room's ideas (sorted, filtered, with vote buttons and
the budget left), "Post an idea", an idea (its thread page with the status panel: rooms/views.py),
voting and deciding from the page, the room's idea settings and decision-makers, and "You said, we
did" per room and across the site (printable, and as CSV). Each route calls one service; each
refuses anonymous callers and gives 404 to anyone who may not read the room. The app factory
(collab/__init__.py) registers the blueprint."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from collab.errors import Forbidden
from collab.forms import attempt, field, flash_ok
from collab.http import confidential, wants_json
from rooms import policy
from rooms import services as room_services
from rooms.ideas import services
from rooms.ideas.models import SAID_DONE_STATUSES, STATUSES
from rooms.ideas.serialize import decider_name, idea_dict

bp = Blueprint("ideas", __name__, cli_group=None)


@bp.get("/rooms/<int:room_id>/ideas")
@login_required
def room_ideas(room_id: int):
    room = room_services.get_room(current_user, room_id)
    sort = request.args.get("sort") if request.args.get("sort") in services.SORTS else "votes"
    status = request.args.get("status") if request.args.get("status") in services.FILTERS else "all"
    ideas = services.room_ideas(current_user, room, sort=sort, status=status)
    mine = services.my_votes(current_user, [i.id for i in ideas])
    settings = policy.idea_settings(room)
    return render_template("ideas/list.html", room=room, ideas=[idea_dict(i, current_user, voted=i.id in mine)
                                                                for i in ideas],
                           settings=settings, budget=services.budget(current_user, room), sort=sort, status=status,
                           sorts=services.SORTS, filters=services.FILTERS,
                           can_post=policy.can_post_idea(current_user, room),
                           can_manage=policy.can_manage_room(current_user, room))


@bp.route("/rooms/<int:room_id>/ideas/new", methods=["GET", "POST"])
@login_required
def new_idea(room_id: int):
    room = room_services.get_room(current_user, room_id)
    if not policy.can_post_idea(current_user, room):
        raise Forbidden("You cannot post ideas in this room." if policy.idea_settings(room).enabled
                        else "This room does not take ideas.")
    errors: dict = {}
    if request.method == "POST":
        idea = attempt(lambda: services.create_idea(current_user, room.id, title=field("title"), body=field("body")),
                       errors)
        if idea:
            flash_ok("Your idea is posted. Colleagues can now vote on it and add to it.")
            return redirect(url_for("rooms.thread", thread_id=idea.thread_id))
    return render_template("ideas/new.html", room=room, errors=errors, form=request.form), (422 if errors else 200)


@bp.get("/ideas/<int:idea_id>")
@login_required
def idea_page(idea_id: int):
    idea = services.get_idea(current_user, idea_id)
    return redirect(url_for("rooms.thread", thread_id=idea.thread_id))


def _back(idea) -> str:
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("rooms.thread", thread_id=idea.thread_id)


@bp.post("/ideas/<int:idea_id>/vote")
@login_required
def vote(idea_id: int):
    """Vote (`on=1`) or withdraw (`on=0`); the page's script asks for JSON, a form without it is redirected."""
    on = field("on", "1") != "0"
    as_json = wants_json()
    errors: dict = {}
    idea = attempt(lambda: (services.vote if on else services.withdraw)(current_user, idea_id), errors)
    if as_json:
        if idea is None:
            return jsonify({"error": {"message": next(iter(errors.values()))}}), 409
        return jsonify(dict(idea_dict(idea, current_user, voted=on), budget=services.budget(current_user, idea.room)))
    if idea is None:
        idea = services.get_idea(current_user, idea_id)
        from_errors = next(iter(errors.values()))
        return render_template("ideas/refused.html", idea=idea, room=idea.room, message=from_errors), 409
    flash_ok("Your vote is counted." if on else "Your vote is withdrawn.")
    return redirect(_back(idea))


@bp.post("/ideas/<int:idea_id>/status")
@login_required
def set_status(idea_id: int):
    errors: dict = {}
    idea = attempt(lambda: services.set_status(current_user, idea_id, status=field("status"),
                                               response=field("response"), duplicate_of=field("duplicate_of"),
                                               review_on=field("review_on")), errors)
    if idea is None:
        idea = services.get_idea(current_user, idea_id)
        return render_template("ideas/refused.html", idea=idea, room=idea.room,
                               message=" ".join(errors.values())), 422
    flash_ok(f"The idea is now “{STATUSES[idea.status]}”. Its author, voters and followers are told.")
    return redirect(url_for("rooms.thread", thread_id=idea.thread_id))


@bp.route("/rooms/<int:room_id>/ideas/settings", methods=["GET", "POST"])
@login_required
def settings(room_id: int):
    room = room_services.get_room(current_user, room_id)
    if not policy.can_name_idea_deciders(current_user, room):
        raise Forbidden("Only the room's owners and moderators can change how it takes ideas.")
    errors: dict = {}
    if request.method == "POST":
        action = field("action")
        if action == "settings":
            done = attempt(lambda: services.update_settings(
                current_user, room.id, enabled=field("enabled") == "1", vote_budget=field("vote_budget"),
                judge_on_merit=field("judge_on_merit") == "1"), errors)
        elif action in ("name", "unname"):
            done = attempt(lambda: services.name_decider(current_user, room.id, field("user_id"),
                                                         named=action == "name"), errors, {"user_id": "decider"})
            done = done is None and not errors
        else:
            errors["_form"] = "Unknown action."
            done = None
        if not errors:
            flash_ok("Idea settings saved." if action == "settings" else "Decision-makers changed.")
            return redirect(url_for("ideas.settings", room_id=room.id))
    members = room_services.room_members(current_user, room)
    return render_template("ideas/settings.html", room=room, settings=policy.idea_settings(room), errors=errors,
                           deciders=services.deciders(room), members=members,
                           can_manage=policy.can_manage_room(current_user, room)), (422 if errors else 200)


# -- "You said, we did" -------------------------------------------------------------------------------

def _said_done_rows(ideas) -> list[dict]:
    return [{"idea": i, "title": i.thread.title, "room": i.room.name, "status": STATUSES[i.status],
             "response": i.response or "", "decided_at": i.decided_at, "decided_by": decider_name(i, current_user) or "",
             "url": url_for("rooms.thread", thread_id=i.thread_id)} for i in ideas]


def _csv(rows: list[dict], name: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Idea", "Room", "Status", "Response", "Decided", "Decided by", "Link"])
    for r in rows:
        cells = [r["title"], r["room"], r["status"], r["response"],
                 r["decided_at"].strftime("%Y-%m-%d") if r["decided_at"] else "", r["decided_by"],
                 url_for("rooms.thread", thread_id=r["idea"].thread_id, _external=True)]
        # A cell starting with = + - @ is a formula to a spreadsheet: quote it as text.
        w.writerow(["'" + c if c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in cells])
    resp = Response(buf.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return confidential(resp)


@bp.get("/rooms/<int:room_id>/you-said-we-did")
@login_required
def room_said_done(room_id: int):
    room = room_services.get_room(current_user, room_id)
    errors: dict = {}
    status = request.args.get("status", "")
    q = request.args.get("q", "")
    ideas = attempt(lambda: services.said_done(current_user, room=room, status=status, q=q), errors) or []
    rows = _said_done_rows(ideas)
    if request.args.get("format") == "csv" and not errors:
        return _csv(rows, f"you-said-we-did-room-{room.id}")
    return render_template("ideas/said_done.html", room=room, rows=rows, status=status, q=q, errors=errors,
                           statuses={s: STATUSES[s] for s in SAID_DONE_STATUSES}, rooms=None, room_id=None)


@bp.get("/you-said-we-did")
@login_required
def said_done():
    errors: dict = {}
    status = request.args.get("status", "")
    q = request.args.get("q", "")
    room_id = request.args.get("room_id", "")
    ideas = attempt(lambda: services.said_done(current_user, status=status, q=q, room_id=room_id), errors) or []
    rows = _said_done_rows(ideas)
    if request.args.get("format") == "csv" and not errors:
        return _csv(rows, "you-said-we-did")
    return render_template("ideas/said_done.html", room=None, rows=rows, status=status, q=q, errors=errors,
                           statuses={s: STATUSES[s] for s in SAID_DONE_STATUSES},
                           rooms=room_services.readable_rooms(current_user), room_id=room_id)


def panel(me, thread) -> dict:
    """What the thread page shows above an idea's thread (rooms/views.py): the idea for this reader, the
    budget, the status history and, for decision-makers, the other ideas it may repeat."""
    idea = services.idea_for_thread(thread.id)
    if idea is None:
        return {}
    can_decide = policy.can_decide_ideas(me, idea.room)
    others = ([i for i in services.room_ideas(me, idea.room, sort="newest") if i.id != idea.id]
              if can_decide and "already_exists" in services.TRANSITIONS[idea.status] else [])
    return {"idea": idea_dict(idea, me, voters=True), "idea_budget": services.budget(me, idea.room),
            "idea_history": [(c, STATUSES[c.to_status]) for c in services.history(idea)],
            "idea_next": [(s, STATUSES[s]) for s in services.TRANSITIONS[idea.status]],
            "idea_others": others}
