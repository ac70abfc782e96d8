"""GET /api/v1/search: the same search as the page, as JSON, with the page's filter controls as
parameters (author, after, before, has_attachment; room_id) and each result labelled as the page
labels it ("Reply #12 by …")."""
from __future__ import annotations

import re

from flask import request

from collab.api import api_user, bp, ok, query_int
from collab.errors import Invalid
from collab.limits import search_limit
from rooms.serialize import iso
from search import service
from search.query import date_bound

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _date_arg(name: str) -> str:
    raw = request.args.get(name, "")
    if raw == "":
        return ""
    if not _DATE.fullmatch(raw) or date_bound(raw, end=False) is None:
        raise Invalid(f"{name} must be a day written YYYY-MM-DD.", name)
    return raw


def _filters() -> service.Filters:
    """The filters, refused with a 422 naming the parameter when malformed (the page, whose controls
    cannot send most of these, explains an odd value in a notice instead)."""
    author = request.args.get("author", "")
    if len(author) > service.MAX_AUTHOR:
        raise Invalid(f"author can be at most {service.MAX_AUTHOR} characters long.", "author")
    has = request.args.get("has_attachment", "false").lower()
    if has not in _BOOLEANS:
        raise Invalid("has_attachment must be true or false.", "has_attachment")
    return service.Filters(author=author, after=_date_arg("after"), before=_date_arg("before"),
                           has_attachment=_BOOLEANS[has])


def result_dict(r: service.Result) -> dict:
    return {"post_id": r.post_id, "thread_id": r.thread_id, "room_id": r.room_id, "room_name": r.room_name,
            "title": r.title, "label": r.label, "author_name": r.author_name, "is_opening": r.is_opening,
            "reply_number": r.reply_number, "in_attachment": r.in_attachment, "snippet_html": r.snippet_html,
            "created_at": iso(r.created_at)}


@bp.get("/search")
@search_limit
def search():
    page = query_int("page", 1, hi=service.MAX_PAGE)
    res = service.search(api_user(), request.args.get("q", ""), room_id=request.args.get("room_id"),
                         sort=request.args.get("sort") or "relevance", page=page, filters=_filters())
    return ok({
        "total": res.total,
        "total_is_estimate": res.estimated,
        "page": res.page,
        "notices": res.notices,
        "suggestion": res.suggestion,
        "results": [result_dict(r) for r in res.results],
    })
