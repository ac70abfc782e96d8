"""The thread page as rooms/thread_page.py prepares it: the tree written as one flat loop nests
exactly as the reply tree, its links are the routes' own addresses, and the number of
queries does not grow with the number of posts shown."""
from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import lxml.html
from flask import url_for
from sqlalchemy import event, select

from collab.extensions import db
from rooms import moderation
from rooms import posts as room_posts
from rooms.models import Attachment
from tests.conftest import PASSWORD


def _client(app, user):
    c = app.test_client()
    assert c.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return c


def _doc(resp):
    assert resp.status_code == 200, resp.status_code
    return lxml.html.fromstring(resp.get_data(as_text=True))


def test_tree_nests_every_reply_under_its_parent(app, make):
    owner = make.user()
    room = make.room(owner, visibility="national")
    thread = make.thread(owner, room)
    parent_of: dict[int, int | None] = {}  # reply -> the reply it answers (None: the opening post)
    depth_of: dict[int, int] = {}

    def reply(body, parent=None):
        post = make.reply(owner, thread, body, parent=parent)
        parent_of[post.id], depth_of[post.id] = (parent.id if parent else None), post.depth
        return post

    chain, parent = [], None
    for depth in range(1, 11):  # one branch ten levels deep: levels 5-8 and 9-10 are behind "show more"
        parent = reply(f"depth {depth}", parent)
        chain.append(parent)
    top_sibling = reply("another top-level reply")
    for at in (3, 4, 8):  # siblings deeper down, two of them inside a "show more"
        reply(f"sibling of {chain[at].id}", chain[at - 1])
    last = reply("last top-level reply")

    doc = _doc(_client(app, owner).get(f"/threads/{thread.id}"))
    replies = doc.xpath('//section[contains(@class, "thread-replies")]//article[@data-post-id]')
    assert sorted(int(a.get("data-post-id")) for a in replies) == sorted(parent_of)
    for a in replies:
        pid = int(a.get("data-post-id"))
        li = a.getparent()
        assert li.tag == "li" and li.get("class").split() == ["reply", f"depth-{min(depth_of[pid], 6)}"]
        up = [int(x) for x in li.xpath("ancestor::li[1]/article/@data-post-id")]
        assert up == ([parent_of[pid]] if parent_of[pid] else [])
    # Levels 1-4 are shown; the fourth level's replies and the eighth's are each behind "Show more replies".
    details = doc.xpath('//details[contains(@class, "more-replies")]')
    assert [int(d.xpath("ancestor::li[1]/article/@data-post-id")[0]) for d in details] == [chain[3].id, chain[7].id]
    assert [d.xpath("string(summary)") for d in details] == ["Show more replies (2)", "Show more replies (2)"]
    assert all(len(d.xpath("./ol[@class='replies']")) == 1 for d in details)
    top = doc.xpath('//section[contains(@class, "thread-replies")]/ol[@class="replies"]/li/article/@data-post-id')
    assert [int(x) for x in top] == [chain[0].id, top_sibling.id, last.id]


def test_post_links_are_the_routes_addresses(app, make):
    owner, member = make.user(), make.user()
    room = make.room(owner, visibility="private", members=[member])
    thread = make.thread(owner, room)
    mine = make.reply(owner, thread, "mine")
    room_posts.edit_post(owner, mine.id, body="mine, edited")
    theirs = make.reply(member, thread, "theirs", parent=mine)
    room_posts.add_attachments(member, theirs.id, [("notes.txt", io.BytesIO(b"minutes"))])

    doc = _doc(_client(app, owner).get(f"/threads/{thread.id}"))
    with app.test_request_context():
        def links(post):
            art = doc.xpath(f'//article[@id="post-{post.id}"]')[0]
            return set(art.xpath(".//a/@href")) | set(art.xpath(".//form/@action"))

        # Reply and the "…" menu, whose entries (data-actions) static/js/post_menu.js turns into these addresses;
        # without JavaScript the menu is the post's actions page, with the same ones.
        def menu(post):
            return doc.xpath(f'//article[@id="post-{post.id}"]//a[contains(@class, "post-menu")]/@data-actions')[0].split()

        assert links(mine) == {url_for("rooms.post_link", post_id=mine.id), url_for("rooms.history", post_id=mine.id),
                               url_for("rooms.reply", post_id=mine.id), url_for("rooms.post_actions", post_id=mine.id)}
        assert menu(mine) == ["edit", "history", "moderate", "delete"]
        att = db.session.scalar(select(Attachment).where(Attachment.post_id == theirs.id))
        assert links(theirs) == {url_for("rooms.post_link", post_id=theirs.id), url_for("rooms.reply", post_id=theirs.id),
                                 url_for("rooms.post_actions", post_id=theirs.id),
                                 url_for("rooms.attachment", attachment_id=att.id, filename="notes.txt")}
        assert menu(theirs) == ["flag", "moderate", "delete"]
        page = _doc(_client(app, owner).get(url_for("rooms.post_actions", post_id=mine.id)))
        assert set(page.xpath("//main//ul//a/@href")) | set(page.xpath("//main//ul//form/@action")) == {
            url_for("rooms.reply", post_id=mine.id), url_for("rooms.edit", post_id=mine.id),
            url_for("rooms.history", post_id=mine.id), url_for("rooms.moderate_post", post_id=mine.id),
            url_for("rooms.delete", post_id=mine.id)}
        js = (Path(__file__).resolve().parent.parent / "collab/static/js/post_menu.js").read_text()
        for name in ("edit", "history", "flag", "moderate", "delete"):
            assert re.search(rf"\b{name}: \{{ label: ", js), name  # every entry the page names, the menu knows
    # Every link on the page answers (no address written by hand that the app does not serve).
    c = _client(app, owner)
    for href in doc.xpath("//article//a/@href"):
        assert c.get(href).status_code in (200, 302), href


def _count_queries(app, client, url) -> int:
    """The statements the request itself runs: the test client serves it in this thread, while the app's
    background work (the search indexer draining its outbox after the first request) runs in others."""
    seen: list[str] = []
    me = threading.get_ident()

    def count(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_queries_do_not_grow_with_the_posts_shown(app, make):
    owner = make.user()
    people = [make.user() for _ in range(4)]
    room = make.room(owner, visibility="private", members=people)
    small, large = make.thread(owner, room), make.thread(owner, room)
    for thread, n in ((small, 2), (large, 30)):
        posts, parent = [], None
        for i in range(n):
            author = people[i % len(people)]
            parent = make.reply(author, thread, f"reply {i}", parent=parent if i % 3 else None)
            posts.append(parent)
            if i in (1, 7):
                room_posts.add_attachments(author, parent.id, [(f"f{i}.txt", io.BytesIO(b"x"))])
        room_posts.delete_post(posts[-1].author_id and people[(n - 1) % len(people)], posts[-1].id)
        moderation.hide_post(owner, posts[0].id, "Off topic")
    c = _client(app, owner)
    for view in ("", "?view=flat"):
        for thread in (small, large):  # read once: the read marker moves on the first visit only
            c.get(f"/threads/{thread.id}{view}")
        # The fewest of two visits: now and then a request also does upkeep of its own (the session's
        # last-seen time), which is not the page's doing.
        counts = [min(_count_queries(app, c, f"/threads/{t.id}{view}") for _ in range(2)) for t in (small, large)]
        assert counts[0] == counts[1] < 20, (view, counts)
