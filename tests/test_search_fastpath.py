"""When the Whoosh backend's fast path (search.fastpath, search.whoosh_query) fails, the search
is answered by Whoosh's own matchers, and the failure is logged (with its traceback, once per
kind), counted (`fallbacks`, and `flask search status`) and, unless structural, the fast path is
tried again for the next search.

How the fast path is made to fail: Whoosh's block reader (`W3LeafMatcher._read_values`, a
Whoosh internal, third-party) is replaced or removed. For a word start (`light*`) the fast path
reads the words' position blocks through it, while Whoosh's matchers answering the same search
do not read positions at all. No index or query exists that the fast path refuses while the
matchers accept it (the fast path handles every segment and every query shape the matchers
do), so this is the one way to make it fail for real; none of our own components is mocked.
"""
from __future__ import annotations

import logging

from whoosh.codec.whoosh3 import W3LeafMatcher

from tests.test_search_support import combo_fixtures, only, search_ids, settle

combo, backend, app_config = combo_fixtures()
SQLITE_WHOOSH = [("sqlite", "whoosh")]


def _posts(make):
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Lighthouse keepers", body="The lighthouse and the lightship.")
    r = make.reply(u, t, "A lightship was moored off the point.")
    make.reply(u, t, "Nothing about it here.")
    return u, r


def _records(caplog):
    return [r for r in caplog.records if r.name == "search.whoosh_backend"]


@only(SQLITE_WHOOSH)
def test_a_failing_fast_path_is_logged_counted_and_tried_again(app, make, combo, caplog, monkeypatch):
    from search import state

    u, reply = _posts(make)
    settle(app)
    backend = state(app).backend
    caplog.set_level(logging.WARNING, logger="search.whoosh_backend")

    def unreadable(self):
        raise TypeError("posting block not understood")

    monkeypatch.setattr(W3LeafMatcher, "_read_values", unreadable)
    first = search_ids(u, "light*")
    second = search_ids(u, "light*")
    assert len(first) == 2 and reply.id in first and second == first  # the matchers answered
    assert backend.fallbacks == 2 and backend.fast  # counted every time; still tried
    logged = _records(caplog)
    assert len(logged) == 2
    assert logged[0].levelno == logging.ERROR and logged[0].exc_info is not None  # the traceback, once
    assert "search fast path failed (TypeError: posting block not understood)" in logged[0].getMessage()
    assert "tried again" in logged[0].getMessage()
    assert logged[1].levelno == logging.WARNING and logged[1].exc_info is None
    assert "2 fallback(s)" in logged[1].getMessage()

    out = app.test_cli_runner().invoke(args=["search", "status"]).output
    assert "fast path fallbacks: 2 in running processes, 0 in earlier ones" in out
    assert "TypeError: posting block not understood" in out and "fast path off" not in out

    monkeypatch.undo()  # Whoosh as it is: the fast path answers again, nothing more is counted
    assert search_ids(u, "light*") == first
    assert backend.fallbacks == 2 and len(_records(caplog)) == 2


@only(SQLITE_WHOOSH)
def test_a_structural_fast_path_failure_turns_it_off_and_says_so(app, make, combo, caplog, monkeypatch):
    from search import state

    u, reply = _posts(make)
    settle(app)
    backend = state(app).backend
    caplog.set_level(logging.WARNING, logger="search.whoosh_backend")

    monkeypatch.delattr(W3LeafMatcher, "_read_values")  # a Whoosh without what the fast path reads
    found = search_ids(u, "light*")
    assert len(found) == 2 and reply.id in found
    assert backend.fallbacks == 1 and not backend.fast and "AttributeError" in backend.fast_off
    assert not backend.segments.decoded  # the fallback reads nothing through the fast path's decoder
    logged = _records(caplog)
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR and logged[0].exc_info is not None
    assert "structural" in logged[0].getMessage() and "off for this process" in logged[0].getMessage()

    assert search_ids(u, "light*") == found  # the matchers answer directly: no new failure
    assert backend.fallbacks == 1 and len(_records(caplog)) == 1
    out = app.test_cli_runner().invoke(args=["search", "status"]).output
    assert "fast path fallbacks: 1 in running processes" in out and "fast path off in process" in out
