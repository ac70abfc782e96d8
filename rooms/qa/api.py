"""Q&A endpoints of the JSON API (issue 13); every one calls a service of rooms/qa/services.py or
rooms/qa/hosting.py and answers with the shapes of rooms/qa/serialize.py."""
from __future__ import annotations

from flask import request

from collab.api import api_user, bp, json_body, ok
from rooms import services as room_services
from rooms.qa import hosting, services
from rooms.qa.serialize import question_dict, session_dict


def _session(user, session) -> dict:
    return session_dict(session, user, services.hosts(session))


def _question(user, q) -> dict:
    return question_dict(q, user, voted=bool(services.my_votes(user, [q.id])))


@bp.get("/rooms/<int:room_id>/qa")
def qa_list(room_id: int):
    user = api_user()
    room = room_services.get_room(user, room_id)
    return ok({"room_id": room.id, "sessions": [_session(user, s) for s in services.room_sessions(room)]})


@bp.post("/rooms/<int:room_id>/qa")
def qa_create(room_id: int):
    data = json_body()
    user = api_user()
    s = services.create_session(user, room_id, title=data.get("title"), starts_at=data.get("starts_at"),
                                ends_at=data.get("ends_at"), meeting_id=data.get("meeting_id"),
                                moderated=data.get("moderated", False), hosts=data.get("hosts"),
                                body=data.get("body", ""))
    return ok(_session(user, s), 201)


@bp.get("/qa/<int:qa_id>")
def qa_get(qa_id: int):
    user = api_user()
    return ok(_session(user, services.get_session(user, qa_id)))


@bp.post("/qa/<int:qa_id>/hosts")
def qa_add_host(qa_id: int):
    data = json_body()
    user = api_user()
    hosting_row = services.add_host(user, qa_id, data.get("user_id"))
    return ok(_session(user, services.get_session(user, hosting_row.session_id)))


@bp.post("/qa/<int:qa_id>/end")
def qa_end(qa_id: int):
    data = json_body()
    user = api_user()
    s = hosting.end(user, qa_id, owner_id=data.get("owner_id"), due_on=data.get("due_on"))
    return ok(_session(user, s))


@bp.get("/qa/<int:qa_id>/questions")
def qa_questions(qa_id: int):
    user = api_user()
    s = services.get_session(user, qa_id)
    qs = services.questions(user, s, sort=request.args.get("sort") or "votes")
    mine = services.my_votes(user, [q.id for q in qs])
    return ok({"session_id": s.id, "questions": [question_dict(q, user, voted=q.id in mine) for q in qs]})


@bp.post("/qa/<int:qa_id>/questions")
def qa_ask(qa_id: int):
    data = json_body()
    user = api_user()
    q = services.ask(user, qa_id, body=data.get("body"), anonymous=data.get("anonymous", False))
    return ok(question_dict(q, user), 201)


@bp.get("/questions/<int:question_id>")
def question_get(question_id: int):
    user = api_user()
    return ok(_question(user, services.get_question(user, question_id)))


@bp.post("/questions/<int:question_id>/vote")
def question_vote(question_id: int):
    user = api_user()
    return ok(question_dict(services.vote(user, question_id), user, voted=True))


@bp.delete("/questions/<int:question_id>/vote")
def question_unvote(question_id: int):
    user = api_user()
    return ok(question_dict(services.withdraw(user, question_id), user, voted=False))


@bp.post("/questions/<int:question_id>/approve")
def question_approve(question_id: int):
    user = api_user()
    return ok(_question(user, hosting.approve(user, question_id)))


@bp.post("/questions/<int:question_id>/edit")
def question_edit(question_id: int):
    data = json_body()
    user = api_user()
    return ok(_question(user, hosting.edit(user, question_id, body=data.get("body"))))


@bp.post("/questions/<int:question_id>/merge")
def question_merge(question_id: int):
    data = json_body()
    user = api_user()
    return ok(_question(user, hosting.merge(user, question_id, into=data.get("into"))))


@bp.post("/questions/<int:question_id>/decline")
def question_decline(question_id: int):
    data = json_body()
    user = api_user()
    return ok(_question(user, hosting.decline(user, question_id, reason=data.get("reason"))))


@bp.post("/questions/<int:question_id>/now-answering")
def question_now_answering(question_id: int):
    user = api_user()
    return ok(_question(user, hosting.now_answering(user, question_id)))


@bp.post("/questions/<int:question_id>/answer")
def question_answer(question_id: int):
    data = json_body()
    user = api_user()
    q = hosting.answer(user, question_id, body=data.get("body"), aloud=data.get("aloud", False))
    return ok(_question(user, q))


@bp.post("/questions/<int:question_id>/reveal")
def question_reveal(question_id: int):
    data = json_body()
    user = api_user()
    who = hosting.reveal_asker(user, question_id, reason=data.get("reason"))
    return ok({"question_id": question_id, "asker": {"id": who.id, "name": who.name} if who else None})
