"""Confidentiality labels: banner on the room's pages and search results, audited
changes, members told when a label is raised, OFFICIAL-SENSITIVE rules."""
from __future__ import annotations

import io

import pytest

from auth import audit
from collab.errors import Forbidden, Invalid
from collab import tasks
from rooms import trust_settings
from rooms import posts as room_posts
from tests.live_support import login_client


@pytest.fixture
def app_config(smtp):
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, "LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


def test_label_banner_on_every_room_page_and_search(app, make):
    owner = make.user()
    room = make.room(owner)
    t = make.thread(owner, room, body="banner stopwatch words")
    post = t.id and room_posts.opening_post(t)
    c = login_client(app, owner)
    for path in [f"/rooms/{room.id}", f"/threads/{t.id}", f"/rooms/{room.id}/members", f"/rooms/{room.id}/settings",
                 f"/posts/{post.id}/reply", f"/posts/{post.id}/edit", f"/rooms/{room.id}/threads/new",
                 f"/rooms/{room.id}/moderation", f"/search?q=stopwatch&room_id={room.id}"]:
        body = c.get(path).get_data(as_text=True)
        assert 'class="label-banner' in body and ">OFFICIAL<" in body.replace(" · ", "<"), path
    assert "OFFICIAL" in c.get("/search?q=stopwatch").get_data(as_text=True)
    assert app.test_client().get(f"/api/v1/rooms/{room.id}", headers={
        "Authorization": f"Bearer {make.token(owner)}"}).json["label"] == "OFFICIAL"


def test_raising_a_label_is_audited_and_members_are_told(app, make, smtp):
    owner, member = make.user(name="Olga Owner"), make.user(email="mia.member@example.org")
    room = make.room(owner, name="Force policy", members=[member])
    with pytest.raises(Forbidden):
        trust_settings.set_label(member, room.id, "OFFICIAL-SENSITIVE")
    with pytest.raises(Invalid):
        trust_settings.set_label(owner, room.id, "TOP SECRET")
    c = login_client(app, owner)
    assert c.post(f"/rooms/{room.id}/trust", data={"action": "label", "label": "OFFICIAL-SENSITIVE"}).status_code == 302
    ev = audit.query(action="room.label_changed")[0]
    assert ev.room_id == room.id and '"to": "OFFICIAL-SENSITIVE"' in ev.detail and '"raised": true' in ev.detail
    msgs = smtp.wait(1)
    assert [m["to"] for m in msgs] == [["mia.member@example.org"]]
    assert msgs[0]["subject"].startswith("[OFFICIAL-SENSITIVE] ")
    assert "OFFICIAL-SENSITIVE" in c.get(f"/rooms/{room.id}").get_data(as_text=True)
    assert login_client(app, member).get(f"/rooms/{room.id}/trust").status_code == 404


def test_sensitive_rooms_keep_attachments_from_guests_and_text_out_of_mail(app, make, smtp):
    owner = make.user(name="Olga Owner")
    guest = make.user(kind="guest", name="Gus Guest", email="gus@example.org")
    room = make.room(owner, members=[guest])
    t = room_posts.create_thread(owner, room.id, title="Papers", body="See attached",
                                 uploads=[("notes.txt", io.BytesIO(b"secret notes"))])
    att = room_posts.opening_post(t).attachments[0]
    url = f"/attachments/{att.id}/notes.txt"
    gc = login_client(app, guest)
    assert gc.get(url).status_code == 200  # OFFICIAL: guests may download
    trust_settings.set_label(owner, room.id, "OFFICIAL-SENSITIVE")
    smtp.wait(1)
    smtp.messages.clear()
    assert gc.get(url).status_code == 403
    assert login_client(app, owner).get(url).status_code == 200
    make.reply(owner, t, "Confidential detail for @Gus Guest")
    tasks.settle(app)
    msgs = smtp.wait(1)
    assert msgs and msgs[0]["subject"].startswith("[OFFICIAL-SENSITIVE] ")
    assert "Confidential detail" not in msgs[0]["body"] and "/posts/" in msgs[0]["body"]
