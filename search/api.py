"""GET /api/v1/search: the same search as the page, as JSON."""
from __future__ import annotations

from flask import request

from collab.api import api_user, bp, ok, query_int
from collab.limits import search_limit
from rooms.serialize import iso
from search import service


@bp.get("/search")
@search_limit
def search():
    page = query_int("page", 1, hi=service.MAX_PAGE)
    res = service.search(api_user(), request.args.get("q", ""), room_id=request.args.get("room_id"),
                         sort=request.args.get("sort") or "relevance", page=page)
    return ok({
        "total": res.total,
        "total_is_estimate": res.estimated,
        "page": res.page,
        "notices": res.notices,
        "suggestion": res.suggestion,
        "results": [{"post_id": r.post_id, "thread_id": r.thread_id, "room_id": r.room_id, "title": r.title,
                     "snippet_html": r.snippet_html, "created_at": iso(r.created_at)} for r in res.results],
    })
