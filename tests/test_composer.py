"""Issue 14's composer and long threads, server side: the Preview endpoint renders exactly what is posted and is
bounded; a composer that uploads with progress gets JSON answers, so a refused file keeps the composer; a
neutralised javascript: link leaves nothing behind; posts carry one "…" menu (its entries decided in Python)
instead of a row of buttons; the newest-first view says which reply a reply answers."""
from __future__ import annotations

import io

import lxml.html
import pytest
from sqlalchemy import func, select

from collab.extensions import db
from rooms import posts as room_posts
from rooms.composer_views import PREVIEW_LIMIT
from rooms.markdown import render
from rooms.models import Attachment, Post
from tests.live_support import login_client

JSON = {"Accept": "application/json"}


def count(model) -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("source", [
    '[x](javascript:alert("x")) after', "[x](javascript:alert('x')) after", "[x](javascript:fetch('/a').then(r)) after",
    '[x]( javascript:alert("x") ) after', '![i](javascript:alert("1")) after', "[x](javascript:alert(1)) after",
])
def test_a_neutralised_javascript_link_leaves_no_stray_text(source):
    html = render(source)
    frag = lxml.html.fragment_fromstring(html, create_parent="div")
    assert frag.text_content().strip() in ("x after", "after"), html
    assert "javascript" not in html.lower() and ")" not in frag.text_content()


def test_links_with_titles_and_brackets_still_work():
    frag = lxml.html.fragment_fromstring(
        render('[a](https://a.example/c "Title") [b](https://a.example/w_(d)) [c](https://a.example/q?x="y")'),
        create_parent="div")
    a, b, c = frag.xpath("//a")
    assert (a.get("href"), a.get("title")) == ("https://a.example/c", "Title")
    assert b.get("href") == "https://a.example/w_(d)"
    assert c.get("href") == 'https://a.example/q?x="y"' and c.get("title") is None
    assert frag.text_content() == "a b c"


def test_preview_renders_what_is_posted_and_is_bounded(app, make):
    owner = make.user()
    c = login_client(app, owner)
    source = "**bold** and a [link](https://example.org)\n\n- one\n- two\n\n<script>alert(1)</script>"
    r = c.post("/preview", data={"body": source}, headers=JSON)
    assert r.status_code == 200 and r.json == {"html": render(source)}
    thread = make.thread(owner, make.room(owner), body=source)
    assert room_posts.opening_post(thread).html == r.json["html"]
    assert "<script" not in r.json["html"] and "<strong>bold</strong>" in r.json["html"]

    # Too long: a clear message, as JSON for the script that asked.
    r = c.post("/preview", data={"body": "x" * (room_posts.MAX_BODY + 1)}, headers=JSON)
    assert r.status_code == 422 and "at most 50,000 characters" in r.json["error"]["message"]
    r = c.post("/preview", data={"body": "x" * (room_posts.MAX_BODY * 5)}, headers=JSON)
    assert r.status_code == 413
    # Signed out: the sign-in page, nothing rendered.
    assert app.test_client().post("/preview", data={"body": "hi"}).status_code == 302


def test_preview_is_rate_limited_per_account(app, make):
    c = login_client(app, make.user())
    limit = int(PREVIEW_LIMIT.split()[0])
    codes = [c.post("/preview", data={"body": "hi"}, headers=JSON).status_code for _ in range(limit + 1)]
    assert codes[:limit] == [200] * limit and codes[-1] == 429
    r = c.post("/preview", data={"body": "hi"}, headers=JSON)
    assert r.json["error"]["code"] == "rate_limited" and "previews" in r.json["error"]["message"]
    # Another account has its own allowance.
    assert login_client(app, make.user()).post("/preview", data={"body": "hi"}, headers=JSON).status_code == 200


@pytest.mark.parametrize("app_config", [{"MAX_UPLOAD_MB": 1}])
def test_a_refused_upload_answers_the_composer_in_json(app, make):
    """The composer (static/js/composer_files.js) sends files asking for JSON: a refusal is a message it shows
    beside the files, the text stays in the page; nothing is stored. The page without the script still gets
    its form back (tests/test_rooms.py)."""
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    opening = room_posts.opening_post(thread)
    c = login_client(app, owner)
    posts, atts = count(Post), count(Attachment)

    big = io.BytesIO(b"x" * (1024 * 1024 + 1))
    r = c.post(f"/posts/{opening.id}/reply", data={"body": "my long reply", "file": (big, "minutes.pdf")},
               content_type="multipart/form-data", headers=JSON)
    assert r.status_code == 422 and r.is_json
    assert r.json["error"]["field"] == "file" and "at most 1 MB" in r.json["error"]["message"]
    # Far past the limit the request is refused before it is read: JSON too.
    huge = io.BytesIO(b"y" * 3 * 1024 * 1024)
    r = c.post(f"/posts/{opening.id}/reply", data={"body": "my long reply", "file": (huge, "video.mp4")},
               content_type="multipart/form-data", headers=JSON)
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large" and "1 MB" in r.json["error"]["message"]
    r = c.post(f"/rooms/{room.id}/threads/new", data={"title": "T", "body": "b", "file": (io.BytesIO(b""), "e.txt")},
               content_type="multipart/form-data", headers=JSON)
    assert r.status_code == 422 and "empty" in r.json["error"]["message"]
    assert (count(Post), count(Attachment)) == (posts, atts)

    # Accepted: where to go next.
    r = c.post(f"/posts/{opening.id}/reply", data={"body": "with a file", "file": (io.BytesIO(b"notes"), "n.txt")},
               content_type="multipart/form-data", headers=JSON)
    assert r.status_code == 201
    post = db.session.scalar(select(Post).where(Post.body == "with a file"))
    assert r.json["url"].endswith(f"/posts/{post.id}") and count(Attachment) == atts + 1


def test_posts_have_reply_and_one_menu(app, make):
    owner, member = make.user(), make.user()
    room = make.room(owner, members=[member])
    thread = make.thread(owner, room)
    mine = make.reply(member, thread, body="Mine")
    theirs = make.reply(owner, thread, body="Theirs")
    doc = lxml.html.fromstring(login_client(app, member).get(f"/threads/{thread.id}").get_data(as_text=True))

    def actions(post):
        art = doc.get_element_by_id(f"post-{post.id}")
        controls = art.xpath(".//div[@class='post-actions']/*")
        assert [el.text_content() for el in controls] == ["Reply", "…"]
        assert not art.xpath(".//form")  # no per-post forms or tokens
        return controls[1].get("data-actions").split(), controls[1].get("href")

    assert actions(mine) == (["edit", "delete"], f"/posts/{mine.id}/actions")
    assert actions(theirs)[0] == ["flag"]
    # The owner is the room's moderator: the menu has what moderators may do.
    doc = lxml.html.fromstring(login_client(app, owner).get(f"/threads/{thread.id}").get_data(as_text=True))
    art = doc.get_element_by_id(f"post-{mine.id}")
    assert art.xpath(".//a[contains(@class,'post-menu')]")[0].get("data-actions").split() == ["flag", "moderate",
                                                                                                "delete"]

    # Without JavaScript the menu is a page with the same actions.
    page = login_client(app, member).get(f"/posts/{mine.id}/actions")
    links = [a.text_content() for a in lxml.html.fromstring(page.get_data(as_text=True)).xpath("//main//ul//a")]
    assert page.status_code == 200 and links == ["Reply", "Edit"]
    assert b"Remove this post" in page.data
    outsider = make.user()
    assert login_client(app, outsider).get(f"/posts/{mine.id}/actions").status_code == 404


def test_newest_first_says_which_reply_a_reply_answers(app, make):
    owner, member = make.user(name="Margaret Ellis"), make.user(name="Tom Oduya")
    room = make.room(owner, members=[member])
    thread = make.thread(owner, room)
    first = make.reply(owner, thread, body="First")
    answer = make.reply(member, thread, body="An answer", parent=first)
    deeper = make.reply(owner, thread, body="Deeper", parent=answer)
    make.reply(member, thread, body="Top level")
    room_posts.delete_post(owner, first.id)
    doc = lxml.html.fromstring(login_client(app, member).get(f"/threads/{thread.id}?view=flat").get_data(as_text=True))

    def note(post):
        found = doc.get_element_by_id(f"post-{post.id}").xpath(".//*[contains(@class,'in-reply-to')]")
        return " ".join(found[0].text_content().split()) if found else None

    assert note(deeper) == "In reply to Tom Oduya"
    assert doc.get_element_by_id(f"post-{deeper.id}").xpath(".//*[contains(@class,'in-reply-to')]/a")[0].get(
        "href") == f"/posts/{answer.id}"
    assert note(answer) == "In reply to a removed post"
    assert note(first) is None  # a reply to the opening post is just a reply
    # The tree view shows the nesting itself.
    tree = login_client(app, member).get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "In reply to" not in tree
