"""Meeting endpoints of the JSON API; every one calls a service."""
from __future__ import annotations

from flask import url_for

from collab.api import api_user, bp, json_body, ok
from rooms.meetings import services


def _full(meeting) -> dict:
    """The meeting as the caller may see it (names only where rooms.policy.sees_names allows)."""
    return dict(services.meeting_view(api_user(), meeting), url=url_for("meetings.meeting", meeting_id=meeting.id))


@bp.post("/rooms/<int:room_id>/meetings")
def start_meeting(room_id: int):
    data = json_body()
    if any(data.get(k) not in (None, "") for k in ("agenda", "starts_at", "ends_at", "chairs", "invitees")):
        from rooms.meetings import schedule  # issue 6: a scheduled meeting

        meeting = schedule.schedule_meeting(api_user(), room_id, title=data.get("title"), agenda=data.get("agenda"),
                                            starts_at=data.get("starts_at"), ends_at=data.get("ends_at"),
                                            chairs=data.get("chairs"), invitees_=data.get("invitees"))
        return ok(dict(schedule.schedule_view(api_user(), meeting),
                       url=url_for("meetings.meeting", meeting_id=meeting.id)), 201)
    meeting = services.start_meeting(api_user(), room_id, title=data.get("title"))
    return ok(_full(meeting), 201)


@bp.get("/meetings/<int:meeting_id>")
def get_meeting(meeting_id: int):
    return ok(_full(services.get_meeting(api_user(), meeting_id)))


@bp.post("/meetings/<int:meeting_id>/token")
def meeting_token(meeting_id: int):
    """For API clients (e.g. a room system): the media worker's URL and a join token."""
    return ok(services.join(api_user(), meeting_id))
