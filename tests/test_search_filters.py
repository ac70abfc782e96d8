"""The search page's filter controls (room, author, date range, has attachment) and results
labelled with the post they are (issue 14), on both backends; in a non-attributed room a result
names nobody and the author control tells nothing about who wrote there."""
from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import update

from tests.conftest import bearer
from tests.test_search_support import combo_fixtures, pdf_bytes, settle

combo, backend, app_config = combo_fixtures()


def test_filter_controls_and_labelled_results(app, make, client, auth, combo):
    from collab.extensions import db
    from rooms import posts as room_posts
    from rooms import trust_settings
    from rooms.models import Post
    from search import service
    from search.service import Filters

    priya, tunde = make.user(name="Priya Shah"), make.user(name="Tunde Bakare")
    room = make.room(priya, visibility="national", name="Custody review", members=[tunde])
    quiet = make.room(priya, visibility="national", name="Chatham room", members=[tunde])
    trust_settings.set_non_attributed(priya, quiet.id, True)
    t = make.thread(priya, room, title="Cell checks", body="Cell checks at night are logged.")
    replies = [make.reply(priya if i % 2 else tunde, t, f"Cell check note {i}") for i in range(1, 13)]
    old = replies[0]
    then = old.created_at - timedelta(days=30)
    db.begin_write()
    db.session.execute(update(Post).where(Post.id == old.id).values(created_at=then))
    db.session.commit()
    room_posts.add_attachments(tunde, replies[-1].id, [("cells.pdf", io.BytesIO(pdf_bytes("rota")))])
    secret_t = make.thread(tunde, quiet, title="Frank talk", body="Cell conditions are poor, said someone.")
    settle(app)
    from search.indexer import rebuild

    rebuild(app, quiet=True)  # (the changed date)

    res = service.search(priya, "cell", room_id=room.id, sort="newest")
    labels = {r.post_id: r.label for r in res.results}
    assert labels[replies[11].id] == "Reply #12 by Tunde Bakare"
    assert labels[replies[0].id] == "Reply #1 by Priya Shah"
    opening = [r for r in res.results if r.is_opening][0]
    assert opening.label == "Opening post by Priya Shah"

    # author (part of a name), dates (both ends included), attachment: the same as the syntax
    by = lambda **kw: {r.post_id for r in service.search(priya, "cell", filters=Filters(**kw)).results}  # noqa: E731
    assert by(author="bakare") == {r.id for i, r in enumerate(replies, 1) if i % 2 == 0}
    day = then.date().isoformat()
    assert by(after=day, before=day) == {old.id}
    assert old.id not in by(after=(then + timedelta(days=1)).date().isoformat())
    assert by(has_attachment=True) == {replies[-1].id}
    bad = service.search(priya, "cell", filters=Filters(after="yesterday"))
    assert any("not a date" in n for n in bad.notices) and bad.total > 0

    # A non-attributed room: the result names nobody; the author filter skips the room, and answers
    # the same for its real author as for a name nobody has.
    found = service.search(priya, "conditions")
    assert [r.post_id for r in found.results] and "Tunde" not in found.results[0].label
    assert found.results[0].label.startswith("Opening post by Participant")
    for name in ("Tunde", "Nobody-at-all"):
        r = service.search(priya, "conditions", filters=Filters(author=name))
        assert r.results == [] and r.total == 0
        assert "author: does not search non-attributed rooms." in r.notices
    assert secret_t  # (made)

    # The page: controls labelled, values kept in the pager and in "did you mean"
    auth.login(priya)
    page = client.get("/search", query_string={"q": "cell", "author": "Bakare", "attachment": "1",
                                                 "room_id": room.id}).get_data(as_text=True)
    for label in ('for="search-room"', 'for="search-author"', 'for="search-after"', 'for="search-before"',
                  'for="search-attachment"'):
        assert label in page
    assert "Reply #12 by Tunde Bakare" in page and 'name="attachment" value="1" checked' in page
    assert f'<option value="{room.id}" selected>' in page
    page = client.get("/search", query_string={"q": "celll", "author": "Bakare"}).get_data(as_text=True)
    assert "Did you mean" in page and "author=Bakare" in page
    for odd in ({"after": "x" * 5000}, {"before": "2024-13-45"}, {"author": "\x00" * 300}, {"attachment": "yes"}):
        assert client.get("/search", query_string=dict(odd, q="cell")).status_code == 200

    # The API: the same filters as parameters, the same labels on each result; malformed filters are a
    # 422 naming the parameter, never a 500.
    api = app.test_client()
    tok = bearer(make.token(priya))

    def api_search(**params):
        r = api.get("/api/v1/search", query_string={"q": "cell", **params}, headers=tok)
        assert r.status_code == 200, r.json
        return r.json

    got = api_search(room_id=room.id, sort="newest")
    by_id = {r["post_id"]: r for r in got["results"]}
    assert by_id[replies[11].id]["label"] == "Reply #12 by Tunde Bakare"
    assert by_id[replies[11].id]["reply_number"] == 12 and by_id[replies[11].id]["author_name"] == "Tunde Bakare"
    assert by_id[replies[0].id]["label"] == "Reply #1 by Priya Shah"
    opening_row = next(r for r in got["results"] if r["is_opening"])
    assert opening_row["label"] == "Opening post by Priya Shah" and opening_row["reply_number"] is None
    assert opening_row["room_name"] == "Custody review"
    ids = lambda **kw: {r["post_id"] for r in api_search(**kw)["results"]}  # noqa: E731
    assert ids(author="bakare") == by(author="bakare")
    assert ids(after=day, before=day) == {old.id}
    assert ids(has_attachment="true") == {replies[-1].id}
    assert ids(has_attachment="false") == ids()
    found = api_search(q="conditions")
    assert found["results"][0]["label"].startswith("Opening post by Participant")
    assert "Tunde" not in str(found["results"][0])
    assert api_search(q="conditions", author="Tunde")["notices"] == ["author: does not search non-attributed rooms."]
    for name, value in (("after", "yesterday"), ("before", "2024-13-45"), ("after", "2024-03"),
                        ("has_attachment", "yes"), ("author", "x" * 101)):
        r = api.get("/api/v1/search", query_string={"q": "cell", name: value}, headers=tok)
        assert r.status_code == 422 and r.json["error"]["field"] == name, (name, value)
