"""Search (issue 4), run against Whoosh on SQLite and PostgreSQL and against the
PostgreSQL full-text backend: what is found, permissions, freshness, attachments,
the page, the API, rebuilding, bad queries."""
from __future__ import annotations

import io
import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import bearer
from tests.test_search_support import (WHOOSH_COMBOS, combo_fixtures, only, docx_bytes, pdf_bytes, search_ids, settle,
                                       wait_until)

combo, backend, app_config = combo_fixtures()


def _service():
    from search import service

    return service


# -- the query language (no database) ------------------------------------------------

def test_parse_repairs_bad_input():
    from search.query import Phrase, Prefix, Word, parse

    q = parse('stop "and search')
    assert [type(n) for n in q.must] == [Word, Phrase] and q.notices
    q = parse("*")
    assert not q.must and "on its own" in q.notices[0]
    q = parse("po*")
    assert isinstance(q.must[0], Word) and "at least 3" in q.notices[0]
    q = parse("inter*")
    assert isinstance(q.must[0], Prefix) and q.must[0].prefixes == ["inter"]
    q = parse("x" * 10_000)
    assert len(q.raw) == 500 and "at most 500 characters" in q.too_big
    q = parse("stop\x00\x07search\u202e")
    assert [n.text for n in q.must] == ["stop", "search"] and "Control characters" in q.notices[0]
    q = parse("a OR b taser OR spray -baton room:\"Youth IAG\" author:smith after:2024-03 before:2024-04-01 "
              "has:attachment in:title")
    assert len(q.must) == 1 and len(q.must[0].children) == 2  # a, b are stop words / too short: dropped
    assert q.rooms == ["Youth IAG"] and q.authors == ["smith"] and q.has_attachment and q.in_title
    assert q.after.isoformat() == "2024-03-01T00:00:00" and q.before.isoformat() == "2024-04-01T00:00:00"
    assert [n.text for n in q.must_not] == ["baton"]
    q = parse("-baton")
    assert "cannot only exclude" in q.notices[0]
    q = parse("before:someday")
    assert "not a date" in q.notices[0]


# -- finding things --------------------------------------------------------------------

def test_words_phrases_prefixes_filters(app, make):
    alice, bob = make.user(name="Alice Archer"), make.user(name="Bob Baker")
    room = make.room(alice, visibility="national", name="Youth IAG")
    other = make.room(bob, visibility="national", name="Roads policing")
    t1 = make.thread(alice, room, title="Stop and search in March",
                     body="We **agreed** that stop and search of young people needs a café debrief.")
    p2 = make.reply(bob, t1, "Interviews were recorded; the interventions worked.")
    t3 = make.thread(bob, other, title="Speed cameras", body="Searching for stopping distances and speeding data.")
    p4 = make.reply(alice, t3, "Tasers and spray: neither was used.")
    settle(app)
    o1, o3 = _opening(t1), _opening(t3)

    assert set(search_ids(alice, "agree")) == {o1}  # stemming, and ** of Markdown is not part of the word
    assert set(search_ids(alice, "cafe")) == {o1}  # accents folded
    assert set(search_ids(alice, "CAFÉ")) == {o1}
    assert set(search_ids(alice, "stop search")) == {o1, o3}  # any form: stopping, searching
    assert set(search_ids(alice, '"stop and search"')) == {o1}  # the phrase only
    assert set(search_ids(alice, "inter*")) == {p2.id}
    assert set(search_ids(alice, "stop -speeding")) == {o1}
    assert set(search_ids(alice, "taser OR interview")) == {p2.id, p4.id}
    assert set(search_ids(alice, "march in:title")) == {o1}
    assert set(search_ids(alice, "stop room:\"roads policing\"")) == {o3}
    assert set(search_ids(alice, f"stop room:{room.id}")) == {o1}
    assert set(search_ids(alice, "author:baker")) == {p2.id, o3}
    assert set(search_ids(alice, "author:nobody-of-that-name stop")) == set()
    assert set(search_ids(alice, "stop", room_id=other.id)) == {o3}

    # before:/after: on created time
    from collab.extensions import db
    from rooms.models import Post

    db.begin_write()
    old = db.session.get(Post, o3).created_at - timedelta(days=400)
    db.session.execute(update(Post).where(Post.id == o3).values(created_at=old))
    db.session.commit()
    from search import state
    from search.indexer import rebuild

    rebuild(app, quiet=True)
    assert set(search_ids(alice, f"stop before:{old.date() + timedelta(days=1)}")) == {o3}
    assert set(search_ids(alice, f"stop after:{old.date() + timedelta(days=2)}")) == {o1}
    assert state(app).backend.health().ok


def _opening(thread):
    from collab.extensions import db
    from rooms.models import Post

    return db.session.scalar(select(Post.id).where(Post.thread_id == thread.id, Post.parent_id.is_(None)))


def test_sort_pagination_counts(app, make):
    svc = _service()
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Patrol notes", body="nothing to see")
    ids = [make.reply(u, t, f"Patrol report number {i} " + ("patrol " * (i % 5))).id for i in range(25)]
    settle(app)
    page1 = svc.search(u, "patrol", sort="newest")
    assert page1.total == 26 and not page1.estimated and page1.pages == 2
    assert [r.post_id for r in page1.results] == sorted(ids, reverse=True)[:20]
    page2 = svc.search(u, "patrol", sort="newest", page=2)
    assert len(page2.results) == 6 and page2.results[-1].post_id == _opening(t)
    rel = svc.search(u, "patrol")
    assert rel.total == 26 and len(rel.results) == 20
    assert all("<mark>" in r.snippet_html or "<mark>" in r.title_html for r in rel.results)
    assert svc.search(u, "patrol", page=3).results == []
    from collab.errors import Invalid

    with pytest.raises(Invalid):
        svc.search(u, "patrol", sort="sideways")


def test_highlight_marks_whole_words_only():
    """Words are found by their folded start (search.text._starts_regex): never inside another word,
    whatever the case or accents."""
    from search.text import highlight_all

    got = highlight_all("Police xpolice police, .police _police 1police poliCE. Pólice", set(), ("poli",))
    assert got == ("<mark>Police</mark> xpolice <mark>police</mark>, .<mark>police</mark> _police 1police "
                   "<mark>poliCE</mark>. <mark>Pólice</mark>")


def test_snippets_escape_and_highlight(app, make):
    svc = _service()
    u = make.user()
    room = make.room(u, visibility="national")
    long = (" ".join(["filler"] * 300) + " if a < b && c > d <script>alert(1)</script> the lighthouse keeper "
            + " ".join(["tail"] * 300))
    make.thread(u, room, title="Coast <b>guard</b>", body=long)
    settle(app)
    (r,) = svc.search(u, "lighthouse").results
    assert "<mark>lighthouse</mark>" in r.snippet_html
    assert "<script>" not in r.snippet_html and "a &lt; b &amp;&amp; c &gt; d" in r.snippet_html
    assert len(r.snippet_html) < 400 and r.snippet_html.startswith("…")
    assert "<b>" not in r.title_html


# -- permissions -----------------------------------------------------------------------

def test_private_words_give_a_non_member_nothing(app, make, client, auth):
    svc = _service()
    owner, member, outsider = make.user(), make.user(), make.user()
    private = make.room(owner, visibility="private", members=[member])
    public = make.room(owner, visibility="national")
    make.thread(owner, private, title="Operation Kingfisher", body="The informant codename is zanzibar. "
                "Shared word: harbour.")
    make.thread(owner, public, title="Open meeting", body="Everyone welcome at the harbour.")
    settle(app)

    assert len(search_ids(member, "zanzibar")) == 1
    assert svc.search(member, "harbour").total == 2
    for q in ("zanzibar", "kingfisher", "informant codename", '"informant codename"', "zanzib*",
              "in:title kingfisher", f"room:{private.id} harbour"):
        res = svc.search(outsider, q)
        assert res.results == [] and res.total == 0, q
        assert res.suggestion is None, q
    res = svc.search(outsider, "harbour")
    assert res.total == 1 and "zanzibar" not in res.results[0].snippet_html
    assert svc.search(outsider, "zanzibaar").suggestion is None  # no spelling help from rooms it cannot read
    assert svc.search(member, "zanzibaar").suggestion == "zanzibar"
    assert svc.search(outsider, "harbuor").suggestion == "harbour"  # its own vocabulary works

    from collab.errors import NotFound

    with pytest.raises(NotFound):
        svc.search(outsider, "harbour", room_id=private.id)
    tok = make.token(outsider)
    c = app.test_client()
    r = c.get("/api/v1/search", query_string={"q": "zanzibar"}, headers=bearer(tok))
    assert r.status_code == 200 and r.json["total"] == 0 and r.json["results"] == []
    assert "zanzibar" not in r.get_data(as_text=True).replace('"q"', "")
    r = c.get("/api/v1/search", query_string={"q": "zanzibaar"}, headers=bearer(tok))
    assert r.json["suggestion"] is None and r.json["total"] == 0
    r = c.get("/api/v1/search", query_string={"q": "harbour", "room_id": private.id}, headers=bearer(tok))
    assert r.status_code == 404
    auth.login(outsider)
    page = client.get("/search", query_string={"q": "zanzibar"}).get_data(as_text=True)
    assert "No results" in page and "Kingfisher" not in page and "Did you mean" not in page
    assert client.get("/search", query_string={"q": "x", "room_id": private.id}).status_code == 404

    # Membership is read at query time: once added, the outsider finds it at once.
    from rooms import services

    services.add_member(owner, private.id, user_id=outsider.id, role="member")
    assert len(search_ids(outsider, "zanzibar")) == 1
    services.remove_member(owner, private.id, outsider.id)
    assert search_ids(outsider, "zanzibar") == []


def test_organisation_rooms_follow_permissions(app, make):
    org, other_org = make.org(), make.org()
    staff, iag, foreign = make.user(org=org), make.user(kind="iag", org=org), make.user(org=other_org)
    room = make.room(staff, visibility="organisation")
    make.thread(staff, room, title="Force only", body="quartermaster inventory")
    settle(app)
    assert len(search_ids(staff, "quartermaster")) == 1
    assert search_ids(iag, "quartermaster") == [] and search_ids(foreign, "quartermaster") == []


def test_readable_room_list_is_the_permission_clause(app, make):
    """search.service asks auth.policy.readable_room_id_list (one prepared statement) for the rooms
    it searches: the same rooms as readable_rooms_clause for every kind of account."""
    from rooms import policy
    from collab.extensions import db

    org, other_org = make.org(), make.org()
    staff, iag, foreign = make.user(org=org), make.user(kind="iag", org=org), make.user(org=other_org)
    loner, gone = make.user(), make.user(org=org)
    rooms = [make.room(staff, visibility="organisation"), make.room(foreign, visibility="organisation"),
             make.room(staff, visibility="national"), make.room(staff, members=[iag]),
             make.room(foreign, members=[loner]), make.room(foreign)]
    gone.active = False
    db.session.commit()
    expected = {
        staff: {rooms[0].id, rooms[2].id, rooms[3].id}, iag: {rooms[2].id, rooms[3].id},
        foreign: {rooms[1].id, rooms[2].id, rooms[4].id, rooms[5].id}, loner: {rooms[2].id, rooms[4].id},
        gone: set(),
    }
    for user, want in expected.items():
        got = policy.readable_room_id_list(user)
        assert sorted(got) == sorted(db.session.scalars(policy.readable_room_ids(user)))
        assert set(got) == want, user.name
    assert policy.readable_room_id_list(None) == []


# -- freshness -------------------------------------------------------------------------

def test_searchable_within_a_second_of_create_edit_delete(app, make):
    from rooms import posts as room_posts

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Warm-up", body="first post builds the index")
    settle(app)

    p = make.reply(u, t, "The pelican crossing is broken.")
    _, took = wait_until(lambda: search_ids(u, "pelican") == [p.id], timeout=1.0)
    room_posts.edit_post(u, p.id, body="The zebra crossing is broken.")
    wait_until(lambda: search_ids(u, "zebra") == [p.id] and search_ids(u, "pelican") == [], timeout=1.0)
    room_posts.delete_post(u, p.id)
    wait_until(lambda: search_ids(u, "zebra") == [], timeout=1.0)
    th = room_posts.create_thread(u, room.id, title="Ferry timetable", body="boats")
    op = _opening(th)
    wait_until(lambda: search_ids(u, "ferry") == [op], timeout=1.0)


def test_renamed_thread_and_hidden_post_follow_within_a_second(app, make):
    from collab.extensions import db
    from rooms.models import Post, Thread

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Quarterly figures", body="nothing yet")
    r = make.reply(u, t, "The lamplighter came.")
    settle(app)
    op = _opening(t)
    assert search_ids(u, "quarterly in:title") == [op]
    db.begin_write()
    db.session.get(Thread, t.id).title = "Annual figures"
    db.session.commit()
    wait_until(lambda: search_ids(u, "annual in:title") == [op] and search_ids(u, "quarterly in:title") == [],
               timeout=1.0)
    if hasattr(Post, "hidden_at"):  # moderation hides a post: gone from search too
        from collab.db import utcnow

        db.begin_write()
        db.session.get(Post, r.id).hidden_at = utcnow()
        db.session.commit()
        wait_until(lambda: search_ids(u, "lamplighter") == [], timeout=1.0)


@only(WHOOSH_COMBOS)
def test_whoosh_matcher_fallback_agrees_with_the_fast_path(app, make, combo):
    """The set-operation evaluation (search.fastpath) and Whoosh's own matchers, which the
    backend falls back to, find the same posts."""
    from search import state

    u, other = make.user(), make.user()
    room = make.room(u, visibility="national")
    hidden = make.room(other, visibility="private")
    t = make.thread(u, room, title="Harbour master", body="The harbour master inspects moorings.")
    make.reply(u, t, "Moorings were inspected by the master of the harbour in May.")
    make.reply(u, t, "Ferry moorings and a new pontoon.")
    make.thread(other, hidden, title="Harbour secrets", body="harbour moorings master secret")
    settle(app)
    queries = ["harbour", "moorings -ferry", '"harbour master"', "moor*", "ferry OR pontoon", "master harbour",
               "in:title harbour", "has:attachment harbour", "author:nobody harbour"]
    backend = state(app).backend
    fast = {q: (sorted(search_ids(u, q)), _service().search(u, q).total) for q in queries}
    backend.fast = False
    try:
        slow = {q: (sorted(search_ids(u, q)), _service().search(u, q).total) for q in queries}
    finally:
        backend.fast = True
    assert fast == slow
    assert fast["harbour"][1] == 2 and fast['"harbour master"'][1] == 1


def test_outbox_row_commits_with_the_post_and_rolls_back_with_it(app, make):
    from collab.extensions import db
    from rooms.models import Post
    from search.models import SearchOutbox

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room)
    settle(app)
    db.begin_write()
    p = Post(thread_id=t.id, author_id=u.id, body="ghost", html="<p>ghost</p>", path="x")
    db.session.add(p)
    db.session.flush()
    assert db.session.scalar(select(SearchOutbox.post_id).where(SearchOutbox.post_id == p.id)) == p.id
    db.session.rollback()
    assert db.session.scalar(select(SearchOutbox.id).where(SearchOutbox.post_id == p.id)) is None


# -- attachments -----------------------------------------------------------------------

def test_pdf_and_docx_text_is_searchable(app, make):
    from rooms import posts as room_posts

    svc = _service()
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Minutes", body="see the files")
    settle(app)
    p, _ = room_posts.create_post(u, t.id, body="Attached the report.",
                                  uploads=[("minutes.pdf", io.BytesIO(pdf_bytes("Quarterly hedgehog census results"))),
                                           ("notes.docx", io.BytesIO(docx_bytes("Volunteers discussed marmalade.")))])
    wait_until(lambda: search_ids(u, "hedgehog") == [p.id], timeout=2.0)
    assert search_ids(u, "marmalade") == [p.id]
    assert search_ids(u, "minutes has:attachment") == [p.id]  # file names too
    (r,) = svc.search(u, "census").results
    assert r.in_attachment and "<mark>census</mark>" in r.snippet_html
    q = make.reply(u, t, "A later note about badgers")
    room_posts.add_attachments(u, q.id, [("badger.pdf", io.BytesIO(pdf_bytes("Sett survey in Kent")))])
    wait_until(lambda: search_ids(u, "sett survey") == [q.id], timeout=2.0)
    broken = make.reply(u, t, "corrupt file")
    room_posts.add_attachments(u, broken.id, [("broken.pdf", io.BytesIO(b"%PDF-1.4 not really a pdf"))])
    wait_until(lambda: search_ids(u, "broken has:attachment") == [broken.id], timeout=2.0)


# -- the page and the API --------------------------------------------------------------

BAD = ['"unbalanced', "*", "stop\x00search\x1b[31m", "))((", "OR", "-", "room:", "a*", '""',
       "before:2024-13-45", "\u202e\u200b", "author:%", "in:nowhere has:everything", "🙂 *** ---"]


def test_search_page_and_bad_queries(app, make, client, auth):
    u = make.user()
    room = make.room(u, visibility="national", name="Harbour watch")
    t = make.thread(u, room, title="Moorings", body="The moorings need inspecting.")
    settle(app)
    auth.login(u)
    r = client.get("/search", query_string={"q": "mooring"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "1 result" in html and "<mark>moorings</mark>" in html
    assert f"/posts/{_opening(t)}" in html and "Harbour watch" in html
    r = client.get("/search")
    assert r.status_code == 200 and "Type words to look for" in r.get_data(as_text=True)
    room_page = client.get(f"/rooms/{room.id}").get_data(as_text=True)
    assert 'name="room_id"' in room_page and "Search within this room" in room_page
    r = client.get("/search", query_string={"q": "moorings", "room_id": room.id, "sort": "newest"})
    assert "Search this room" in r.get_data(as_text=True) and "1 result" in r.get_data(as_text=True)
    for q in BAD:
        r = client.get("/search", query_string={"q": q, "sort": "bogus", "page": "abc"})
        assert r.status_code == 200, q
    assert "not closed" in client.get("/search", query_string={"q": '"unbalanced'}).get_data(as_text=True)
    assert "on its own" in client.get("/search", query_string={"q": "*"}).get_data(as_text=True)
    r = client.get("/search", query_string={"q": "x" * 10_000})  # too big to run: refused (tests/test_search_trust.py)
    assert r.status_code == 400 and "at most 500 characters" in r.get_data(as_text=True)


def test_api(app, make):
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Bridge closure", body="The bridge closes on Sunday.")
    p = make.reply(u, t, "Which bridge?")
    settle(app)
    tok = make.token(u)
    c = app.test_client()
    r = c.get("/api/v1/search", query_string={"q": "bridge", "sort": "newest"}, headers=bearer(tok))
    assert r.status_code == 200
    body = r.json
    assert body["total"] == 2 and [x["post_id"] for x in body["results"]] == [p.id, _opening(t)]
    first = body["results"][0]
    assert set(first) == {"post_id", "thread_id", "room_id", "room_name", "title", "label", "author_name", "is_opening",
                          "reply_number", "in_attachment", "snippet_html", "created_at"}
    assert first["label"] == f"Reply #1 by {u.name}" and first["reply_number"] == 1 and not first["is_opening"]
    assert first["thread_id"] == t.id and first["room_id"] == room.id and first["title"] == "Bridge closure"
    assert "<mark>bridge</mark>" in first["snippet_html"] and first["created_at"].endswith("Z")
    r = c.get("/api/v1/search", query_string={"q": "bridge", "room_id": room.id, "page": 1}, headers=bearer(tok))
    assert r.json["total"] == 2
    assert c.get("/api/v1/search", query_string={"q": "bridge", "sort": "up"}, headers=bearer(tok)).status_code == 422
    assert c.get("/api/v1/search", query_string={"q": "x", "page": "0"}, headers=bearer(tok)).status_code == 422
    assert c.get("/api/v1/search", query_string={"q": "x", "room_id": "abc"}, headers=bearer(tok)).status_code == 422
    assert c.get("/api/v1/search", query_string={"q": "x", "room_id": "999999"}, headers=bearer(tok)).status_code == 404
    assert c.get("/api/v1/search", query_string={"q": "bridge"}).status_code == 401
    for q in BAD:
        r = c.get("/api/v1/search", query_string={"q": q}, headers=bearer(tok))
        assert r.status_code == 200 and isinstance(r.json["results"], list), q
    doc = c.get("/api/v1/openapi.json", headers=bearer(tok)).json
    assert "/search" in doc["paths"]


# -- rebuilding ------------------------------------------------------------------------

def test_rebuild_command_and_status(app, make, runner):
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Lantern", body="lantern one")
    for i in range(5):
        make.reply(u, t, f"lantern {i}")
    settle(app)
    res = runner.invoke(args=["search", "rebuild", "--procs", "1"])
    assert res.exit_code == 0, res.output
    assert "Indexed 6 posts" in res.output
    assert len(search_ids(u, "lantern")) == 6
    res = runner.invoke(args=["search", "status"])
    assert "health: ok" in res.output and "documents: 6" in res.output and "outbox: 0" in res.output


@only(WHOOSH_COMBOS)  # a Whoosh index folder to break
def test_missing_or_broken_index_is_rebuilt_in_the_background(app, make, combo):
    from search import state, service

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Kestrel", body="kestrel sighting")
    settle(app)
    st = state(app)
    d = st.backend.current_dir()
    for f in d.iterdir():  # what a crash without fsync can leave: truncated files
        if f.name.endswith((".seg", ".pst", ".trm")) or f.name.startswith("_MAIN_"):
            f.write_bytes(b"")
    st.backend.close()
    app.config["SEARCH_INLINE_REBUILD_MAX"] = 0  # force the background path even for a tiny install
    st.indexer._checked = False
    st.indexer.kick()
    res = service.search(u, "kestrel")
    assert res.results == [] and service.REBUILDING in res.notices
    def back():
        res = service.search(u, "kestrel")
        return [r.post_id for r in res.results] == [_opening(t)] and res.notices == []

    wait_until(back, timeout=30, step=0.1)
    assert st.backend.current_dir() != d

    shutil.rmtree(st.backend.root)  # gone entirely
    st.backend.close()
    st.indexer._checked = False
    app.config["SEARCH_INLINE_REBUILD_MAX"] = 1000
    make.reply(u, t, "second kestrel")  # the commit wakes the indexer, which finds no index
    wait_until(lambda: len(search_ids(u, "kestrel")) == 2, timeout=10, step=0.05)


# -- consistency regressions ---------------------------------------------------------------

def test_a_search_right_after_a_write_finds_it_even_when_the_index_was_missing(app, make):
    """No index yet (a fresh install): the first commit wakes the indexer, which must
    build one before indexing. A search straight after the write (no waiting in the
    test) finds the post: the search first lets this process's indexer catch up."""
    svc = _service()
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Stopwatch", body="the stopwatch banner words")
    page = svc.search(u, "stopwatch")
    assert [r.post_id for r in page.results] == [_opening(t)] and not page.rebuilding
    p = make.reply(u, t, "a second stopwatch, straight away")
    assert sorted(search_ids(u, "stopwatch")) == sorted([_opening(t), p.id])


def test_asking_whether_a_rebuild_runs_never_looks_like_one(app, make):
    """`rebuilding()` is asked by every search and by the indexer before it rebuilds or
    drains; two such questions at the same moment must not take each other for a rebuild
    (they did: the indexer then skipped rebuilding a missing index until the next write)."""
    import fcntl
    import os

    from search import state

    st = state(app)
    path = st.indexer.rebuild_lock.path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # another probe, caught mid-question
        assert not st.indexer.rebuilding()
        fcntl.flock(fd, fcntl.LOCK_UN)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a real rebuild elsewhere
        assert st.indexer.rebuilding()
    finally:
        os.close(fd)
    assert not st.indexer.rebuilding()


def test_equal_relevance_goes_to_the_newest_whatever_the_segments(app, make):
    """Posts with the same text score the same wherever the index keeps them, and among
    equal scores the newest come first (page 1 of many equal matches shows the newest)."""
    svc = _service()
    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Long", body=" ".join(f"filler{i}" for i in range(120)))
    ids = []
    for batch in range(3):  # separate index updates (segments), with longer posts beside them
        for i in range(9):
            ids.append(make.reply(u, t, "wombat crossing").id)
        make.reply(u, t, "wombat " + " ".join(f"padding{batch}x{i}" for i in range(150)))
        settle(app)
    page = svc.search(u, "wombat crossing")
    assert page.total == 27
    assert [r.post_id for r in page.results] == sorted(ids, reverse=True)[:20]
