"""The Whoosh backend's start-up warm-up (search.whoosh_warm): opening a build decodes its most
frequent terms into the posting cache in the background, within its budget, and searches answer
the same during and after it."""
from __future__ import annotations

import pytest

from tests.test_search_support import search_ids, settle


@pytest.fixture
def app_config():
    return {"SEARCH_BACKEND": "whoosh", "SEARCH_SWEEP_SECONDS": 0, "SEARCH_WARM_POSTINGS": 100}


OTHERS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo"]


def _posts(make, u):
    """31 posts: "patrol" in 9, "note" in 8, "station" in all of them."""
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Patrol", body="patrol patrol briefing station")
    ids = [make.reply(u, t, f"patrol note {i} station").id for i in range(8)]
    other = make.thread(u, room, title="Log", body="station alpha")
    for w in OTHERS[1:] + OTHERS:
        make.reply(u, other, f"station {w}")
    return ids


def test_a_new_build_is_warmed_most_frequent_words_first(app, make):
    from search import service, state
    from search.whoosh_segments import segment_id

    u = make.user()
    ids = _posts(make, u)
    settle(app)
    backend = state(app).backend
    with backend._mutex:
        r = backend.segments.searcher().reader()
        df = {w: r.doc_frequency("content", w) for w in ("patrol", "note", "station")}
        docs = r.doc_count_all()
    # (deleted documents count until a merge drops them: a post indexed twice counts twice, in both)
    assert df["station"] > docs / 2 > df["patrol"] > df["note"]
    backend.warmer.budget = df["patrol"] + df["note"] - 1
    backend.close()  # as a process starting: nothing decoded yet
    found = set(search_ids(u, "briefing"))  # the first search opens the build and starts the warm-up
    assert backend.warmer.wait(30)
    assert set(search_ids(u, "briefing")) == found and found
    with backend._mutex:
        s = backend.segments.searcher()
        segs = {segment_id(r) for r, _o in s.reader().leaf_readers()}
        warmed = [key for key in backend.segments.postings.items if key[0] in segs and key[1] == "content"]
        with_patrol = {segment_id(r) for r, _o in s.reader().leaf_readers() if ("content", "patrol") in r}
    words = {key[2] for key in warmed}
    # "patrol" comes first, in every segment that has it; "note" no longer fits the budget; "station" is in
    # every post (more than half: it picks nothing out alone) and comes last, in what is left: not enough.
    assert "station" not in words
    assert "patrol" in words and "note" not in words
    assert {key[0] for key in warmed if key[2] == "patrol"} == with_patrol
    assert backend.warmer.postings <= backend.warmer.budget and backend.warmer.terms >= 1
    assert set(search_ids(u, "patrol")) >= set(ids)
    assert service.search(u, "station").total == 31   # (not warmed: decoded on demand, found the same)


def test_a_process_warms_its_caches_at_its_first_request_before_anyone_searches(app, make, client):
    """The first person to search after a restart should not pay for decoding the common words: the
    warm-up starts at the process's first request of any kind (here a health check), not its first search."""
    from search import state

    u = make.user()
    _posts(make, u)
    settle(app)
    backend = state(app).backend
    backend.close()  # as a process starting: nothing open, nothing decoded
    assert not backend.warmer.done.is_set() or backend.warmer._stamp is None
    backend.warmer.done.clear()
    assert client.get("/healthz").status_code == 200  # no search
    assert backend.warmer.wait(30)
    with backend._mutex:
        warmed = {key[2] for key in backend.segments.postings.items if key[1] == "content"}
    assert "patrol" in warmed and backend.warmer.terms >= 1
