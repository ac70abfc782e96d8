"""Q&A pages (HTML) on the `qa` blueprint: a room's sessions, "New Q&A session", the session page
(Slido-like: the question box, Popular / Recent, a card per question with its upvote button, the "Now
answering" banner, the answered section and the moderators' queue; an archive once ended), and the
forms it posts: ask, vote, the hosts' and moderators' actions, adding a host and ending the session.
Each route calls one service; each refuses anonymous callers and gives 404 to anyone who may not read
the room. `?fragment=1` gives the live part of the session page alone, which static/js/qa.js puts in
place when a live event says something changed. The app factory (collab/__init__.py) registers it."""
from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from collab.errors import Forbidden, ServiceError
from collab.forms import attempt, field, flash_ok
from collab.http import wants_json
from rooms import policy
from rooms import services as room_services
from rooms.qa import hosting, services
from rooms.qa.serialize import question_dict, session_dict

bp = Blueprint("qa", __name__, cli_group=None)

ACTIONS = ("approve", "decline", "edit", "merge", "answering", "answer", "aloud", "reveal")


@bp.get("/rooms/<int:room_id>/qa")
@login_required
def room_sessions(room_id: int):
    room = room_services.get_room(current_user, room_id)
    sessions = [session_dict(s, current_user, services.hosts(s)) | {"title": s.thread.title}
                for s in services.room_sessions(room)]
    return render_template("qa/list.html", room=room, sessions=sessions,
                           can_create=policy.can_create_qa(current_user, room))


@bp.route("/rooms/<int:room_id>/qa/new", methods=["GET", "POST"])
@login_required
def new_session(room_id: int):
    room = room_services.get_room(current_user, room_id)
    if not policy.can_create_qa(current_user, room):
        raise Forbidden("You cannot open a Q&A session in this room.")
    errors: dict = {}
    if request.method == "POST":
        hosts = [h for h in request.form.getlist("hosts") if h] or None
        s = attempt(lambda: services.create_session(
            current_user, room.id, title=field("title"), starts_at=field("starts_at"), ends_at=field("ends_at"),
            meeting_id=field("meeting_id"), moderated=field("moderated") == "1", hosts=hosts,
            body=field("body")), errors)
        if s:
            flash_ok("The Q&A session is open for questions.")
            return redirect(url_for("qa.session_page", qa_id=s.id))
    return render_template("qa/new.html", room=room, errors=errors, form=request.form, meetings=services.meetings_to_link(room),
                           members=room_services.room_members(current_user, room)
                           if policy.can_add_qa_hosts(current_user, room) else []), (422 if errors else 200)


def _view(session, sort: str) -> dict:
    me = current_user
    qs = services.questions(me, session, sort=sort)
    mine = services.my_votes(me, [q.id for q in qs])
    shown = [question_dict(q, me, voted=q.id in mine) for q in qs]
    s = session_dict(session, me, services.hosts(session))
    s["title"] = session.thread.title
    return {
        "s": s, "session": session, "room": session.room, "sort": sort, "sorts": services.SORTS,
        "now": next((q for q in shown if q["status"] == "answering"), None),
        "live": [q for q in shown if q["status"] == "open"],
        "answered": [q for q in shown if q["status"] == "answered"],
        "queue": [q for q in shown if q["status"] == "pending"],
        "declined": [q for q in shown if q["status"] == "declined"],
        "can_reveal": policy.may_reveal_qa_asker(me, session),
        "can_answer_any": s["can_host"],
        "members": (room_services.room_members(me, session.room)
                    if s["can_host"] and not session.ended else []),
    }


@bp.get("/qa/<int:qa_id>")
@login_required
def session_page(qa_id: int):
    session = services.get_session(current_user, qa_id)
    sort = request.args.get("sort") if request.args.get("sort") in services.SORTS else "votes"
    ctx = _view(session, sort)
    if request.args.get("fragment") == "1":
        return render_template("qa/_compact.html" if request.args.get("compact") == "1" else "qa/_live.html", **ctx)
    return render_template("qa/session.html", **ctx)


@bp.app_template_global("meeting_qa_session")
def meeting_qa_session(meeting_id: int):
    """The meeting page's Q&A tab: the meeting's session, if it has one the reader may see."""
    return services.session_for_meeting(current_user, meeting_id)


def _back(qa_id: int) -> str:
    sort = request.form.get("sort")
    return url_for("qa.session_page", qa_id=qa_id, **({"sort": sort} if sort in services.SORTS else {}))


def _refused(session, message: str, status: int = 409):
    return render_template("qa/refused.html", session=session, room=session.room, message=message), status


@bp.post("/qa/<int:qa_id>/ask")
@login_required
def ask(qa_id: int):
    session = services.get_session(current_user, qa_id)
    errors: dict = {}
    q = attempt(lambda: services.ask(current_user, session.id, body=field("body"),
                                     anonymous=field("anonymous") == "1"), errors)
    if q is None:
        return _refused(session, " ".join(errors.values()), 422)
    flash_ok("Your question is sent: it shows once a moderator approves it." if q.status == "pending"
             else "Your question is asked.")
    return redirect(_back(session.id))


@bp.post("/qa/questions/<int:question_id>/vote")
@login_required
def vote(question_id: int):
    """Upvote (`on=1`) or withdraw (`on=0`); the page's script asks for JSON, a form without it is redirected."""
    on = field("on", "1") != "0"
    as_json = wants_json()
    errors: dict = {}
    q = attempt(lambda: (services.vote if on else services.withdraw)(current_user, question_id), errors)
    if as_json:
        if q is None:
            return jsonify({"error": {"message": next(iter(errors.values()))}}), 409
        return jsonify(question_dict(q, current_user, voted=on))
    if q is None:
        q = services.get_question(current_user, question_id)
        return _refused(q.session, next(iter(errors.values())))
    flash_ok("Your vote is counted." if on else "Your vote is withdrawn.")
    return redirect(_back(q.session_id))


def _act(action: str, question_id: int):
    me = current_user
    if action == "approve":
        return hosting.approve(me, question_id), "The question is approved: everyone sees it now."
    if action == "decline":
        return hosting.decline(me, question_id, reason=field("reason")), "The question is declined; its asker is told why."
    if action == "edit":
        return hosting.edit(me, question_id, body=field("body")), "The question is edited (it says so)."
    if action == "merge":
        return hosting.merge(me, question_id, into=field("into")), "The questions are merged and their votes combined."
    if action == "answering":
        return hosting.now_answering(me, question_id), "Everyone now sees this question as being answered."
    if action == "answer":
        return hosting.answer(me, question_id, body=field("body")), "The answer is posted."
    if action == "aloud":
        return hosting.answer(me, question_id, body=field("body"), aloud=True), "Marked as answered aloud."
    raise ServiceError("Unknown action.", "action")


@bp.post("/qa/questions/<int:question_id>/act")
@login_required
def act(question_id: int):
    q = services.get_question(current_user, question_id)
    action = field("action")
    errors: dict = {}
    if action == "reveal":
        who = attempt(lambda: hosting.reveal_asker(current_user, question_id, reason=field("reason")), errors)
        if errors:
            return _refused(q.session, " ".join(errors.values()), 422)
        return render_template("qa/revealed.html", session=q.session, room=q.session.room, question=q, who=who)
    done = attempt(lambda: _act(action, question_id), errors)
    if done is None:
        return _refused(q.session, " ".join(errors.values()), 422)
    flash_ok(done[1])
    return redirect(_back(q.session_id))


@bp.post("/qa/<int:qa_id>/end")
@login_required
def end(qa_id: int):
    session = services.get_session(current_user, qa_id)
    errors: dict = {}
    done = attempt(lambda: hosting.end(current_user, session.id, owner_id=field("owner_id"),
                                       due_on=field("due_on")), errors)
    if done is None:
        return _refused(session, " ".join(errors.values()), 422)
    flash_ok("The session has ended. Unanswered questions have an owner and a due date.")
    return redirect(url_for("qa.session_page", qa_id=session.id))


@bp.post("/qa/<int:qa_id>/hosts")
@login_required
def add_host(qa_id: int):
    session = services.get_session(current_user, qa_id)
    errors: dict = {}
    attempt(lambda: services.add_host(current_user, session.id, field("user_id")), errors)
    if errors:
        return _refused(session, " ".join(errors.values()), 422)
    flash_ok("The host is added.")
    return redirect(url_for("qa.session_page", qa_id=session.id))
