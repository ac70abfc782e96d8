"""Idea endpoints of the JSON API (issue 13); every one calls a service of rooms/ideas/services.py."""
from __future__ import annotations

from flask import request

from collab.api import api_user, bp, json_body, ok
from rooms import services as room_services
from rooms.ideas import services
from rooms.ideas.serialize import idea_dict


@bp.get("/rooms/<int:room_id>/ideas")
def list_ideas(room_id: int):
    user = api_user()
    room = room_services.get_room(user, room_id)
    ideas = services.room_ideas(user, room, sort=request.args.get("sort") or "votes",
                                status=request.args.get("status") or "all")
    mine = services.my_votes(user, [i.id for i in ideas])
    return ok({"room_id": room.id, "budget": services.budget(user, room),
               "ideas": [idea_dict(i, user, voted=i.id in mine) for i in ideas]})


@bp.post("/rooms/<int:room_id>/ideas")
def create_idea(room_id: int):
    data = json_body()
    user = api_user()
    idea = services.create_idea(user, room_id, title=data.get("title"), body=data.get("body"))
    return ok(idea_dict(idea, user, voted=False), 201)


@bp.get("/ideas/<int:idea_id>")
def get_idea(idea_id: int):
    user = api_user()
    idea = services.get_idea(user, idea_id)
    return ok(dict(idea_dict(idea, user, voters=True), budget=services.budget(user, idea.room)))


def _after_vote(idea, voted: bool):
    user = api_user()
    return ok(dict(idea_dict(idea, user, voted=voted), budget=services.budget(user, idea.room)))


@bp.post("/ideas/<int:idea_id>/vote")
def vote_idea(idea_id: int):
    return _after_vote(services.vote(api_user(), idea_id), True)


@bp.delete("/ideas/<int:idea_id>/vote")
def withdraw_idea_vote(idea_id: int):
    return _after_vote(services.withdraw(api_user(), idea_id), False)


@bp.post("/ideas/<int:idea_id>/status")
def set_idea_status(idea_id: int):
    data = json_body()
    user = api_user()
    idea = services.set_status(user, idea_id, status=data.get("status"), response=data.get("response"),
                               duplicate_of=data.get("duplicate_of"), review_on=data.get("review_on"))
    return ok(idea_dict(idea, user))
