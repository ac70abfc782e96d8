"""Data protection: an account downloads its data as a zip; an administrator
erases an account (posts kept as a former member's, text kept or removed, the
tree intact); rooms with a retention period lose old posts and attachments to
a daily job with a dry run, leaving tombstones."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import lxml.html
import pytest
from sqlalchemy import func, select, update

from auth.account_models import UserSession
from auth.audit import query
from auth.models import User
from collab.db import utcnow
from collab.extensions import db
from collab import tasks
from rooms import reactions
from rooms import services as rs
from rooms import posts as room_posts
from rooms.models import Attachment, Membership, Post, PostRevision, RoomEvent, Thread
from tests.live_support import login_client
from tests.conftest import PASSWORD
from tests.live_support import Collector, sock, wait_for


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


def fresh(model, id_):
    db.session.remove()
    return db.session.get(model, id_)


def blob(app, sha: str) -> Path:
    return Path(app.config["DATA_DIR"]) / "attachments" / sha[:2] / sha[2:4] / sha


def text_of(resp) -> str:
    return lxml.html.fromstring(resp.get_data(as_text=True)).text_content()


def discussion(make, author_name="Alex Author"):
    """A room where `author` wrote an opening post with an attachment, an edited reply and a
    reaction, and others replied to them."""
    owner = make.user(name="Olive Owner")
    author = make.user(name=author_name)
    other = make.user(name="Otto Other")
    room = make.room(owner, name="Stop and search", members=[author, other])
    thread = room_posts.create_thread(author, room.id, title="Body-worn video review", body="Opening words by the author",
                                      uploads=[("notes.txt", io.BytesIO(b"private notes of the author"))])
    opening = room_posts.opening_post(thread)
    reply = make.reply(author, thread, "First draft of my reply", parent=opening)
    room_posts.edit_post(author, reply.id, body="Second draft of my reply")
    answer = make.reply(other, thread, "Otto answers the author", parent=reply)
    reactions.set_reaction(author, answer.id, "👍", True)
    return owner, author, other, room, thread, opening, reply, answer


# -- downloading your data ------------------------------------------------------------------------

def test_an_account_downloads_its_data_as_a_zip(app, make):
    _owner, author, _other, _room, _thread, opening, reply, _answer = discussion(make)
    c = login_client(app, author)
    assert c.get("/account/export").status_code == 405  # a POST, from the account page
    assert b'action="/account/export"' in c.get("/account").data
    r = c.post("/account/export")
    assert r.status_code == 200
    assert r.mimetype == "application/zip"
    assert "attachment;" in r.headers["Content-Disposition"] and ".zip" in r.headers["Content-Disposition"]
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    names = set(zf.namelist())
    assert {"README.txt", "profile.json", "memberships.json", "posts.json", "reactions.json",
            "sessions.json"} <= names
    profile = json.loads(zf.read("profile.json"))
    assert profile["email"] == author.email and profile["name"] == "Alex Author"
    memberships = json.loads(zf.read("memberships.json"))
    assert [(m["room"], m["role"]) for m in memberships] == [("Stop and search", "member")]
    posts = json.loads(zf.read("posts.json"))
    assert [p["id"] for p in posts] == [opening.id, reply.id]  # only the account's own posts
    assert posts[0]["thread"] == "Body-worn video review" and posts[0]["room"] == "Stop and search"
    assert posts[1]["text"] == "Second draft of my reply"
    assert [v["text"] for v in posts[1]["earlier_versions"]] == ["First draft of my reply"]
    assert posts[1]["parent_id"] == opening.id
    att = posts[0]["attachments"][0]
    assert att["filename"] == "notes.txt"
    assert zf.read(att["file"]) == b"private notes of the author"
    assert all(not n.startswith("attachments/") or n == att["file"] for n in names)
    assert "Otto answers" not in zf.read("posts.json").decode()
    assert json.loads(zf.read("reactions.json"))[0]["emoji"] == "👍"
    sessions = json.loads(zf.read("sessions.json"))
    assert len(sessions) == 1 and sessions[0]["address"] == "127.0.0.1"
    ev = query(action="account.exported")
    assert len(ev) == 1 and ev[0].actor_id == author.id and '"posts": 2' in ev[0].detail
    assert app.test_client().post("/account/export").status_code == 302  # signed out: to sign in


def test_the_download_names_no_room_the_account_can_no_longer_read(app, make):
    owner, author, *_rest = discussion(make)
    room_id = db.session.scalar(select(Membership.room_id).where(Membership.user_id == author.id))
    rs.remove_member(owner, room_id, author.id)
    zf = zipfile.ZipFile(io.BytesIO(login_client(app, author).post("/account/export").data))
    posts = json.loads(zf.read("posts.json"))
    assert posts and all(p["room"] is None and p["thread"] is None for p in posts)
    assert posts[0]["text"] == "Opening words by the author"  # their own words are still theirs
    assert b"Body-worn" not in zf.read("posts.json")


# -- erasing an account ------------------------------------------------------------------------------

def erase(c, user, posts="keep", confirm=None):
    return c.post(f"/admin/people/{user.id}/erase", data={"posts": posts, "confirm": confirm or user.email})


def test_erasing_keeps_the_posts_as_a_former_members_with_their_text(app, make):
    admin = make.user(admin=True)
    _owner, author, other, room, thread, opening, reply, answer = discussion(make)
    ids = (author.id, other.id, room.id, thread.id, opening.id, reply.id, answer.id)  # objects expire on erasure
    author_id, other_id, room_id, thread_id, opening_id, reply_id, answer_id = ids
    author_email, other_email = author.email, other.email
    author_client = login_client(app, author)
    s = sock(app, author_client)
    token = make.token(author)
    admin_id = admin.id
    ac = login_client(app, admin)
    assert b"Erase" in ac.get("/admin/people").data
    page = ac.get(f"/admin/people/{author.id}/erase")
    assert page.status_code == 200 and "2 posts" in text_of(page)
    r = erase(ac, author, "keep")
    assert r.status_code == 302

    assert fresh(User, author_id) is None
    posts = {p.id: p for p in db.session.scalars(select(Post).where(Post.thread_id == thread_id))}
    assert posts[opening_id].author_id is None and posts[opening_id].body == "Opening words by the author"
    assert posts[reply_id].author_id is None and posts[reply_id].parent_id == opening_id
    assert posts[answer_id].author_id == other_id and posts[answer_id].parent_id == reply_id
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 1
    assert db.session.get(Thread, thread_id).author_id is None
    assert db.session.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == author_id)) == 0
    assert db.session.scalar(select(func.count()).select_from(UserSession)
                             .where(UserSession.user_id == author_id)) == 0
    # Pages show a former member, never the name; stored room events forget the name too.
    oc = login_client(app, other_email)
    page = text_of(oc.get(f"/threads/{thread_id}"))
    assert "Former member" in page and "Alex Author" not in page and "Opening words by the author" in page
    payloads = " ".join(db.session.scalars(select(RoomEvent.payload).where(RoomEvent.room_id == room_id)))
    assert "Alex Author" not in payloads and "Otto Other" in payloads
    # Signed out everywhere, live connection closed, token dead, cannot sign in.
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    assert author_client.get("/account").status_code == 302
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert app.test_client().post("/login", data={"email": author_email, "password": PASSWORD}).status_code == 401
    ev = query(action="account.erased")
    assert len(ev) == 1 and ev[0].actor_id == admin_id and ev[0].target_id == author_id
    assert '"content": "keep"' in ev[0].detail and '"posts": 2' in ev[0].detail


def test_erasing_can_remove_the_text_leaving_tombstones(app, make):
    admin = make.user(admin=True)
    _owner, author, other, room, thread, opening, reply, answer = discussion(make)
    thread_id, opening_id, reply_id, answer_id, room_id = thread.id, opening.id, reply.id, answer.id, room.id
    other_email = other.email
    sha = db.session.scalar(select(Attachment.sha256))
    assert blob(app, sha).exists()
    watcher = Collector(sock(app, login_client(app, other)))
    assert watcher.sc.emit("subscribe", {"room_id": room_id}, callback=True)["ok"]
    before_seq = db.session.scalar(select(func.max(RoomEvent.seq)).where(RoomEvent.room_id == room_id))
    r = erase(login_client(app, admin), author, "remove")
    assert r.status_code == 302
    # live pages are told: each removed post goes, as when a post is deleted
    assert watcher.wait("post.deleted", lambda d: d["post"]["id"] == reply_id, timeout=5)
    gone = {d["post"]["id"] for d in watcher.named("post.deleted")}
    assert gone == {opening_id, reply_id}
    assert all(d["post"]["body"] == "" and d["post"]["deleted"] for d in watcher.named("post.deleted"))
    db.session.remove()
    posts = {p.id: p for p in db.session.scalars(select(Post).where(Post.thread_id == thread_id))}
    for pid in (opening_id, reply_id):
        assert posts[pid].deleted_at is not None and posts[pid].body == "" and posts[pid].author_id is None
    assert posts[answer_id].body == "Otto answers the author" and posts[answer_id].parent_id == reply_id
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert db.session.scalar(select(func.count()).select_from(PostRevision)) == 0
    assert not blob(app, sha).exists()
    page = text_of(login_client(app, other_email).get(f"/threads/{thread_id}"))
    assert "Post removed" in page and "Otto answers the author" in page
    assert "Opening words" not in page and "Second draft" not in page
    payloads = " ".join(db.session.scalars(select(RoomEvent.payload).where(RoomEvent.room_id == room_id)))
    assert "Alex Author" not in payloads
    # the erased text is gone from the stored events `sync` replays, the thread title they wrote too
    for words in ("Opening words", "First draft", "Second draft", "Body-worn video review", "notes.txt"):
        assert words not in payloads, words
    assert "Otto answers the author" in payloads
    replay = watcher.sc.emit("sync", {"room_id": room_id, "after_seq": 0}, callback=True)
    assert replay["ok"] and "Second draft" not in json.dumps(replay) and "Opening words" not in json.dumps(replay)
    assert db.session.scalar(select(func.max(RoomEvent.seq)).where(RoomEvent.room_id == room_id)) > before_seq
    # nor can search find it
    oc = login_client(app, other_email)
    for word in ("draft", "Opening", "notes"):
        assert "Second draft" not in oc.get(f"/search?q={word}").get_data(as_text=True)
    assert '"content": "remove"' in query(action="account.erased")[0].detail


def test_erasing_needs_a_site_administrator_and_the_address_typed(app, make):
    admin = make.user(admin=True)
    org = make.org()
    org_admin = make.user(org=org, org_admin=True)
    target = make.user(org=org)
    for who in (org_admin, target):
        c = login_client(app, who)
        assert c.get(f"/admin/people/{target.id}/erase").status_code == 404
        assert erase(c, target).status_code == 404
    ac = login_client(app, admin)
    assert ac.get(f"/admin/people/{admin.id}/erase").status_code == 404  # never one's own account
    r = erase(ac, target, confirm="someone.else@example.org")
    assert r.status_code == 200 and "e-mail address exactly, to confirm" in r.get_data(as_text=True)
    r = erase(ac, target, posts="shred")
    assert "keep or remove" in r.get_data(as_text=True)
    assert fresh(User, target.id) is not None
    assert query(action="account.erased") == []
    assert ac.get("/admin/people/999999/erase").status_code == 404


# -- retention -------------------------------------------------------------------------------------------

def age_posts(post_ids, days: float) -> None:
    db.begin_write()
    db.session.execute(update(Post).where(Post.id.in_(post_ids)).values(created_at=utcnow() - timedelta(days=days)))
    db.session.commit()
    db.session.remove()


def retention_room(make):
    owner = make.user(name="Olive Owner")
    member = make.user(name="Mo Member")
    room = make.room(owner, name="Kept 30 days", members=[member])
    old_thread = room_posts.create_thread(owner, room.id, title="An old confidential matter", body="Old opening text",
                                          uploads=[("old.txt", io.BytesIO(b"old attachment bytes"))])
    old_open = room_posts.opening_post(old_thread)
    old_reply = room_posts.create_post(member, old_thread.id, body="Old reply text", parent_id=old_open.id)[0]
    room_posts.edit_post(member, old_reply.id, body="Old reply text, edited")
    new_reply = room_posts.create_post(owner, old_thread.id, body="Recent reply text", parent_id=old_reply.id)[0]
    new_thread = room_posts.create_thread(member, room.id, title="A recent matter", body="Recent opening text")
    age_posts([old_open.id, old_reply.id], 40)
    return owner, member, room, old_thread, old_open, old_reply, new_reply, new_thread


def test_owners_set_a_retention_period(app, make):
    owner, member, room, *_ = retention_room(make)
    oc = login_client(app, owner)
    doc = lxml.html.fromstring(oc.get(f"/rooms/{room.id}/settings").get_data(as_text=True))
    assert doc.xpath('//input[@id="retention_days"]')
    r = oc.post(f"/rooms/{room.id}/retention", data={"retention_days": "30"})
    assert r.status_code == 302
    ev = query(action="room.retention_changed")[0]
    assert ev.actor_id == owner.id and ev.room_id == room.id and '"to": 30' in ev.detail
    for bad in ("abc", "-3", "99999999"):
        r = oc.post(f"/rooms/{room.id}/retention", data={"retention_days": bad})
        assert r.status_code == 422 and "whole number of days" in r.get_data(as_text=True)
    mc = login_client(app, member)
    assert mc.post(f"/rooms/{room.id}/retention", data={"retention_days": "1"}).status_code == 403
    assert mc.get(f"/rooms/{room.id}/settings").status_code == 404
    stranger = login_client(app, make.user())
    assert stranger.post(f"/rooms/{room.id}/retention", data={"retention_days": "1"}).status_code == 404
    assert oc.post(f"/rooms/{room.id}/retention", data={"retention_days": ""}).status_code == 302
    assert fresh(type(room), room.id).retention_days is None


def test_dry_run_and_settings_page_show_what_would_go_and_change_nothing(app, make, runner):
    owner, _member, room, _old_thread, old_open, old_reply, new_reply, _new_thread = retention_room(make)
    oc = login_client(app, owner)
    oc.post(f"/rooms/{room.id}/retention", data={"retention_days": "30"})
    page = oc.get(f"/rooms/{room.id}/settings")
    preview = lxml.html.fromstring(page.get_data(as_text=True)).xpath('//*[@id="retention-preview"]')[0]
    assert "2 posts and 1 attachment" in preview.text_content()
    listed = text_of(page)
    assert f"Post {old_open.id}" in listed and f"Post {old_reply.id}" in listed
    assert f"Post {new_reply.id}" not in listed
    result = runner.invoke(args=["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Would delete" in result.output and "2 posts and 1 attachments" in result.output
    assert f"post {old_open.id} " in result.output and f"post {old_reply.id} " in result.output
    assert f"post {new_reply.id} " not in result.output
    assert "Old opening text" not in result.output  # never the text itself
    db.session.remove()
    assert db.session.get(Post, old_open.id).body == "Old opening text"
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 1
    assert query(action="retention.purged") == []


def test_the_daily_run_deletes_old_posts_and_attachments_keeping_the_tree(app, make, runner):
    owner, member, room, old_thread, old_open, old_reply, new_reply, new_thread = retention_room(make)
    sha = db.session.scalar(select(Attachment.sha256))
    login_client(app, owner).post(f"/rooms/{room.id}/retention", data={"retention_days": "30"})
    other_room = make.room(owner, name="No retention")
    kept_thread = room_posts.create_thread(owner, other_room.id, title="Kept forever", body="Old but kept")
    age_posts([room_posts.opening_post(kept_thread).id], 400)

    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "Deleted" in result.output and "2 posts" in result.output
    db.session.remove()
    gone = [db.session.get(Post, i) for i in (old_open.id, old_reply.id)]
    assert all(p.deleted_at is not None and p.body == "" and p.html == "" for p in gone)
    assert db.session.get(Post, new_reply.id).body == "Recent reply text"
    assert db.session.get(Post, new_reply.id).parent_id == old_reply.id  # the tree stays whole
    assert db.session.get(Post, old_reply.id).parent_id == old_open.id
    assert room_posts.opening_post(new_thread).body == "Recent opening text"
    assert room_posts.opening_post(kept_thread).body == "Old but kept"
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert db.session.scalar(select(func.count()).select_from(PostRevision)) == 0
    assert not blob(app, sha).exists()
    assert db.session.get(Thread, old_thread.id).title != "An old confidential matter"
    # Nothing stored for live clients still carries the old text.
    payloads = " ".join(db.session.scalars(select(RoomEvent.payload).where(RoomEvent.room_id == room.id)))
    for old in ("Old opening text", "Old reply text", "An old confidential matter"):
        assert old not in payloads
    page = text_of(login_client(app, member).get(f"/threads/{old_thread.id}"))
    assert "Post removed" in page and "Recent reply text" in page and "Old reply text" not in page
    ev = query(action="retention.purged")
    assert len(ev) == 1 and ev[0].room_id == room.id and '"posts": 2' in ev[0].detail
    again = runner.invoke(args=["retention", "run"])
    assert "Nothing is past" in again.output
    assert len(query(action="retention.purged")) == 1


def test_an_old_tombstone_still_loses_its_attachments(app, make, runner):
    owner = make.user()
    room = make.room(owner)
    thread = room_posts.create_thread(owner, room.id, title="Files", body="See file")
    post = room_posts.create_post(owner, thread.id, body="with a file",
                                  uploads=[("f.txt", io.BytesIO(b"bytes of a deleted post"))])[0]
    # a tombstone whose attachment row stayed (removing a post keeps no files since rooms/post_removal.py;
    # older tombstones did)
    db.begin_write()
    db.session.execute(update(Post).where(Post.id == post.id).values(deleted_at=utcnow(), body="", html=""))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 1
    age_posts([post.id], 10)
    login_client(app, owner).post(f"/rooms/{room.id}/retention", data={"retention_days": "5"})
    runner.invoke(args=["retention", "run"])
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert room_posts.opening_post(thread).body == "See file"
