"""Word forms (issue 14): the same analysis for the index and the query on both backends, so a
correctly spelled word finds every form of it; "did you mean" offers only words written in posts
the caller may read, never an index term; an index made by an older analysis is rebuilt."""
from __future__ import annotations

import json

from sqlalchemy import text

from tests.test_search_support import combo_fixtures, search_ids, settle

combo, backend, app_config = combo_fixtures()

POSTS = {
    "cuffs": "Constables were handcuffing the suspect outside the station.",
    "org": "The organisation's response was published on Monday.",
    "behaviour": "Antisocial behavior near the community center again.",
    "hyphen": "A stop-and-search encounter filmed on body-worn video.",
    "executed": "The warrant was executed at dawn.",
    "possessive": "We read the officer's notebook together.",
    "plural": "Three vehicles were stopped by the roadside.",
    "colour": "The leaflet colours and the programme were agreed.",
    "analyse": "Volunteers analyzed the complaints data.",
    "defence": "The defense lawyer asked for the licence.",
    "asb": "Reports of anti-social driving on the Elm estate.",
    "email": "Send an e-mail to the chair before the meeting.",
    "written": "Please email the minutes.",
}

# typed query -> the posts it must find (and nothing else among POSTS)
FORMS = {
    "handcuffs": {"cuffs"}, "handcuff": {"cuffs"}, "handcuffed": {"cuffs"},  # plural, -ed, -ing
    "organization": {"org"}, "organisations": {"org"}, "organisation's": {"org"},  # British/American, possessive
    "organizational": {"org"},
    "behaviour": {"behaviour"}, "behavioural": {"behaviour"}, "centre": {"behaviour"}, "centres": {"behaviour"},
    # hyphenated: either spelling finds the other (both are indexed for "anti-social"), both ways
    "anti-social": {"behaviour", "asb"}, "antisocial": {"behaviour", "asb"}, "anti‑social": {"behaviour", "asb"},
    '"anti-social driving"': {"asb"}, '"antisocial driving"': {"asb"}, '"reports of antisocial"': {"asb"},
    "e-mail": {"email", "written"}, "email": {"email", "written"}, "emailed": {"email", "written"},
    "stop-and-search": {"hyphen"}, '"stop and search"': {"hyphen"}, "body-worn": {"hyphen"},
    "executing": {"executed"}, "executes": {"executed"},
    "officers": {"possessive"}, "officer’s": {"possessive"}, "officer": {"possessive"},
    "vehicle": {"plural"}, "stopping": {"plural", "hyphen"},
    "color": {"colour"}, "program": {"colour"}, "agreeing": {"colour"},
    "analyse": {"analyse"}, "analysing": {"analyse"},
    "defence": {"defence"}, "license": {"defence"},
}


def test_every_form_of_a_word_finds_its_posts(app, make, combo):
    from search import service

    u = make.user()
    room = make.room(u, visibility="national", name="Word forms")
    t = make.thread(u, room, title="Forms", body="Opening post")
    ids = {k: make.reply(u, t, body).id for k, body in POSTS.items()}
    settle(app)
    for q, want in FORMS.items():
        assert set(search_ids(u, q)) == {ids[k] for k in want}, q
        # what is highlighted is what matched
        res = service.search(u, q)
        assert all("<mark>" in r.snippet_html for r in res.results), q
    assert set(search_ids(u, "handcuff*")) == {ids["cuffs"]}
    assert set(search_ids(u, "antisoc*")) == {ids["behaviour"], ids["asb"]}
    # the hyphenated word is marked whole when its joined form was searched, a part when a part was
    res = service.search(u, "antisocial")
    assert {r.snippet_html.count("<mark>anti-social</mark>") for r in res.results if r.post_id == ids["asb"]} == {1}
    res = service.search(u, "social driving")
    assert "anti-<mark>social</mark> <mark>driving</mark>" in res.results[0].snippet_html


def test_did_you_mean_offers_written_words_the_caller_may_read(app, make, combo):
    from search import service

    owner, member, outsider = make.user(), make.user(), make.user()
    private = make.room(owner, visibility="private", members=[member])
    public = make.room(owner, visibility="national")
    make.thread(owner, public, title="Custody", body="Officers were handcuffing the suspect. The organisation agreed.")
    make.thread(owner, private, title="Secret", body="The codeword is marmalade.")
    make.thread(owner, public, title="Estate", body="Anti-social parking on the estate.")
    settle(app)

    # "handcufz": one edit from "handcuff", written only as "handcuffing": that word, never the term "handcuf"
    assert service.search(member, "handcufz").suggestion == "handcuffing"
    assert service.search(member, "organisaton").suggestion == "organisation"
    assert service.search(member, "organisaton policy").suggestion == "organisation policy"
    assert service.search(member, "marmelade").suggestion == "marmalade"
    assert service.search(outsider, "marmelade").suggestion is None  # a word only in a room it cannot read
    # a word written only hyphenated is offered as written, never as the joined index term
    assert service.search(member, "antisocail").suggestion == "anti-social"
    for q in ("handcufz", "organisaton", "antisocail"):
        res = service.search(outsider, q)
        assert res.suggestion and res.total == 0
        fixed = service.search(outsider, res.suggestion)
        assert fixed.total == 1, q  # the suggestion finds the post


def test_an_index_of_the_old_analysis_is_rebuilt(app, make, combo):
    """An index built before search.spelling (schema marker without "analysis" for Whoosh, no table
    comment for PostgreSQL) is reported outdated by `flask search status` and rebuilt."""
    from collab.extensions import db
    from search import state

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Cuffs", body="Officers were handcuffing the suspect.")
    settle(app)
    st = state(app)
    if combo[1] == "whoosh":
        marker = st.backend.current_dir() / "collab.json"
        data = json.loads(marker.read_text())
        data.pop("analysis")
        marker.write_text(json.dumps(data))
    else:
        db.session.execute(text("COMMENT ON TABLE search_documents IS NULL"))
        db.session.commit()
    health = st.backend.health()
    assert not health.ok and health.reason.startswith("outdated")
    out = app.test_cli_runner().invoke(args=["search", "status"]).output
    assert "outdated" in out and "word analysis" in out
    st.indexer.check()  # what start-up and every sweep do
    assert st.backend.health().ok
    assert search_ids(u, "handcuffs") == [db.session.scalar(text(
        f"SELECT id FROM posts WHERE thread_id = {t.id}"))]
