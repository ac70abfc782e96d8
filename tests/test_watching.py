"""Issue 14: Discourse's watch levels for rooms and threads driving notifications, reading a thread
reads its notifications (live too), plain-text previews that name the right place, leaving a room
asked first, and the small ones around invitations and first-run set-up."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from auth import invitation_links
from auth import services as accounts
from auth.models import Invitation
from collab.extensions import db
from collab.tokens import digest, new_secret
from rooms import account_data
from rooms import notifications as nt
from rooms import services as rs
from rooms import watching
from tests.conftest import bearer
from tests.live_support import Collector, login_client, sock


@pytest.fixture
def app_config():
    return {"PUBLIC_URL": "http://localhost"}


def kinds(user) -> list[str]:
    db.session.expire_all()
    return [n.kind for n in db.session.scalars(
        select(nt.Notification).where(nt.Notification.user_id == user.id).order_by(nt.Notification.id))]


def test_room_and_thread_levels_decide_who_hears_of_what(app, make):
    owner = make.user(name="Olga Owner")
    w, t_, n_, m_ = (make.user(name=f"{x} Person") for x in ("Watching", "Tracking", "Normal", "Muted"))
    room = make.room(owner, members=[w, t_, n_, m_])
    for who, level in ((w, "watching"), (n_, "normal"), (m_, "muted")):
        watching.set_room_level(who, room.id, level)
    thread = make.thread(owner, room, body="Opening")
    # A new thread: watching and tracking (the default) hear of it; normal and muted do not.
    assert (kinds(w), kinds(t_), kinds(n_), kinds(m_)) == (["thread"], ["thread"], [], [])
    p = make.reply(n_, thread, "Normal's point")
    make.reply(t_, thread, "An answer to you", parent=p)
    make.reply(owner, thread, "And @Muted Person, @Tracking Person: look")
    # Watching hears of every post; a reply and a mention reach normal and tracking; muted hears nothing,
    # not even a mention; nobody hears of their own post.
    assert kinds(w) == ["thread", "post", "post", "post"]
    assert kinds(n_) == ["reply"] and kinds(t_) == ["thread", "mention"] and kinds(m_) == []

    # Thread levels override the room: watch one thread of a normal room, mute one in a watched room,
    # track a thread of a muted room (replies and mentions come through again).
    other = make.thread(owner, room, title="Second")
    assert watching.set_thread_level(n_, other.id, "watching") == "watching"
    watching.set_thread_level(w, other.id, "muted")
    watching.set_thread_level(m_, other.id, "tracking")
    before = {u.id: len(kinds(u)) for u in (w, n_, m_)}
    make.reply(owner, other, "Hello @Watching Person and @Muted Person")
    assert kinds(n_)[before[n_.id]:] == ["post"]
    assert kinds(w)[before[w.id]:] == []          # muted thread: not even the mention
    assert kinds(m_)[before[m_.id]:] == ["mention"]
    # The account's data download lists its thread levels (the first one set by replying in it).
    docs, _blobs = account_data.export_data(n_)
    levels = docs["thread_notifications.json"]
    assert levels == [
        {"thread_id": thread.id, "thread": "A thread", "level": "tracking", "set_at": levels[0]["set_at"]},
        {"thread_id": other.id, "thread": "Second", "level": "watching", "set_at": levels[1]["set_at"]}]
    # "normal" removes the thread's own level: the room decides again (watching).
    assert watching.set_thread_level(w, other.id, "normal") == "normal"
    assert watching.thread_state(w, other) == {"level": "normal", "effective": "watching"}
    make.reply(owner, other, "One more")
    assert kinds(w)[-1] == "post"


def test_taking_part_watches_or_tracks_the_thread_unless_a_level_was_chosen(app, make):
    """Discourse's automatic levels: the thread you start is watched, one you reply to is tracked;
    neither replaces a level you set yourself (even "normal"), lowers a watched room's threads or
    unmutes a muted room's."""
    owner = make.user(name="Olga Owner")
    alice, bob, cleo, dev = (make.user(name=f"{x} Person") for x in ("Alice", "Bob", "Cleo", "Dev"))
    room = make.room(owner, members=[alice, bob, cleo, dev])
    watching.set_room_level(cleo, room.id, "watching")
    watching.set_room_level(dev, room.id, "muted")
    thread = make.thread(alice, room, title="Started by Alice")
    assert watching.thread_state(alice, thread) == {"level": "watching", "effective": "watching"}
    assert watching.thread_state(bob, thread) == {"level": "normal", "effective": "normal"}
    # Bob replies: he now tracks the thread, and hears of a reply to him (not of every post).
    first = make.reply(bob, thread, "Bob's view")
    assert watching.thread_state(bob, thread) == {"level": "tracking", "effective": "tracking"}
    before = {u.id: len(kinds(u)) for u in (alice, bob)}
    make.reply(owner, thread, "Unrelated")
    make.reply(owner, thread, "To Bob", parent=first)
    assert kinds(bob)[before[bob.id]:] == ["reply"]
    # Alice hears of every post in the thread she started, not only of replies to her.
    assert kinds(alice)[before[alice.id]:] == ["reply", "post"]
    # Replying to her own thread leaves Alice watching; a room watched or muted is not overridden.
    make.reply(alice, thread, "Thanks all")
    make.reply(cleo, thread, "Cleo here")
    make.reply(dev, thread, "Dev here")
    assert watching.own_thread_level(alice, thread) == "watching"
    assert watching.thread_state(cleo, thread) == {"level": "normal", "effective": "watching"}
    assert watching.thread_state(dev, thread) == {"level": "normal", "effective": "muted"}
    # A level chosen by hand stays when its owner replies, "normal" included (then the room decides).
    watching.set_thread_level(bob, thread.id, "muted")
    make.reply(bob, thread, "Still muted for me")
    assert watching.own_thread_level(bob, thread) == "muted"
    other = make.thread(owner, room, title="Second")
    assert watching.set_thread_level(bob, other.id, "normal") == "normal"
    make.reply(bob, other, "My say")
    assert watching.thread_state(bob, other) == {"level": "normal", "effective": "normal"}
    before = len(kinds(bob))
    make.reply(owner, other, "Another post")
    assert kinds(bob)[before:] == []
    # The thread's starter is among those who hear of things that are not posts (an idea's status).
    assert alice.id in set(db.session.scalars(watching.thread_followers(thread)))
    assert bob.id not in set(db.session.scalars(watching.thread_followers(thread)))
    # "normal" chosen in a watched room: the room's watching still reaches Cleo.
    watching.set_thread_level(cleo, thread.id, "normal")
    assert cleo.id in set(db.session.scalars(watching.thread_followers(thread)))
    assert dev.id in set(db.session.scalars(watching.thread_muters(thread)))


def test_level_controls_on_pages_and_api(app, make):
    owner, member, outsider = make.user(), make.user(name="Mia Member"), make.user()
    room = make.room(owner, members=[member])
    thread = make.thread(owner, room)
    c = login_client(app, member)
    page = c.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert 'id="thread-watch"' in page and 'aria-label="Notifications for this thread: Normal"' in page
    r = c.post(f"/threads/{thread.id}/notifications", data={"level": "watching"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/threads/{thread.id}")
    assert watching.own_thread_level(member, thread) == "watching"
    page = c.get(f"/threads/{thread.id}").get_data(as_text=True)
    assert "This thread’s notifications: Watching." in page
    assert re.search(r'value="watching"[^>]*aria-pressed="true"', page)
    r = c.post(f"/threads/{thread.id}/notifications", data={"level": "loud"})
    assert r.status_code == 422 and "Notification level must be one of" in r.get_data(as_text=True)
    r = c.post(f"/threads/{thread.id}/notifications", data={"level": "muted"}, headers={"Accept": "application/json"})
    assert r.json == {"message": "This thread’s notifications: Muted."}
    assert login_client(app, outsider).post(f"/threads/{thread.id}/notifications",
                                            data={"level": "watching"}).status_code == 404
    # The room page's menu.
    assert 'id="room-watch"' in c.get(f"/rooms/{room.id}").get_data(as_text=True)
    assert c.post(f"/rooms/{room.id}/notifications", data={"level": "watching"}).status_code == 302
    assert watching.room_level(member, room) == "watching"
    # The API: any reader may set a thread's level; bad levels are a 422 naming the field.
    tok = make.token(member)
    api = app.test_client()
    r = api.put(f"/api/v1/threads/{thread.id}/notifications", json={"level": "tracking"}, headers=bearer(tok))
    assert r.json == {"thread_id": thread.id, "level": "tracking"}
    r = api.put(f"/api/v1/threads/{thread.id}/notifications", json={"level": 3}, headers=bearer(tok))
    assert r.status_code == 422 and r.json["error"]["field"] == "level"
    r = api.put(f"/api/v1/threads/{thread.id}/notifications", json={"level": "watching"},
                headers=bearer(make.token(outsider)))
    assert r.status_code == 404


def test_reading_the_thread_reads_its_notifications_and_previews_are_plain_text(app, make):
    owner, alice = make.user(name="Olga Owner"), make.user(name="Alice Ash")
    room = make.room(owner, members=[alice], name="Neighbourhood IAG")
    thread = make.thread(owner, room, title="Stop and search", body="We had **four** complaints:\n\n"
                         "| Month | Count |\n|---|---|\n| May | 4 |\n\n[x](javascript:alert(1))")
    other = make.thread(owner, room, title="Elsewhere")
    make.reply(owner, other, "@Alice Ash over here")
    items, _total = nt.list_for(alice)
    new_thread = next(n for n in items if n.kind == "thread" and n.thread_id == thread.id)
    text = nt.notification_dict(new_thread)
    assert text["headline"] == "Olga Owner started a thread in Neighbourhood IAG"
    assert text["excerpt"].startswith("We had four complaints: Month Count May 4")
    assert "**" not in text["excerpt"] and "|" not in text["excerpt"] and "javascript" not in text["excerpt"]
    c = login_client(app, alice)
    html = c.get("/notifications").get_data(as_text=True)
    assert "Olga Owner started a thread in Neighbourhood IAG" in html and "“Stop and search”" in html
    assert nt.unread_count(alice) == 3   # two new threads and a mention
    # Another page of Alice's is open: reading a thread there reads its notifications, and the bell of
    # every open page hears it.
    live = Collector(sock(app, login_client(app, alice)))
    page = c.get(f"/threads/{other.id}").get_data(as_text=True)
    assert nt.unread_count(alice) == 1 and live.wait("notification.read")["unread"] == 1
    assert re.search(r"data-bell-count[^>]*>1<", page)   # this page's own bell counts what is left
    assert [n.kind for n in nt.list_for(alice, unread_only=True)[0]] == ["thread"]
    # A notification written after the read marker passed its post (here: marked unread by hand) is read on
    # the next visit.
    c.get(f"/threads/{thread.id}")
    assert nt.unread_count(alice) == 0
    db.session.execute(nt.Notification.__table__.update().values(read_at=None))
    db.session.commit()
    c.get(f"/threads/{thread.id}")
    assert nt.unread_count(alice) == 2   # the other thread's two are still unread
    # The page's script reads a notification that arrives while its thread is on screen.
    note = nt.list_for(alice, unread_only=True)[0][0]
    r = c.post("/notifications", data={"action": "read", "id": str(note.id)}, headers={"Accept": "application/json"})
    assert r.json == {"unread": 1}


def test_leaving_a_room_is_asked_first_and_says_what_will_happen(app, make):
    org = make.org()
    owner, member, staff = make.user(org=org), make.user(), make.user(org=org)
    private = make.room(owner, members=[member], name="Private IAG")
    org_room = make.room(owner, members=[staff], visibility="organisation", name="Force room")
    c = login_client(app, member)
    page = c.get(f"/rooms/{private.id}").get_data(as_text=True)
    assert 'data-opens-dialog="leave-dialog"' in page and '<dialog id="leave-dialog"' in page
    assert "you will need a new invitation to come back" in page
    # Without script the unconfirmed form is answered with the question, and nothing is done.
    r = c.post(f"/rooms/{private.id}/leave")
    assert r.status_code == 200 and "Leave Private IAG?" in r.get_data(as_text=True)
    assert rs.my_roles(member).get(private.id) == "member"
    r = c.post(f"/rooms/{private.id}/leave", data={"confirm": "yes"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/rooms")
    assert "You have left Private IAG." in c.get("/rooms").get_data(as_text=True)
    assert private.id not in rs.my_roles(member)
    assert c.post(f"/rooms/{private.id}/leave").status_code == 404   # private: gone from view at once
    # An organisation room says that its staff may still read it and join again.
    page = login_client(app, staff).post(f"/rooms/{org_room.id}/leave").get_data(as_text=True)
    assert "may still be able to read it and join it again" in page and "new invitation" not in page


def test_open_invitations_can_be_shown_again_and_withdrawn(app, make):
    admin = make.user(admin=True, name="Ada Admin")
    c = login_client(app, admin)
    r = c.post("/admin/people", data={"action": "invite", "email": "ivy@example.org", "kind": "staff",
                                      "role": "member"})
    link = re.search(r'id="invite-link" readonly value="([^"]+)"', r.get_data(as_text=True)).group(1)
    inv = db.session.scalar(select(Invitation).where(Invitation.email == "ivy@example.org"))
    page = c.get("/admin/people").get_data(as_text=True)
    assert "ivy@example.org — Police staff" in page and "— staff" not in page
    r = c.post("/admin/people", data={"action": "invite-link", "invitation_id": str(inv.id)})
    assert f'value="{link}"' in r.get_data(as_text=True)   # the same link, shown again
    # Someone else's organisation admin may not see it; nor may a member.
    assert login_client(app, make.user()).post("/admin/people", data={"action": "invite-link",
                                                                       "invitation_id": str(inv.id)}).status_code == 404
    # An invitation made before links were derived gets a new link the first time (the page says so).
    old = Invitation(token_hash=digest(new_secret()), email="old@example.org", kind="iag", role="member",
                     created_by_id=admin.id, expires_at=inv.expires_at)
    db.session.add(old)
    db.session.commit()
    r = c.post("/admin/people", data={"action": "invite-link", "invitation_id": str(old.id)})
    assert "the first one no longer works" in r.get_data(as_text=True)
    assert invitation_links.link_again(admin, old.id)[2] is False   # from now on, the same link
    # Withdrawn: the link stops working at once and the list no longer shows it.
    r = c.post("/admin/people", data={"action": "revoke-invite", "invitation_id": str(inv.id)})
    assert r.status_code == 302
    guest = app.test_client()
    r = guest.get(link)
    assert r.status_code == 422 and "withdrawn" in r.get_data(as_text=True)
    assert "ivy@example.org" not in c.get("/admin/people").get_data(as_text=True).split('id="pend-h"')[-1]
    r = c.post("/admin/people", data={"action": "revoke-invite", "invitation_id": str(inv.id)})
    assert r.status_code == 409 or "no longer open" in r.get_data(as_text=True)


def test_a_used_invitation_tells_a_signed_in_person_where_to_go(app, make):
    admin = make.user(admin=True)
    _inv, link = accounts.create_invitation(admin, kind="iag")
    path = link.replace("http://localhost", "")
    newcomer = app.test_client()
    r = newcomer.post(path, data={"name": "Ivy Volunteer", "email": "ivy2@example.org",
                                  "password": "a long enough passphrase 1"})
    assert r.status_code == 302
    html = newcomer.get(path).get_data(as_text=True)
    assert "already been used" in html and "You are signed in as Ivy Volunteer" in html
    assert "Go to your rooms" in html and "Go to sign in" not in html
    assert "Go to sign in" in app.test_client().get(path).get_data(as_text=True)


def test_first_run_setup_does_not_ask_to_sign_in(client):
    r = client.get("/rooms", follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Create the first administrator" in html or 'name="organisation"' in html
    assert "Please sign in to see that page." not in html
