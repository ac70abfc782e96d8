"""Search and what a caller may not learn through it (issue 10): text drawn from the
attachments of a room whose files are kept from the caller (guests in a room labelled
above the lowest label) is no hit, no count, no suggestion and no snippet; `author:`
answers the same whether or not an account of that name exists. Run on Whoosh
(SQLite and PostgreSQL) and on the PostgreSQL full-text backend."""
from __future__ import annotations

import io
import re


from tests.conftest import bearer
from tests.test_search_support import WHOOSH_COMBOS, combo_fixtures, only, pdf_bytes, search_ids, settle

combo, backend, app_config = combo_fixtures()


def _labelled_room_with_a_file(make):
    from rooms import trust_settings
    from rooms import posts as room_posts

    owner, guest, member = make.user(), make.user(kind="guest"), make.user()
    room = make.room(owner, visibility="private", members=[guest, member])
    trust_settings.set_label(owner, room.id, "OFFICIAL-SENSITIVE")
    t = make.thread(owner, room, title="Custody review", body="Notes attached for the panel.")
    p, _ = room_posts.create_post(owner, t.id, body="The review of the harbour incident is attached.",
                                  uploads=[("review.pdf", io.BytesIO(pdf_bytes(
                                      "The officer named Quillfeather restrained the detainee harbour")))])
    return owner, guest, member, room, t, p


def test_guest_gets_no_hit_count_or_snippet_from_a_labelled_rooms_attachment(app, make, combo):
    from search import service

    owner, guest, member, room, t, p = _labelled_room_with_a_file(make)
    settle(app)
    # The member (not a guest) finds the file's words, with the file's sentence as the snippet.
    (r,) = service.search(member, "quillfeather").results
    assert r.post_id == p.id and r.in_attachment and "Quillfeather" in r.snippet_html
    # The guest: a word only in the file is no hit at all, in any form of query.
    for q in ("quillfeather", "quillfeath*", '"officer named"', "quillfeather harbour", "review.pdf",
              "detainee OR nonsenseword", f"room:{room.id} quillfeather", "quillfeather has:attachment"):
        res = service.search(guest, q)
        assert res.results == [] and res.total == 0, q
    assert service.search(guest, "quillfeathr").suggestion is None  # nor a spelling learnt from the file
    assert service.search(member, "quillfeathr").suggestion  # (the member is helped)
    # ... nor does a file's word take a post away: "-word" reads the post's own text only.
    assert search_ids(guest, "incident -quillfeather") == [p.id]
    # A hit on the post's own text shows that text only.
    (r,) = service.search(guest, "harbour").results
    assert r.post_id == p.id and not r.in_attachment
    assert "incident" in r.snippet_html and "detainee" not in r.snippet_html and "Quillfeather" not in r.snippet_html
    assert service.search(guest, "harbour").total == 1
    # The same over the API.
    c = app.test_client()
    body = c.get("/api/v1/search", query_string={"q": "quillfeather"}, headers=bearer(make.token(guest))).json
    assert body["total"] == 0 and body["results"] == []
    body = c.get("/api/v1/search", query_string={"q": "detainee harbour"},
                 headers=bearer(make.token(guest))).json
    assert body["total"] == 0
    # Once the room is back at the lowest label the guest may read the files, and search them.
    from rooms import trust_settings

    trust_settings.set_label(owner, room.id, "OFFICIAL")
    assert search_ids(guest, "quillfeather") == [p.id]


def test_guest_in_an_unlabelled_room_searches_its_attachments(app, make):
    from rooms import posts as room_posts

    owner, guest = make.user(), make.user(kind="guest")
    room = make.room(owner, visibility="private", members=[guest])
    t = make.thread(owner, room, title="Agenda", body="see file")
    p, _ = room_posts.create_post(owner, t.id, body="Attached.",
                                  uploads=[("a.pdf", io.BytesIO(pdf_bytes("Zephyrine estate patrols")))])
    settle(app)
    assert search_ids(guest, "zephyrine") == [p.id]


@only(WHOOSH_COMBOS)
def test_whoosh_matchers_keep_a_guest_from_attachment_text_too(app, make, combo):
    """The fallback (Whoosh's own matchers) applies the same rule as the fast path."""
    from search import service, state

    owner, guest, member, room, t, p = _labelled_room_with_a_file(make)
    settle(app)
    backend = state(app).backend
    backend.fast = False
    try:
        for q in ("quillfeather", "quillfeath*", '"officer named"', "incident -quillfeather", "harbour"):
            fast_off = sorted(search_ids(guest, q))
            assert fast_off == ([p.id] if q in ("harbour", "incident -quillfeather") else []), q
        assert search_ids(member, "quillfeather") == [p.id]
        assert service.search(guest, "quillfeathr").suggestion is None
    finally:
        backend.fast = True


def _without_csrf(page: str) -> str:
    return re.sub(r'(name="csrf[-_]token" (?:content|value)=")[^"]*"', r'\1"', page)


def test_author_filter_answers_the_same_whether_or_not_the_name_exists(app, make, client, auth):
    from search import service

    org, elsewhere = make.org(), make.org()
    me = make.user(org=org)
    make.user(name="Bartholomew Quince", org=elsewhere)  # exists, but wrote nothing I can read
    room = make.room(me, visibility="private")
    make.thread(me, room, title="Patrol", body="evening patrol plans")
    settle(app)
    real = service.search(me, 'author:"Bartholomew Quince" patrol')
    made_up = service.search(me, 'author:"Bartholomew Quincy" patrol')
    assert (real.total, [n.replace("Quince", "X") for n in real.notices], real.results) == \
        (made_up.total, [n.replace("Quincy", "X") for n in made_up.notices], made_up.results)
    assert real.total == 0
    auth.login(me)
    a = client.get("/search", query_string={"q": 'author:"Bartholomew Quince"'}).get_data(as_text=True)
    b = client.get("/search", query_string={"q": 'author:"Bartholomew Quincy"'}).get_data(as_text=True)
    # The CSRF token is signed with the time: two requests a second apart carry different ones.
    assert _without_csrf(a).replace("Quince", "X") == _without_csrf(b).replace("Quincy", "X")
    # A name the searcher can read posts of is still found.
    assert len(search_ids(me, f'author:"{me.name}" patrol')) == 1


def test_author_names_in_non_attributed_rooms_never_match(app, make):
    from rooms import trust_settings
    from search import service

    owner, member = make.user(), make.user(name="Wilhelmina Strand")
    room = make.room(owner, visibility="private", members=[member])
    trust_settings.set_non_attributed(owner, room.id, True)
    t = make.thread(owner, room, title="Frank views", body="opening")
    make.reply(member, t, "candid remarks about staffing")
    settle(app)
    other = make.user()
    make.room(owner, visibility="private", members=[other])
    a = service.search(other, 'author:"Wilhelmina Strand" staffing')
    b = service.search(other, 'author:"Wilhelmina Strandx" staffing')
    assert (a.total, [n.replace("Strand”", "X”") for n in a.notices]) == \
        (b.total, [n.replace("Strandx”", "X”") for n in b.notices]) and a.total == 0
    # A fellow member learns nothing either: names do not match in a non-attributed room.
    c = service.search(owner, 'author:"Wilhelmina Strand" staffing')
    assert c.total == 0


# -- bounds on what one search may cost (issue 10, leak 10) ------------------------------------------

def test_searches_beyond_the_bounds_are_refused_with_a_clear_400(app, make, client, auth):
    from search.query import MAX_CLAUSES, MAX_PREFIXES, MAX_QUERY_CHARS

    u = make.user()
    room = make.room(u, visibility="national")
    make.thread(u, room, title="Moorings", body="The moorings need inspecting.")
    settle(app)
    too_long = " ".join(["éléphantàçüñœ" + str(i) for i in range(60)])
    assert len(too_long) > MAX_QUERY_CHARS
    too_many = " ".join(f"word{i}" for i in range(MAX_CLAUSES + 1))
    many_ors = " OR ".join(f"word{i}" for i in range(MAX_CLAUSES + 1))
    many_starts = " ".join(f"abc{i}*" for i in range(MAX_PREFIXES + 1))
    tok = make.token(u)
    c = app.test_client()
    for q, says in ((too_long, "characters"), (too_many, "words"), (many_ors, "words"), (many_starts, "word starts")):
        r = c.get("/api/v1/search", query_string={"q": q}, headers=bearer(tok))
        assert r.status_code == 400 and says in r.json["error"]["message"], q
        assert r.json["error"]["field"] == "q"
    auth.login(u)
    r = client.get("/search", query_string={"q": too_many})
    assert r.status_code == 400 and "at most" in r.get_data(as_text=True)
    # Within the bounds: fine.
    ok = " ".join(f"word{i}" for i in range(MAX_CLAUSES - 1)) + " moorings"
    assert c.get("/api/v1/search", query_string={"q": ok}, headers=bearer(tok)).status_code == 200


@only([("sqlite", "whoosh")])
def test_search_is_rate_limited_per_account(tmp_path, sqlite_template, combo):
    """The page and the API share one per-account budget; another account is not affected."""
    import shutil

    from tests.conftest import Factory, RequestClient, make_test_app

    shutil.copy(sqlite_template, tmp_path / "collab.db")
    app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'collab.db'}", SEARCH_LIMIT="5 per minute",
                        SEARCH_SWEEP_SECONDS=0)
    app.test_client_class = RequestClient
    with app.app_context():
        make = Factory(app)
        u, other = make.user(), make.user()
        tu, to = make.token(u), make.token(other)
        c = app.test_client()
        codes = [c.get("/api/v1/search", query_string={"q": "anything"}, headers=bearer(tu)).status_code
                 for _ in range(5)]
        assert codes == [200] * 5
        r = c.get("/api/v1/search", query_string={"q": "anything"}, headers=bearer(tu))
        assert r.status_code == 429 and "Too many searches" in r.json["error"]["message"]
        assert c.get("/api/v1/search", query_string={"q": "anything"}, headers=bearer(to)).status_code == 200
        page = app.test_client()
        page.post("/login", data={"email": u.email, "password": "a long enough test passphrase"})
        r = page.get("/search", query_string={"q": "anything"})
        assert r.status_code == 429 and "Too many searches" in r.get_data(as_text=True)
        from collab.extensions import db

        db.session.remove()
        db.engine.dispose()
