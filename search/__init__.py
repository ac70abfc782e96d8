"""Full-text search (issue 4): one interface (index a post, remove a post,
search, rebuild, health) with two backends, Whoosh (default, embedded) and
PostgreSQL full-text (COLLAB_SEARCH_BACKEND=postgres).

    outbox.py    rows written in the same transaction as each post change
    indexer.py   the single indexer: drain after commit, sweep, check, rebuild
    service.py   search for a user: permissions, query language, snippets
    query.py     the search box language
    app_state.py the app's backend and indexer (`state()`)
    whoosh_backend.py, pg_backend.py  the two backends (whoosh_backend's docstring lists its parts)
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, has_app_context

from search import models  # noqa: F401  (register tables)
from search import outbox, whoosh_warm
from search.app_state import SearchState, state
from search.indexer import Indexer
from search.pg_backend import PostgresBackend
from search.whoosh_backend import WhooshBackend

__all__ = ["SearchState", "init_app", "make_backend", "state"]

log = logging.getLogger(__name__)


def make_backend(app: Flask):
    name = (app.config.get("SEARCH_BACKEND") or "whoosh").lower()
    if name == "postgres":
        if app.config["DATABASE_URL"].startswith("postgresql"):
            return PostgresBackend()
        log.error("COLLAB_SEARCH_BACKEND=postgres needs a PostgreSQL database; using Whoosh")
    elif name != "whoosh":
        log.error("unknown COLLAB_SEARCH_BACKEND %r; using Whoosh", name)
    # (the start-up cache warm-up, search.whoosh_warm: off under tests, whose indexes are tiny and short-lived)
    warm = app.config.get("SEARCH_WARM_POSTINGS", 0 if app.testing else whoosh_warm.DEFAULT_BUDGET)
    return WhooshBackend(app.config["DATA_DIR"], warm_postings=int(warm))


def _wake() -> None:
    if has_app_context() and "collab_search" in current_app.extensions:
        state().indexer.kick()


def init_app(app: Flask) -> None:
    """Outbox hooks, the indexer, the start-up check (at the first request)."""
    backend = make_backend(app)
    app.extensions["collab_search"] = SearchState(backend=backend, indexer=Indexer(app, backend))
    outbox.install(_wake)

    @app.before_request
    def _start_search_indexer():
        state(app).indexer.start()
