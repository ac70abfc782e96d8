"""Account endpoints of the JSON API."""
from __future__ import annotations

from auth.models import User
from collab.api import api_user, bp, ok


def user_dict(user: User) -> dict:
    return {"id": user.id, "name": user.name, "email": user.email, "kind": user.kind, "role": user.role,
            "organisation_id": user.organisation_id, "job_title": user.job_title}


@bp.get("/me")
def me():
    return ok(user_dict(api_user()))
