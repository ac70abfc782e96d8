"""Rooms, memberships, threads, the reply tree, Markdown, edits, tombstones,
attachments and unread tracking, through the services, the pages and the API."""
from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import lxml.html
import pytest
from PIL import Image
from sqlalchemy import func, select

from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import services
from rooms import posts as room_posts
from rooms.models import Attachment, Membership, Post, PostRevision, Thread
from tests.live_support import login_client
from tests.conftest import bearer


def count(model, *where) -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def page(resp):
    assert resp.status_code == 200, (resp.status_code, resp.get_data(as_text=True)[:500])
    return lxml.html.fromstring(resp.get_data(as_text=True))


def png_bytes(size=(900, 600), colour=(20, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def api_ids(app, token) -> set[int]:
    r = app.test_client().get("/api/v1/rooms", headers=bearer(token))
    assert r.status_code == 200
    return {x["id"] for x in r.json["rooms"]}


# -- visibility ------------------------------------------------------------------------

def test_room_visibility_rules(app, make):
    force, other_force = make.org(), make.org()
    owner = make.user(org=force)
    private = make.room(owner, visibility="private", name="Private room")
    org_room = make.room(owner, visibility="organisation", name="Force room")
    national = make.room(owner, visibility="national", name="National room")
    assert org_room.organisation_id == force.id

    cases = {
        "colleague": (make.user(org=force), {org_room.id, national.id}),
        "other force": (make.user(org=other_force), {national.id}),
        "IAG volunteer advising the force": (make.user(org=force, kind="iag"), {national.id}),
        "guest": (make.user(kind="guest"), {national.id}),
        "staff without organisation": (make.user(), {national.id}),
        "site admin elsewhere": (make.user(org=other_force, admin=True), {national.id}),
    }
    for label, (user, expected) in cases.items():
        seen = {r.id for r in services.readable_rooms(user)}
        assert seen == expected, label
        assert api_ids(app, make.token(user)) == expected, label
        html = login_client(app, user).get("/rooms").get_data(as_text=True)
        for room in (private, org_room, national):
            assert (room.name in html) == (room.id in expected), (label, room.name)
            if room.id not in expected:
                with pytest.raises(NotFound):
                    services.get_room(user, room.id)

    # Private rooms open to invited members, whatever their kind or organisation.
    guest = cases["guest"][0]
    iag = cases["IAG volunteer advising the force"][0]
    services.add_member(owner, private.id, user_id=guest.id, role="member")
    services.add_member(owner, org_room.id, user_id=iag.id, role="member")
    assert {r.id for r in services.readable_rooms(guest)} == {private.id, national.id}
    assert {r.id for r in services.readable_rooms(iag)} == {org_room.id, national.id}
    assert {r.id for r in services.readable_rooms(owner)} == {private.id, org_room.id, national.id}


def test_who_may_create_rooms(app, make):
    force = make.org()
    guest = make.user(kind="guest")
    iag = make.user(kind="iag", org=force)
    staff = make.user(org=force)
    with pytest.raises(Forbidden):
        services.create_room(guest, name="Guest room", visibility="private")
    with pytest.raises(Forbidden):
        services.create_room(iag, name="IAG national", visibility="national")
    with pytest.raises(Forbidden):
        services.create_room(iag, name="IAG org", visibility="organisation")
    assert services.create_room(iag, name="IAG private", visibility="private").visibility == "private"
    assert services.create_room(staff, name="Staff org", visibility="organisation").organisation_id == force.id
    with pytest.raises(Invalid) as err:
        services.create_room(staff, name="x", visibility="secret")
    assert err.value.field == "visibility"
    with pytest.raises(Invalid) as err:
        services.create_room(staff, name="   ", visibility="private")
    assert err.value.field == "name"


def test_create_room_page(app, make):
    staff = make.user(org=make.org())
    c = login_client(app, staff)
    r = c.post("/rooms/new", data={"name": "Community engagement", "description": "About *us*",
                                   "visibility": "organisation"})
    assert r.status_code == 302
    room_id = int(re.search(r"/rooms/(\d+)$", r.headers["Location"]).group(1))
    doc = page(c.get(f"/rooms/{room_id}"))
    assert "Community engagement" in doc.text_content()
    assert count(Membership, Membership.room_id == room_id, Membership.role == "owner") == 1
    before = count(Membership)
    r = c.post("/rooms/new", data={"name": "", "visibility": "private"})
    assert r.status_code == 200 and "Name is required" in r.get_data(as_text=True)
    assert count(Membership) == before


# -- roles ------------------------------------------------------------------------------

def test_roles(app, make):
    owner, mod, member, observer, stranger = (make.user() for _ in range(5))
    room = make.room(owner, members=[member], moderator=[mod], observer=[observer])
    thread = make.thread(owner, room)
    roles = {m.user_id: m.role for m in services.room_members(owner, room)}
    assert roles == {owner.id: "owner", mod.id: "moderator", member.id: "member", observer.id: "observer"}

    # Observers read but cannot post, start threads or reply.
    assert services.get_thread(observer, thread.id).id == thread.id
    with pytest.raises(Forbidden):
        room_posts.create_post(observer, thread.id, body="Can I say something?")
    with pytest.raises(Forbidden):
        room_posts.create_thread(observer, room.id, title="New", body="Text")
    c = login_client(app, observer)
    assert c.post(f"/posts/{room_posts.opening_post(thread).id}/reply", data={"body": "Hello"}).status_code == 403
    assert c.get(f"/rooms/{room.id}/threads/new").status_code == 403
    doc = page(c.get(f"/threads/{thread.id}"))
    assert not doc.xpath('//a[@data-reply-to]') and not doc.xpath('//form[contains(@class, "composer")][not(ancestor::template)]')
    r = app.test_client().post(f"/api/v1/threads/{thread.id}/posts", json={"body": "hi"},
                               headers=bearer(make.token(observer)))
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert count(Post, Post.author_id == observer.id) == 0

    # Members post; only owners and moderators manage membership; only owners make owners.
    _, created = room_posts.create_post(member, thread.id, body="Member reply")
    assert created
    with pytest.raises(Forbidden):
        services.add_member(member, room.id, user_id=stranger.id, role="member")
    services.add_member(mod, room.id, user_id=stranger.id, role="observer")
    with pytest.raises(Forbidden):
        services.add_member(mod, room.id, user_id=stranger.id, role="owner")
    with pytest.raises(Forbidden):
        services.remove_member(mod, room.id, owner.id)
    with pytest.raises(Forbidden):
        services.set_archived(mod, room.id, True)
    services.add_member(owner, room.id, user_id=mod.id, role="owner")
    assert {m.user_id: m.role for m in services.room_members(owner, room)}[mod.id] == "owner"
    # Observer promoted to member can now post.
    services.add_member(owner, room.id, user_id=observer.id, role="member")
    assert room_posts.create_post(observer, thread.id, body="Now I can")[1]


def _room_row_is_free(room_id: int) -> bool:
    """Can another connection write the room's row right now (no transaction of ours holds a lock)?"""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    with db.engine.connect() as other:
        try:
            # fail at once instead of waiting for the lock
            other.exec_driver_sql("PRAGMA busy_timeout=0" if db.is_sqlite else "SET lock_timeout = '200ms'")
            other.commit()
            with other.begin():
                other.execute(text("UPDATE rooms SET last_seq = last_seq WHERE id = :id"), {"id": room_id})
            return True
        except OperationalError:
            return False
        finally:
            other.invalidate()  # not back to the pool with those settings


def test_a_refused_post_leaves_no_transaction_and_no_lock_behind(app, make):
    """create_post checks inside its write transaction; whatever it refuses, it ends that transaction
    (the write lock is free for the next writer) and leaves the caller's loaded objects loaded."""
    owner, observer = make.user(), make.user()
    room = make.room(owner, observer=[observer])
    thread = make.thread(owner, room)
    refusals = [
        (Forbidden, dict(actor=observer, thread_id=thread.id, body="May I?")),
        (NotFound, dict(actor=make.user(), thread_id=thread.id, body="Not my room")),
        (Invalid, dict(actor=owner, thread_id=thread.id, body="")),
        (Invalid, dict(actor=owner, thread_id=thread.id, body="x", parent_id=10**9)),
    ]
    for error, kw in refusals:
        with pytest.raises(error):
            room_posts.create_post(kw.pop("actor"), kw.pop("thread_id"), **kw)
        assert not db.session().in_transaction(), error
        assert _room_row_is_free(room.id), error
        assert thread.title == "A thread"  # still loaded (a rollback would have expired it)
    assert count(Post, Post.thread_id == thread.id) == 1
    # The lock test itself can fail: a write transaction that is still open holds the row.
    db.begin_write()
    db.session.execute(services._NEXT_SEQ, {"rid": room.id})
    assert not _room_row_is_free(room.id)
    db.session.rollback()
    assert _room_row_is_free(room.id)


def test_member_page_add_and_change_roles(app, make):
    owner, person = make.user(), make.user()
    room = make.room(owner)
    c = login_client(app, owner)
    r = c.post(f"/rooms/{room.id}/members", data={"action": "add", "email": person.email, "role": "observer"})
    assert r.status_code == 302
    assert {m.user_id: m.role for m in services.room_members(owner, room)}[person.id] == "observer"
    r = c.post(f"/rooms/{room.id}/members", data={"action": "add", "email": "nobody@example.org", "role": "member"})
    assert r.status_code == 422 and "No account has that e-mail address" in r.get_data(as_text=True)
    r = c.post(f"/rooms/{room.id}/members", data={"action": "role", "user_id": str(person.id), "role": "boss"})
    assert r.status_code == 422
    doc = page(c.get(f"/rooms/{room.id}/members"))
    assert person.name in doc.text_content()


# -- join, leave, archive --------------------------------------------------------------

def test_join_and_leave(app, make):
    force = make.org()
    owner = make.user(org=force)
    colleague = make.user(org=force)
    outsider = make.user(org=make.org())
    national = make.room(owner, visibility="national")
    org_room = make.room(owner, visibility="organisation")
    private = make.room(owner, visibility="private")

    c = login_client(app, colleague)
    assert c.post(f"/rooms/{org_room.id}/join").status_code == 302
    assert c.post(f"/rooms/{national.id}/join").status_code == 302
    assert c.post(f"/rooms/{private.id}/join").status_code == 404
    assert login_client(app, outsider).post(f"/rooms/{org_room.id}/join").status_code == 404
    roles = services.my_roles(colleague)
    assert roles == {org_room.id: "member", national.id: "member"}

    assert c.post(f"/rooms/{org_room.id}/leave", data={"confirm": "yes"}).status_code == 302
    assert org_room.id not in services.my_roles(colleague)
    assert c.post(f"/rooms/{org_room.id}/leave").status_code == 400  # not a member any more

    # A reader of an open room joins by posting.
    thread = make.thread(owner, org_room)
    room_posts.create_post(colleague, thread.id, body="First words")
    assert services.my_roles(colleague)[org_room.id] == "member"


def test_last_owner_cannot_leave(app, make):
    owner, second = make.user(), make.user()
    room = make.room(owner, members=[second])
    c = login_client(app, owner)
    r = c.post(f"/rooms/{room.id}/leave")
    assert r.status_code == 400 and "only owner" in r.get_data(as_text=True)
    assert services.my_roles(owner)[room.id] == "owner"
    with pytest.raises(Invalid):
        services.add_member(owner, room.id, user_id=owner.id, role="member")  # demoting the last owner
    with pytest.raises(Invalid):
        services.remove_member(owner, room.id, owner.id)
    services.add_member(owner, room.id, user_id=second.id, role="owner")
    assert c.post(f"/rooms/{room.id}/leave", data={"confirm": "yes"}).status_code == 302
    assert room.id not in services.my_roles(owner)
    # The room now belongs to the second owner; the first cannot see a private room any more.
    assert c.get(f"/rooms/{room.id}").status_code == 404


def test_archived_room_is_read_only(app, make):
    owner, member = make.user(), make.user()
    room = make.room(owner, visibility="national", members=[member])
    thread = make.thread(owner, room)
    reply = make.reply(member, thread, body="Before archiving")
    c = login_client(app, owner)
    assert c.post(f"/rooms/{room.id}/settings", data={"action": "archive"}).status_code == 302
    assert services.get_room(owner, room.id).archived

    posts_before = count(Post)
    with pytest.raises(Forbidden, match="archived"):
        room_posts.create_post(member, thread.id, body="After archiving")
    with pytest.raises(Forbidden):
        room_posts.create_thread(owner, room.id, title="T", body="B")
    with pytest.raises(Forbidden):
        room_posts.edit_post(member, reply.id, body="Changed")
    with pytest.raises(Forbidden):
        room_posts.delete_post(owner, reply.id)
    with pytest.raises(Forbidden):
        services.join_room(make.user(), room.id)
    token = make.token(member)
    api = app.test_client()
    assert api.post(f"/api/v1/threads/{thread.id}/posts", json={"body": "x"}, headers=bearer(token)).status_code == 403
    assert api.patch(f"/api/v1/posts/{reply.id}", json={"body": "x"}, headers=bearer(token)).status_code == 403
    assert api.delete(f"/api/v1/posts/{reply.id}", headers=bearer(token)).status_code == 403
    assert count(Post) == posts_before

    # Still readable, shown as archived, with no way to write.
    mc = login_client(app, member)
    doc = page(mc.get(f"/threads/{thread.id}"))
    assert "Before archiving" in doc.text_content()
    assert not doc.xpath('//a[@data-reply-to]') and not doc.xpath('//form[contains(@class, "composer")][not(ancestor::template)]')
    assert api.get(f"/api/v1/rooms/{room.id}", headers=bearer(token)).json["archived"] is True
    assert mc.post(f"/posts/{reply.id}/reply", data={"body": "x"}).status_code == 403

    c.post(f"/rooms/{room.id}/settings", data={"action": "unarchive"})
    assert room_posts.create_post(member, thread.id, body="After reopening")[1]


# -- threads and the reply tree ------------------------------------------------------------

def _article_ids(doc) -> list[int]:
    return [int(a.get("data-post-id")) for a in doc.xpath('//article[@data-post-id]')]


def test_reply_tree_order_and_nesting(app, make):
    owner = make.user()
    room = make.room(owner, visibility="national")
    thread = make.thread(owner, room, title="Tree", body="Opening")
    opening = room_posts.opening_post(thread)
    r1 = make.reply(owner, thread, "r1")
    r2 = make.reply(owner, thread, "r2")
    r2a = make.reply(owner, thread, "r2a", parent=r2)
    r1a = make.reply(owner, thread, "r1a", parent=r1)
    r1a1 = make.reply(owner, thread, "r1a1", parent=r1a)
    r1b = make.reply(owner, thread, "r1b", parent=r1)
    expected = [opening.id, r1.id, r1a.id, r1a1.id, r1b.id, r2.id, r2a.id]

    db.session.remove()
    posts = list(db.session.scalars(select(Post).where(Post.thread_id == thread.id).order_by(Post.path)))
    assert [p.id for p in posts] == expected
    by_id = {p.id: p for p in posts}
    assert by_id[r1a1.id].depth == 3 and by_id[r1a1.id].path.startswith(by_id[r1a.id].path + "/")
    assert by_id[r1a1.id].parent_id == r1a.id

    r = app.test_client().get(f"/api/v1/threads/{thread.id}", headers=bearer(make.token(owner)))
    assert [p["id"] for p in r.json["posts"]] == expected

    doc = page(login_client(app, owner).get(f"/threads/{thread.id}"))
    assert _article_ids(doc) == expected
    # r1a1 sits inside r1a's list item, which sits inside r1's: three levels shown.
    li = doc.xpath(f'//article[@id="post-{r1a1.id}"]/ancestor::li[contains(@class, "reply")]')
    assert [int(x.xpath("./article/@data-post-id")[0]) for x in li] == [r1.id, r1a.id, r1a1.id]
    assert not doc.xpath('//details[contains(@class, "more-replies")]')

    with pytest.raises(Invalid):
        room_posts.create_post(owner, thread.id, body="x", parent_id=999999)
    other = make.thread(owner, room)
    with pytest.raises(Invalid) as err:
        room_posts.create_post(owner, other.id, body="x", parent_id=r1.id)  # parent from another thread
    assert err.value.field == "parent_id"


def test_deep_replies_behind_show_more(app, make):
    owner = make.user()
    room = make.room(owner, visibility="national")
    thread = make.thread(owner, room)
    chain, parent = [], None
    for depth in range(1, 8):
        parent = make.reply(owner, thread, f"depth {depth}", parent=parent)
        chain.append(parent)
    doc = page(login_client(app, owner).get(f"/threads/{thread.id}"))
    assert _article_ids(doc)[1:] == [p.id for p in chain]
    hidden = {int(a.get("data-post-id")) for a in doc.xpath('//details[contains(@class, "more-replies")]//article')}
    shown = set(_article_ids(doc)) - hidden
    # At least three levels are shown straight away; the deeper ones are behind "Show more replies".
    assert {chain[0].id, chain[1].id, chain[2].id} <= shown
    assert chain[-1].id in hidden
    summaries = [s.text_content() for s in doc.xpath('//details[contains(@class, "more-replies")]/summary')]
    assert summaries and all("Show more replies" in s for s in summaries)


def test_pagination_never_splits_a_subtree(app, make):
    per_page = room_posts.ROOTS_PER_PAGE
    owner = make.user()
    room = make.room(owner, visibility="national")
    thread = make.thread(owner, room)
    roots = [make.reply(owner, thread, f"root {i}") for i in range(per_page + 3)]
    # Replies added later (higher ids) under the last root of page 1 and the first of page 2.
    last_on_1, first_on_2 = roots[per_page - 1], roots[per_page]
    a = make.reply(owner, thread, "under last root", parent=last_on_1)
    a1 = make.reply(owner, thread, "deeper", parent=a)
    b = make.reply(owner, thread, "under first root of page 2", parent=first_on_2)

    c = login_client(app, owner)
    p1 = page(c.get(f"/threads/{thread.id}?page=1"))
    p2 = page(c.get(f"/threads/{thread.id}?page=2"))
    ids1, ids2 = _article_ids(p1), _article_ids(p2)
    opening = room_posts.opening_post(thread).id
    assert ids1 == [opening] + [r.id for r in roots[:per_page]][:-1] + [last_on_1.id, a.id, a1.id]
    assert ids2 == [first_on_2.id, b.id] + [r.id for r in roots[per_page + 1:]]
    assert not set(ids1) & set(ids2)
    assert "Page 1 of 2" in p1.text_content()
    assert p1.xpath('//a[@rel="next"]')
    # Past the last page: the last page.
    assert _article_ids(page(c.get(f"/threads/{thread.id}?page=99"))) == ids2
    # A stable link to a post lands on its page at its anchor.
    r = c.get(f"/posts/{b.id}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/threads/{thread.id}?page=2#post-{b.id}")
    r = c.get(f"/posts/{a1.id}")
    assert r.headers["Location"].endswith(f"?page=1#post-{a1.id}")


def test_flat_newest_first_view(app, make):
    owner = make.user()
    room = make.room(owner, visibility="national")
    thread = make.thread(owner, room)
    r1 = make.reply(owner, thread, "one")
    r2 = make.reply(owner, thread, "two", parent=r1)
    r3 = make.reply(owner, thread, "three")
    r4 = make.reply(owner, thread, "four", parent=r2)
    doc = page(login_client(app, owner).get(f"/threads/{thread.id}?view=flat"))
    flat = [int(x) for x in doc.xpath('//ol[contains(@class, "flat")]//article/@data-post-id')]
    assert flat == [r4.id, r3.id, r2.id, r1.id]
    assert doc.xpath('//nav[@aria-label="Thread view"]//a[@aria-current="page"]')[0].text_content().strip() == "Newest first"


def test_new_thread_page(app, make):
    owner = make.user()
    room = make.room(owner)
    c = login_client(app, owner)
    r = c.post(f"/rooms/{room.id}/threads/new", data={"title": "Agenda", "body": "Items **below**"})
    assert r.status_code == 302
    thread_id = int(r.headers["Location"].rsplit("/", 1)[1])
    doc = page(c.get(f"/threads/{thread_id}"))
    assert doc.xpath('//h1[@id="thread-title"]')[0].text_content() == "Agenda"
    assert doc.xpath('//div[contains(@class, "opening")]//strong')[0].text_content() == "below"
    before = count(Thread)
    r = c.post(f"/rooms/{room.id}/threads/new", data={"title": "", "body": "x"})
    assert r.status_code == 422 and "Title is required" in r.get_data(as_text=True)
    r = c.post(f"/rooms/{room.id}/threads/new", data={"title": "T", "body": "   "})
    assert r.status_code == 422 and "Post text is required" in r.get_data(as_text=True)
    assert count(Thread) == before


# -- Markdown -------------------------------------------------------------------------------

MARKDOWN = """\
| Item | Lead |
|---|---|
| Stop and search | Supt |

```python
print("<b>not bold</b>")
```

- one
- two

1. first
2. second

[College](https://example.org/page) and <https://auto.example.org>

<script>alert("raw")</script>
<img src=x onerror=alert(1)>
<a href="javascript:alert(2)">raw link</a> <iframe src="https://evil.example"></iframe> <b>raw bold</b>
<style>body{display:none}</style>

[js](javascript:alert(3)) [JS](JaVaScRiPt:alert(4)) [data](data:text/html;base64,PHNjcmlwdD4=)
![pic](data:image/png;base64,iVBORw0KGgo=) [vb](vbscript:msgbox(1))
"""


def test_markdown_rendering_is_rich_and_safe(app, make):
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room, body=MARKDOWN)
    post = room_posts.opening_post(thread)
    html = post.html
    frag = lxml.html.fragment_fromstring(html, create_parent="div")
    assert frag.xpath("//table/thead/tr/th")[0].text_content() == "Item"
    assert frag.xpath("//table/tbody/tr/td")[0].text_content() == "Stop and search"
    code = frag.xpath("//pre/code")[0]
    assert '<b>not bold</b>' in code.text_content() and not code.xpath(".//b")
    assert [li.text_content() for li in frag.xpath("//ul/li")] == ["one", "two"]
    assert [li.text_content() for li in frag.xpath("//ol/li")] == ["first", "second"]
    links = frag.xpath("//a")
    good = [a for a in links if a.get("href")]
    assert [a.get("href") for a in good] == ["https://example.org/page", "https://auto.example.org"]
    for a in links:
        assert a.get("rel") == "nofollow noopener"
    # Raw HTML never becomes markup: its tags are stripped and only their text remains.
    text_outside_code = "".join(t for t in frag.xpath("//text()[not(ancestor::code)]"))
    assert "raw bold" in text_outside_code and "raw link" in text_outside_code
    assert "<" not in text_outside_code and "iframe" not in text_outside_code
    for tag in ("script", "iframe", "style", "b", "object", "embed", "form"):
        assert not frag.xpath(f"//{tag}"), tag
    for el in frag.iter():
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), (el.tag, name)
            assert not re.match(r"\s*(javascript|data|vbscript):", value, re.IGNORECASE), (el.tag, name, value)
    for img in frag.xpath("//img"):
        assert not (img.get("src") or "").startswith("data:")

    # Rendered once and kept (cached) with the post; the page shows that cached HTML.
    db.session.remove()
    assert db.session.get(Post, post.id).html == html
    doc = page(login_client(app, owner).get(f"/threads/{thread.id}"))
    body = doc.xpath(f'//article[@id="post-{post.id}"]//div[@class="post-body"]')[0]
    assert body.xpath(".//table") and not body.xpath(".//script")


# -- editing and removing --------------------------------------------------------------------

def test_edit_keeps_viewable_history(app, make):
    owner, other = make.user(), make.user()
    room = make.room(owner, visibility="national", members=[other])
    thread = make.thread(owner, room)
    reply = make.reply(owner, thread, "First version")
    c = login_client(app, owner)
    assert c.get(f"/posts/{reply.id}/edit").status_code == 200
    assert c.post(f"/posts/{reply.id}/edit", data={"action": "edit", "body": "Second version"}).status_code == 302
    assert c.post(f"/posts/{reply.id}/edit", data={"action": "edit", "body": "Third *version*"}).status_code == 302
    r = c.post(f"/posts/{reply.id}/edit", data={"action": "edit", "body": " "})
    assert r.status_code == 422
    db.session.remove()
    post = db.session.get(Post, reply.id)
    assert post.body == "Third *version*" and post.edited_at is not None
    assert "<em>version</em>" in post.html
    assert count(PostRevision, PostRevision.post_id == reply.id) == 2

    thread_doc = page(c.get(f"/threads/{thread.id}"))
    assert thread_doc.xpath(f'//article[@id="post-{reply.id}"]//a[contains(@href, "/history")]')
    history = page(login_client(app, other).get(f"/posts/{reply.id}/history")).text_content()
    assert "First version" in history and "Second version" in history
    assert history.index("Second version") < history.index("First version")  # newest first

    # Only the author edits.
    oc = login_client(app, other)
    assert oc.get(f"/posts/{reply.id}/edit").status_code == 403
    assert oc.post(f"/posts/{reply.id}/edit", data={"action": "edit", "body": "Hijacked"}).status_code == 403
    with pytest.raises(Forbidden):
        room_posts.edit_post(other, reply.id, body="Hijacked")
    db.session.remove()
    assert db.session.get(Post, reply.id).body == "Third *version*"


def test_delete_leaves_tombstone_and_keeps_tree(app, make):
    owner, member = make.user(), make.user()
    room = make.room(owner, visibility="private", members=[member])
    thread = make.thread(owner, room)
    parent = make.reply(member, thread, "Words to be removed")
    room_posts.edit_post(member, parent.id, body="Edited words to be removed")
    child = make.reply(owner, thread, "Child stays", parent=parent)
    mc = login_client(app, member)
    assert mc.post(f"/posts/{parent.id}/delete").status_code == 302

    db.session.remove()
    post = db.session.get(Post, parent.id)
    assert post.deleted and post.body == "" and post.html == ""
    assert count(PostRevision, PostRevision.post_id == parent.id) == 0
    assert count(Post, Post.thread_id == thread.id) == 3

    doc = page(mc.get(f"/threads/{thread.id}"))
    text = doc.text_content()
    assert "removed" in text.lower() and "Words to be removed" not in text
    tomb = doc.xpath(f'//article[@id="post-{parent.id}"]')[0]
    assert "deleted" in tomb.get("class") and tomb.xpath('.//*[contains(@class, "tombstone")]')
    li = doc.xpath(f'//article[@id="post-{child.id}"]/ancestor::li[contains(@class, "reply")]')
    assert [int(x.xpath("./article/@data-post-id")[0]) for x in li] == [parent.id, child.id]
    assert "Child stays" in text

    token = make.token(owner)
    r = app.test_client().get(f"/api/v1/threads/{thread.id}", headers=bearer(token))
    shown = {p["id"]: p for p in r.json["posts"]}
    assert shown[parent.id]["deleted"] is True and shown[parent.id]["body"] == "" and shown[parent.id]["author"] is None
    assert shown[child.id]["parent_id"] == parent.id
    assert "Edited words" not in page(mc.get(f"/posts/{parent.id}/history")).text_content()
    with pytest.raises(Invalid):
        room_posts.create_post(owner, thread.id, body="reply to ghost", parent_id=parent.id)
    with pytest.raises(Forbidden):
        room_posts.delete_post(member, parent.id)  # already removed
    with pytest.raises(Forbidden):
        room_posts.edit_post(member, parent.id, body="back again")


def test_moderators_delete_any_post_in_their_room(app, make):
    owner, mod, member, member2 = (make.user() for _ in range(4))
    room = make.room(owner, members=[member, member2], moderator=[mod])
    other_room = make.room(mod, members=[member])
    thread = make.thread(owner, room)
    post = make.reply(member, thread, "Offensive words")
    with pytest.raises(Forbidden):
        room_posts.delete_post(member2, post.id)
    assert login_client(app, member2).post(f"/posts/{post.id}/delete").status_code == 403
    # Moderating another room gives no power here.
    elsewhere = make.thread(member, other_room)
    services.add_member(owner, room.id, user_id=mod.id, role="member")
    with pytest.raises(Forbidden):
        room_posts.delete_post(mod, post.id)
    services.add_member(owner, room.id, user_id=mod.id, role="moderator")
    assert login_client(app, mod).post(f"/posts/{post.id}/delete").status_code == 302
    db.session.remove()
    assert db.session.get(Post, post.id).deleted_by_id == mod.id
    # Owners moderate too.
    post2 = make.reply(member, thread, "More")
    room_posts.delete_post(owner, post2.id)
    # The moderator of the other room can delete there.
    room_posts.delete_post(mod, room_posts.opening_post(elsewhere).id)


# -- attachments ------------------------------------------------------------------------------

def _data_dir(app) -> Path:
    return Path(app.config["DATA_DIR"])


def _files_under(root: Path) -> set[Path]:
    """Every file below `root`. os.walk passes over a folder that vanishes while it looks (the search
    index's temporary folders come and go on their own), where Path.rglob raises."""
    return {Path(d) / n for d, _dirs, names in os.walk(root) for n in names if (Path(d) / n).is_file()}


def _stored_files(app) -> set[Path]:
    """Files of the attachment store (the data folder also holds the search index, which changes on its own)."""
    return set().union(*(_files_under(_data_dir(app) / sub) for sub in ("attachments", "thumbs", "tmp")))


def test_attachment_stored_by_hash_and_served_as_download(app, make, tmp_path):
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    c = login_client(app, owner)
    content = b"<html><script>alert('x')</script></html>"
    evil_name = "../../etc/passwd"
    def outside():  # files outside the data folder, other than the test's own SQLite database
        data = _data_dir(app)
        return {p for p in _files_under(tmp_path) if data not in p.parents and not p.name.startswith("collab.db")}

    outside_before = outside()
    r = c.post(f"/posts/{room_posts.opening_post(thread).id}/reply",
               data={"body": "See attached", "file": [(io.BytesIO(content), evil_name),
                                                      (io.BytesIO(b"minutes"), "Minutes 3 March.txt")]},
               content_type="multipart/form-data")
    assert r.status_code == 302
    atts = list(db.session.scalars(select(Attachment).order_by(Attachment.id)))
    assert len(atts) == 2
    att = atts[0]
    sha = hashlib.sha256(content).hexdigest()
    assert att.sha256 == sha and att.size == len(content)
    assert "/" not in att.filename and "\\" not in att.filename and "passwd" in att.filename
    assert atts[1].filename == "Minutes 3 March.txt"
    stored = list((_data_dir(app) / "attachments").rglob(sha))
    assert len(stored) == 1 and stored[0].read_bytes() == content
    # Nothing was written outside the data folder, and no file is named after the upload.
    assert outside() == outside_before
    assert not any("passwd" in p.name for p in _files_under(_data_dir(app)))

    r = c.get(f"/attachments/{att.id}/{att.filename}")
    assert r.status_code == 200 and r.data == content
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.mimetype == "application/octet-stream"
    assert "passwd" in r.headers["Content-Disposition"] and "/" not in r.headers["Content-Disposition"]
    r = c.get(f"/attachments/{atts[1].id}/{atts[1].filename}")
    assert r.data == b"minutes" and "Minutes" in r.headers["Content-Disposition"]
    assert c.get(f"/thumbnails/{att.id}").status_code == 404  # not an image

    # The same content uploaded again is stored once.
    room_posts.create_post(owner, thread.id, body="again", uploads=[("copy.html", io.BytesIO(content))])
    assert len(list((_data_dir(app) / "attachments").rglob(sha))) == 1
    assert count(Attachment, Attachment.sha256 == sha) == 2


def test_image_attachment_gets_thumbnail(app, make):
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    c = login_client(app, owner)
    data = png_bytes()
    r = c.post(f"/rooms/{room.id}/threads/new",
               data={"title": "Photo", "body": "Scene", "file": (io.BytesIO(data), "scene.png")},
               content_type="multipart/form-data")
    assert r.status_code == 302
    att = db.session.scalar(select(Attachment))
    assert att.is_image and (att.width, att.height) == (900, 600) and att.content_type == "image/png"
    thumb = _data_dir(app) / "thumbs" / att.sha256[:2] / f"{att.sha256}.png"
    assert thumb.exists()
    r = c.get(f"/thumbnails/{att.id}")
    assert r.status_code == 200 and r.mimetype == "image/png"
    with Image.open(io.BytesIO(r.data)) as img:
        assert img.format == "PNG" and max(img.size) <= 480 and img.size[0] > img.size[1]
    doc = page(c.get(f"/threads/{db.session.get(Post, att.post_id).thread_id}"))
    assert doc.xpath(f'//img[@src="/thumbnails/{att.id}"]')
    r = c.get(f"/attachments/{att.id}/scene.png")
    assert r.data == data and r.headers["Content-Disposition"].startswith("attachment")

    # Bytes that only claim to be an image get no thumbnail.
    post, _ = room_posts.create_post(owner, thread.id, body="fake", uploads=[("fake.png", io.BytesIO(b"not a png"))])
    fake = db.session.scalar(select(Attachment).where(Attachment.post_id == post.id))
    assert not fake.is_image
    assert c.get(f"/thumbnails/{fake.id}").status_code == 404


@pytest.mark.parametrize("app_config", [{"MAX_UPLOAD_MB": 1}])
def test_attachment_size_limit(app, make):
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    opening = room_posts.opening_post(thread)
    token = make.token(owner)
    c = login_client(app, owner)
    too_big = b"x" * (1024 * 1024 + 1)
    posts, atts = count(Post), count(Attachment)
    files_before = _stored_files(app)

    r = app.test_client().post(f"/api/v1/posts/{opening.id}/attachments", headers=bearer(token),
                               data={"file": (io.BytesIO(too_big), "big.bin")}, content_type="multipart/form-data")
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"
    assert "1 MB" in r.json["error"]["message"]
    # The page form shows the message next to the form, keeping what was typed.
    r = c.post(f"/posts/{opening.id}/reply", data={"body": "my long reply", "file": (io.BytesIO(too_big), "big.bin")},
               content_type="multipart/form-data")
    assert r.status_code == 422 and "at most 1 MB" in r.get_data(as_text=True)
    assert "my long reply" in r.get_data(as_text=True)
    # Far past the limit the whole request is refused before it is read.
    r = c.post(f"/posts/{opening.id}/reply", data={"body": "huge", "file": (io.BytesIO(b"y" * 3 * 1024 * 1024),
                                                                            "huge.bin")},
               content_type="multipart/form-data")
    assert r.status_code == 413
    assert (count(Post), count(Attachment)) == (posts, atts)
    assert _stored_files(app) == files_before

    ok = b"z" * (1024 * 1024)
    r = app.test_client().post(f"/api/v1/posts/{opening.id}/attachments", headers=bearer(token),
                               data={"file": (io.BytesIO(ok), "ok.bin")}, content_type="multipart/form-data")
    assert r.status_code == 201


# -- unread tracking ---------------------------------------------------------------------------

def _unread_badges(doc) -> dict[str, str]:
    out = {}
    for item in doc.xpath('//li[contains(@class, "room-item")] | //li[.//a[contains(@href, "/threads/")]]'):
        badge = item.xpath('.//*[contains(@class, "unread")]')
        link = item.xpath('.//a')[0]
        out[link.text_content().strip()] = badge[0].text_content().strip() if badge else ""
    return out


def test_unread_counts_per_room_and_thread(app, make):
    owner, reader = make.user(), make.user()
    room = make.room(owner, name="Unread room", members=[reader])
    t1 = make.thread(owner, room, title="First thread")
    t2 = make.thread(owner, room, title="Second thread")
    for i in range(3):
        make.reply(owner, t1, f"reply {i}")
    assert services.room_unread_counts(reader, [room.id]) == {room.id: 5}
    assert services.thread_unread_counts(reader, [t1.id, t2.id]) == {t1.id: 4, t2.id: 1}
    c = login_client(app, reader)
    assert _unread_badges(page(c.get("/rooms")))["Unread room"] == "5 new"
    badges = _unread_badges(page(c.get(f"/rooms/{room.id}")))
    assert badges["First thread"] == "4 new" and badges["Second thread"] == "1 new"

    page(c.get(f"/threads/{t1.id}"))  # reading the thread clears it
    assert services.thread_unread_counts(reader, [t1.id, t2.id]) == {t2.id: 1}
    assert _unread_badges(page(c.get("/rooms")))["Unread room"] == "1 new"
    make.reply(owner, t1, "one more")
    assert services.thread_unread_counts(reader, [t1.id]) == {t1.id: 1}
    assert _unread_badges(page(c.get(f"/rooms/{room.id}")))["First thread"] == "1 new"

    # Your own posts are not news to you.
    room_posts.create_post(reader, t2.id, body="my own reply")
    page(c.get(f"/threads/{t1.id}"))
    assert services.thread_unread_counts(reader, [t1.id, t2.id]) == {t2.id: 1}
    r = app.test_client().post(f"/api/v1/threads/{t1.id}/posts", json={"body": "via the API"},
                               headers=bearer(make.token(reader)))
    assert r.status_code == 201
    assert services.thread_unread_counts(reader, [t1.id]) == {}


def test_thread_opens_at_first_unread_post(app, make):
    per_page = room_posts.ROOTS_PER_PAGE
    owner, reader = make.user(), make.user()
    room = make.room(owner, members=[reader])
    thread = make.thread(owner, room)
    roots = [make.reply(owner, thread, f"root {i}") for i in range(per_page + 2)]
    c = login_client(app, reader)
    # First visit: everything is unread, starting at the opening post on page 1.
    doc = page(c.get(f"/threads/{thread.id}"))
    assert doc.xpath("//body/@data-first-unread") == [str(room_posts.opening_post(thread).id)]
    page(c.get(f"/threads/{thread.id}?page=2"))
    assert services.thread_unread_counts(reader, [thread.id]) == {}

    # A new reply on page 2: opening the thread goes straight to it.
    new = make.reply(owner, thread, "new on page 2", parent=roots[per_page])
    make.reply(owner, thread, "and one on page 1", parent=roots[0])
    r = c.get(f"/threads/{thread.id}")
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/threads/{thread.id}?page=2#post-{new.id}")
    doc = page(c.get(r.headers["Location"]))
    assert doc.xpath("//body/@data-first-unread") == [str(new.id)]
    assert doc.xpath(f'//a[@href="#post-{new.id}"]')  # "jump to first unread"

    # A new reply on page 1 is shown on page 1 with its anchor marked.
    page(c.get(f"/threads/{thread.id}?page=1"))
    newer = make.reply(owner, thread, "newest, on page 1", parent=roots[1])
    r = c.get(f"/threads/{thread.id}")
    assert r.status_code == 200
    assert page(r).xpath("//body/@data-first-unread") == [str(newer.id)]


def test_deleting_a_post_removes_its_text_from_the_event_log(app, make):
    """The replay log (room_events) must not keep what an author removed."""
    from rooms.models import RoomEvent

    owner = make.user()
    room = make.room(owner, visibility="private")
    thread = make.thread(owner, room, body="opening words stay")
    reply = make.reply(owner, thread, "frank words that the author takes back")
    room_posts.edit_post(owner, reply.id, body="frank words edited, also taken back")
    other = make.reply(owner, thread, "another reply stays")

    def payloads() -> str:
        return " ".join(db.session.scalars(select(RoomEvent.payload).where(RoomEvent.room_id == room.id)))

    assert "frank words" in payloads()
    room_posts.delete_post(owner, reply.id)
    log = payloads()
    assert "frank words" not in log
    assert "opening words stay" in log and "another reply stays" in log
    assert other.id
