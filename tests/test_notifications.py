"""Notifications: who is told about what, the bell, the page, per-room levels,
e-mail (immediate mentions, daily digest) through a real SMTP server on
loopback, reactions and @mention suggestions."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from collab.db import utcnow
from collab.extensions import db
from rooms import notifications as nt
from rooms import notify_email, watching
from rooms.mentions import find_mentions
from collab import tasks
from rooms import reactions
from rooms import services as rs
from rooms import posts as room_posts
from tests.conftest import bearer
from tests.live_support import Collector, login_client, sock


@pytest.fixture
def app_config(smtp):
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, "LIVE_PRESENCE_DELAY": 0.02,
            "PUBLIC_URL": "http://localhost"}


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


def room_and_thread(make, owner, members=(), **kw):
    """A room whose thread exists before its members join (so they have no "new thread" notification)."""
    room = make.room(owner)
    t = make.thread(owner, room, **kw)
    for m in members:
        rs.add_member(owner, room.id, user_id=m.id)
    return room, t


def notes(user) -> list:
    db.session.expire_all()
    return list(db.session.scalars(select(nt.Notification).where(nt.Notification.user_id == user.id)
                                   .order_by(nt.Notification.id)))


def test_find_mentions():
    people = [(1, "Ann"), (2, "Anna Smith"), (3, "Sgt. Fiona Walsh"), (4, "Bob")]
    assert find_mentions("hi @anna smith and @Sgt. Fiona Walsh!", people) == {2, 3}
    assert find_mentions("@Ann, see this", people) == {1}
    assert find_mentions("@Annabel is not Ann", people) == set()
    assert find_mentions("mail bob@example.org or ann@x", people) == set()
    assert find_mentions("(@bob)", people) == {4}
    assert find_mentions("no mention at all", people) == set()


def test_mentions_replies_and_new_threads_notify_the_right_people(app, make):
    owner = make.user(name="Olga Owner")
    alice, bob, carol, mute = make.user(name="Alice Ash"), make.user(name="Bob Birch"), make.user(name="Carol"), \
        make.user(name="Mo Mute")
    outsider = make.user(name="Oscar Out")
    room = make.room(owner, members=[alice, bob, carol, mute])
    watching.set_room_level(carol, room.id, "normal")
    watching.set_room_level(mute, room.id, "muted")

    t = make.thread(owner, room, body="Welcome @Mo Mute and @Oscar Out")
    # members (level "tracking", the default) hear of the new thread; mute hears nothing, even of a mention; the
    # outsider cannot read the room; nobody is told about their own post
    assert [n.kind for n in notes(alice)] == ["thread"] and [n.kind for n in notes(bob)] == ["thread"]
    assert notes(carol) == [] and notes(mute) == [] and notes(outsider) == [] and notes(owner) == []

    p = make.reply(alice, t, "A question for everyone")
    make.reply(bob, t, "Answering you, @alice ash", parent=p)
    kinds = [n.kind for n in notes(alice)]
    assert kinds == ["thread", "mention"]  # a reply that mentions you is one notification, a mention
    make.reply(carol, t, "a reply to Alice", parent=p)
    assert [n.kind for n in notes(alice)] == ["thread", "mention", "reply"]
    q = make.reply(carol, t, "my own point")
    make.reply(bob, t, "reply to Carol", parent=q)
    assert [n.kind for n in notes(carol)] == ["reply"]  # "normal": replies to you and mentions
    make.reply(bob, t, "@Carol have a look")
    assert [n.kind for n in notes(carol)] == ["reply", "mention"]


def test_a_reply_reaches_a_former_member_only_if_they_can_still_read_the_room(app, make):
    """Who hears of a reply is decided for everyone at once (one query): the same rule as
    policy.can_read_room, checked here room kind by room kind."""
    from auth import services as accounts

    org, other_org = make.org(), make.org()
    owner = make.user(name="Olga Owner", org=org)
    admin = make.user(admin=True)
    cases = {  # room visibility, who wrote the post replied to, whether they still hear of the reply
        "national": (make.user(name="Nat Left", org=other_org, kind="iag"), True),
        "organisation": (make.user(name="Staff Left", org=org), True),
        "organisation-iag": (make.user(name="Iag Left", org=org, kind="iag"), False),
        "organisation-other": (make.user(name="Other Left", org=other_org), False),
        "private": (make.user(name="Priv Left", org=org), False),
    }
    for case, (author, hears) in cases.items():
        room = make.room(owner, visibility=case.split("-")[0])
        t = make.thread(owner, room)  # before they join: no "new thread" notification
        rs.add_member(owner, room.id, user_id=author.id)
        p = make.reply(author, t, "My point")
        rs.leave_room(author, room.id)
        make.reply(owner, t, "An answer", parent=p)
        assert [n.kind for n in notes(author)] == (["reply"] if hears else []), case
    # A deactivated account hears nothing, member or not; the others in the room still do.
    gone, stays = make.user(name="Dee Gone", org=org), make.user(name="Stu Stays", org=org)
    _room, t = room_and_thread(make, owner, members=[gone, stays])
    p, q = make.reply(gone, t, "Before I go"), make.reply(stays, t, "Still here")
    accounts.set_active(admin, gone.id, False)
    make.reply(owner, t, "To Dee", parent=p)
    make.reply(owner, t, "To Stu, and @Dee Gone", parent=q)
    assert notes(gone) == [] and [n.kind for n in notes(stays)] == ["reply"]


def test_a_new_thread_tells_every_follower_in_one_go_with_their_own_unread_count(app, make):
    owner = make.user(name="Olga Owner")
    people = [make.user(name=f"Reader {i}") for i in range(4)]
    room = make.room(owner, members=people)
    first = make.thread(owner, room)  # one notification each already
    make.reply(owner, first, "Hello @Reader 0")  # and a second one for Reader 0
    watching.set_room_level(people[3], room.id, "normal")
    cols = [Collector(sock(app, login_client(app, u))) for u in people[:3]]
    t = make.thread(owner, room, body="New, with a word for @Reader 3")
    got = [c.wait("notification.created") for c in cols]
    assert [e["unread"] for e in got] == [3, 2, 2]
    assert {e["notification"]["kind"] for e in got} == {"thread"} and {e["notification"]["thread"]["id"] for e in got} == {t.id}
    assert len({e["notification"]["id"] for e in got}) == 3
    assert [n.kind for n in notes(people[3])] == ["thread", "mention"]  # "normal": the mention only
    assert [n.post_id for n in notes(people[1])][-1] == room_posts.opening_post(t).id


def test_notifications_arrive_live_with_the_unread_count(app, make):
    owner, alice = make.user(name="Olga Owner"), make.user(name="Alice Ash")
    room = make.room(owner, members=[alice])
    t = make.thread(owner, room)
    a = Collector(sock(app, login_client(app, alice)))
    make.reply(owner, t, "Hello @Alice Ash")
    ev = a.wait("notification.created")
    assert ev["unread"] == 2  # the new thread, then this mention
    n = ev["notification"]
    assert n["kind"] == "mention" and n["actor"]["name"] == "Olga Owner" and n["thread"]["id"] == t.id
    assert n["excerpt"] == "Hello @Alice Ash" and n["url"].endswith(f"/posts/{n['post_id']}") and not n["read"]
    nt.mark_all_read(alice)
    assert a.wait("notification.read")["unread"] == 0


def test_bell_page_mark_read_and_open(app, make):
    owner, alice = make.user(name="Olga Owner"), make.user(name="Alice Ash")
    room, t = room_and_thread(make, owner, [alice])
    for i in range(3):
        make.reply(owner, t, f"@Alice Ash number {i}")
    c = login_client(app, alice)
    page = c.get(f"/rooms/{room.id}").get_data(as_text=True)
    assert 'data-bell-count' in page and ">3<" in page
    html = c.get("/notifications").get_data(as_text=True)
    assert html.count('class="notification is-unread"') == 3 and "Olga Owner mentioned you" in html
    first, second, third = notes(alice)
    r = c.post("/notifications", data={"action": "read", "id": str(first.id)})
    assert r.status_code == 302
    assert nt.unread_count(alice) == 2
    r = c.get(f"/notifications/{second.id}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/posts/{second.post_id}")
    assert nt.unread_count(alice) == 1
    assert c.post("/notifications", data={"action": "read-all"}).status_code == 302
    assert nt.unread_count(alice) == 0
    # someone else's notification is not found
    bob = make.user()
    assert login_client(app, bob).get(f"/notifications/{third.id}").status_code == 404


def test_room_level_settings_on_the_page(app, make):
    owner, alice = make.user(), make.user()
    room = make.room(owner, members=[alice])
    other = make.room(owner)
    c = login_client(app, alice)
    html = c.get("/notifications").get_data(as_text=True)
    assert room.name in html and other.name not in html
    assert c.post("/notifications", data={"action": "room", "room_id": room.id, "level": "muted"}).status_code == 302
    assert rs.my_roles(alice) and [lvl for r, lvl in watching.room_levels(alice) if r.id == room.id] == ["muted"]
    r = c.post("/notifications", data={"action": "room", "room_id": room.id, "level": "loud"})
    assert r.status_code == 422 and "Notification level must be one of" in r.get_data(as_text=True)
    r = c.post("/notifications", data={"action": "room", "room_id": other.id, "level": "tracking"})
    assert r.status_code == 404


def test_notifications_from_rooms_you_can_no_longer_read_are_hidden(app, make):
    owner, alice = make.user(), make.user(name="Alice Ash")
    room, t = room_and_thread(make, owner, [alice])
    make.reply(owner, t, "@Alice Ash look")
    assert nt.list_for(alice)[1] == 1
    rs.remove_member(owner, room.id, alice.id)
    assert nt.list_for(alice) == ([], 0)


def test_api_lists_and_marks_notifications(app, make):
    owner, alice = make.user(), make.user(name="Alice Ash")
    room, t = room_and_thread(make, owner, [alice])
    make.reply(owner, t, "@Alice Ash one")
    make.reply(owner, t, "@Alice Ash two")
    tok = make.token(alice)
    c = app.test_client()
    r = c.get("/api/v1/notifications?unread=true", headers=bearer(tok))
    assert r.status_code == 200 and r.json["unread"] == 2 and len(r.json["notifications"]) == 2
    nid = r.json["notifications"][0]["id"]
    r = c.post("/api/v1/notifications/read", json={"ids": [nid]}, headers=bearer(tok))
    assert r.json == {"marked": 1, "unread": 1}
    r = c.post("/api/v1/notifications/read", json={"ids": "all"}, headers=bearer(tok))
    assert r.status_code == 422 and r.json["error"]["field"] == "ids"
    r = c.post("/api/v1/notifications/read", json={"all": True}, headers=bearer(tok))
    assert r.json == {"marked": 1, "unread": 0}
    r = c.put(f"/api/v1/rooms/{room.id}/notifications", json={"level": "mentions"}, headers=bearer(tok))
    assert r.json == {"room_id": room.id, "level": "normal"}  # the level's name before issue 14 still works
    r = c.put(f"/api/v1/rooms/{room.id}/notifications", json={"level": "watching"}, headers=bearer(tok))
    assert r.json == {"room_id": room.id, "level": "watching"}


# -- e-mail -----------------------------------------------------------------------------------------

def test_mention_email_goes_at_once_to_people_who_are_not_online(app, make, smtp):
    owner = make.user(name="Olga Owner")
    away, here = make.user(name="Alice Away", email="alice@example.org"), make.user(name="Henry Here")
    room = make.room(owner, members=[away, here])
    t = make.thread(owner, room, title="Stop and search draft")
    online = sock(app, token=make.token(here))
    assert online.is_connected()
    make.reply(owner, t, "What do you think, @Alice Away and @Henry Here?")
    tasks.settle(app)
    msgs = smtp.wait(1)
    assert len(msgs) == 1
    assert msgs[0]["to"] == ["alice@example.org"]
    assert msgs[0]["subject"] == f"[OFFICIAL] Olga Owner mentioned you in {room.name}"
    assert "Stop and search draft" in msgs[0]["body"] and "What do you think" in msgs[0]["body"]
    n = notes(away)[-1]
    assert f"http://localhost/posts/{n.post_id}" in msgs[0]["body"] and n.emailed_at is not None
    assert notes(here)[-1].emailed_at is None


def test_mention_email_respects_the_account_setting(app, make, smtp):
    owner, alice = make.user(), make.user(name="Alice Ash")
    room = make.room(owner, members=[alice])
    t = make.thread(owner, room)
    c = login_client(app, alice)
    assert c.post("/notifications", data={"action": "email", "email_digest": "on"}).status_code == 302
    assert nt.prefs(alice).email_mentions is False and nt.prefs(alice).email_digest is True
    make.reply(owner, t, "@Alice Ash hello")
    tasks.settle(app)
    assert smtp.messages == []


def test_daily_digest(app, make, smtp):
    owner = make.user(name="Olga Owner")
    alice = make.user(name="Alice Ash", email="alice.ash@example.org")
    nodigest = make.user(name="Nat")
    room = make.room(owner, members=[alice, nodigest])
    nt.set_prefs(nodigest, email_mentions=True, email_digest=False)
    t = make.thread(owner, room, title="Neighbourhood priorities")
    nt.set_prefs(owner, email_mentions=True, email_digest=False)
    mine = make.reply(alice, t, "My view")
    make.reply(owner, t, "I disagree", parent=mine)
    assert notify_email.send_due_digests() == 1
    msgs = smtp.wait(1)
    assert msgs[0]["to"] == ["alice.ash@example.org"] and msgs[0]["subject"] == "[OFFICIAL] Your Collab digest"
    body = msgs[0]["body"]
    assert "2 unread notifications" in body
    assert f"Olga Owner started a thread in {room.name}" in body
    assert "Olga Owner replied to your post" in body
    # no second digest within 24 hours, nor for what was already sent
    make.reply(owner, t, "another point", parent=mine)
    assert notify_email.send_due_digests() == 0
    assert notify_email.send_due_digests(now=utcnow() + timedelta(hours=25)) == 1
    assert "1 unread notification in Collab" in smtp.wait(2)[1]["body"]
    assert all(m["to"] != [nodigest.email] for m in smtp.messages)


def test_digest_skips_people_who_are_online(app, make, smtp):
    owner, alice = make.user(), make.user()
    room = make.room(owner, members=[alice])
    make.thread(owner, room)
    assert notify_email.send_due_digests(is_online=lambda uid: uid == alice.id) == 0
    assert notify_email.send_due_digests() == 1


# -- reactions and mention suggestions ----------------------------------------------------------------

def test_reactions_on_pages_and_api(app, make):
    owner, member, observer = make.user(), make.user(), make.user()
    room = make.room(owner, members=[member], observer=[observer])
    t = make.thread(owner, room)
    opening = room_posts.opening_post(t)
    c = login_client(app, member)
    r = c.post(f"/posts/{opening.id}/reactions", data={"emoji": "👍"}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json["reactions"][0]["user_ids"] == [member.id]
    r = c.get(f"/threads/{t.id}/reactions.json")
    assert r.json["reactions"][str(opening.id)][0]["count"] == 1 and len(r.json["emoji"]) == len(reactions.EMOJI)
    r = c.post(f"/posts/{opening.id}/reactions", data={"emoji": "👍", "on": "0"}, headers={"Accept": "application/json"})
    assert r.json["reactions"] == []
    r = c.post(f"/posts/{opening.id}/reactions", data={"emoji": "💩"}, headers={"Accept": "application/json"})
    assert r.status_code == 422
    r = login_client(app, observer).post(f"/posts/{opening.id}/reactions", data={"emoji": "👍"})
    assert r.status_code == 403
    assert login_client(app, make.user()).get(f"/threads/{t.id}/reactions.json").status_code == 404
    tok = make.token(owner)
    r = app.test_client().put(f"/api/v1/posts/{opening.id}/reactions/🎉", headers=bearer(tok))
    assert r.status_code == 200 and r.json["reactions"][0]["emoji"] == "🎉"
    r = app.test_client().put(f"/api/v1/posts/{opening.id}/reactions/🎉", headers=bearer(tok))
    assert r.json["reactions"][0]["count"] == 1  # adding twice is one reaction
    r = app.test_client().delete(f"/api/v1/posts/{opening.id}/reactions/🎉", headers=bearer(tok))
    assert r.json["reactions"] == []
    assert db.session.scalar(select(func.count()).select_from(reactions.Reaction)) == 0


def test_mention_suggestions(app, make):
    owner = make.user(name="Olga Owner")
    fiona, fred, other = make.user(name="Sgt. Fiona Walsh"), make.user(name="Fred Fox"), make.user(name="Fay")
    room = make.room(owner, members=[fiona, fred])
    c = login_client(app, owner)
    r = c.get(f"/rooms/{room.id}/mentions.json?q=f")
    assert [p["name"] for p in r.json["people"]] == ["Fred Fox", "Sgt. Fiona Walsh"]
    assert [p["name"] for p in c.get(f"/rooms/{room.id}/mentions.json?q=wal").json["people"]] == ["Sgt. Fiona Walsh"]
    assert "Olga Owner" not in str(c.get(f"/rooms/{room.id}/mentions.json").json)
    assert login_client(app, other).get(f"/rooms/{room.id}/mentions.json?q=f").status_code == 404


def test_send_digests_command(app, make, smtp, runner):
    owner, alice = make.user(), make.user(email="alice.cli@example.org")
    room = make.room(owner, members=[alice])
    make.thread(owner, room, title="From cron")
    result = runner.invoke(args=["send-digests"])
    assert result.exit_code == 0 and "Sent 1 digest." in result.output, result.output
    assert smtp.wait(1)[0]["to"] == ["alice.cli@example.org"]
    assert "Sent 0 digests." in runner.invoke(args=["send-digests"]).output
