"""The search page (all rooms, or one room's posts with `room_id`). Its own
blueprint, so that rooms/ need not import search/: room pages link here with
`url_for("search.search")`."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user, login_required

from collab import validate
from collab.limits import search_limit
from rooms.ideas.serialize import public_dict
from search import ideas as similar
from search import service as search_service

bp = Blueprint("search", __name__)


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if validate.digits(raw) and len(raw) < 9 and 0 < int(raw) < 100_000 else 1


def _filters() -> search_service.Filters:
    """The filter controls' values (bounded; anything odd is explained by the service, not a 500)."""
    def arg(name: str, n: int) -> str:
        value = request.args.get(name, "")
        return value[:n] if isinstance(value, str) else ""

    return search_service.Filters(author=arg("author", search_service.MAX_AUTHOR), after=arg("after", 20),
                                  before=arg("before", 20), has_attachment=request.args.get("attachment") == "1")


@bp.get("/search")
@login_required
@search_limit
def search():
    sort = request.args.get("sort") if request.args.get("sort") in search_service.SORTS else "relevance"
    room_id = request.args.get("room_id", "")
    res = search_service.search(current_user, request.args.get("q", ""), sort=sort,
                                room_id=room_id if validate.digits(room_id) else None,
                                page=min(_page_arg(), search_service.MAX_PAGE), filters=_filters())
    keep = dict(res.filters.args(), sort=res.sort, room_id=res.room.id if res.room else None)
    return render_template("search.html", q=request.args.get("q", "")[:500], res=res, keep=keep,
                           rooms=search_service.room_choices(current_user))


@bp.get("/rooms/<int:room_id>/ideas/similar.json")
@login_required
@search_limit
def similar_ideas(room_id: int):
    """Ideas of the room like the title being typed ("Post an idea" asks as you type)."""
    found = similar.similar_ideas(current_user, room_id, request.args.get("q", "")[:200])
    return jsonify({"ideas": [public_dict(i) for i in found]})
