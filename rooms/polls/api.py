"""Poll endpoints of the JSON API (issue 13); every one calls a service."""
from __future__ import annotations

from collab.api import api_user, bp, json_body, ok
from rooms.polls import services


@bp.post("/rooms/<int:room_id>/polls")
def poll_create(room_id: int):
    data = json_body()
    user = api_user()
    poll = services.create_poll(user, room_id, question=data.get("question"), kind=data.get("kind"),
                                options=data.get("options"), closes_at=data.get("closes_at"),
                                anonymous=data.get("anonymous", False), results=data.get("results", "always"),
                                quorum=data.get("quorum"), dots=data.get("dots"), body=data.get("body", ""),
                                meeting_id=data.get("meeting_id"))
    return ok(services.view(user, poll), 201)


@bp.get("/polls/<int:poll_id>")
def poll_get(poll_id: int):
    user = api_user()
    return ok(services.view(user, services.get_poll(user, poll_id)))


@bp.patch("/polls/<int:poll_id>")
def poll_change(poll_id: int):
    user = api_user()
    poll = services.change_poll(user, poll_id, json_body())
    return ok(services.view(user, poll))


@bp.post("/polls/<int:poll_id>/votes")
def poll_vote(poll_id: int):
    data = json_body()
    user = api_user()
    ballot, created, counts, poll = services.vote(user, poll_id, choices=data.get("choices"),
                                                  reason=data.get("reason", ""))
    return ok(services.view(user, poll, counts=counts, mine=ballot, with_voters=False), 201 if created else 200)


@bp.post("/polls/<int:poll_id>/close")
def poll_close(poll_id: int):
    data = json_body()
    user = api_user()
    poll = services.close(user, poll_id, outcome=data.get("outcome", ""))
    return ok(services.view(user, poll))
