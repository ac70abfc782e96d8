"""Moderation: flag, queue, hide/restore/delete, mute, suspend; each audited and
the person concerned notified."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auth import audit, suspension
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import moderation
from rooms.notifications import Notification
from tests.conftest import PASSWORD, bearer
from tests.live_support import login_client


def _notice(user, post):
    return db.session.scalar(select(Notification).where(Notification.user_id == user.id,
                                                        Notification.post_id == post.id))


@pytest.fixture
def room_setup(app, make):
    owner, mod = make.user(name="Olga Owner"), make.user(name="Max Moderator")
    author, member, outsider = make.user(name="Ada Author"), make.user(name="Mo Member"), make.user()
    room = make.room(owner, members=[author, member], moderator=[mod])
    thread = make.thread(owner, room, title="Policy")
    post = make.reply(author, thread, body="Something rude about the superintendent")
    return {"owner": owner, "mod": mod, "author": author, "member": member, "outsider": outsider, "room": room,
            "thread": thread, "post": post}


def test_flag_queue_hide_restore_delete(app, make, room_setup):
    s = room_setup
    post = s["post"]
    mc = login_client(app, s["member"])
    assert mc.post(f"/posts/{post.id}/flag", data={"reason": ""}).status_code == 422  # a reason is required
    assert mc.post(f"/posts/{post.id}/flag", data={"reason": "Personal attack"}).status_code == 302
    assert audit.query(action="moderation.flagged")[0].actor_id == s["member"].id
    # only moderators see the queue; members and outsiders get a 404
    assert mc.get(f"/rooms/{s['room'].id}/moderation").status_code == 404
    assert login_client(app, s["outsider"]).get(f"/rooms/{s['room'].id}/moderation").status_code == 404
    modc = login_client(app, s["mod"])
    q = modc.get(f"/rooms/{s['room'].id}/moderation").get_data(as_text=True)
    assert "Personal attack" in q and "Something rude" in q

    assert modc.post(f"/posts/{post.id}/moderate", data={"action": "hide", "reason": ""}).status_code == 422
    r = modc.post(f"/posts/{post.id}/moderate", data={"action": "hide", "reason": "Keep it civil"})
    assert r.status_code == 302
    assert audit.query(action="moderation.hidden")[0].target_id == post.id
    assert _notice(s["author"], post).kind == "hidden"
    page = mc.get(f"/threads/{s['thread'].id}").get_data(as_text=True)
    assert "hidden by moderators" in page and "Something rude" not in page
    ac = login_client(app, s["author"])
    page = ac.get(f"/threads/{s['thread'].id}").get_data(as_text=True)
    assert "Something rude" in page and "Keep it civil" in page
    assert "Something rude" in modc.get(f"/threads/{s['thread'].id}").get_data(as_text=True)
    tok = make.token(s["member"])
    api = app.test_client().get(f"/api/v1/posts/{post.id}", headers=bearer(tok)).json
    assert api["hidden"] is True and api["body"] == "" and api["hidden_reason"] is None
    api = app.test_client().get(f"/api/v1/posts/{post.id}", headers=bearer(make.token(s["author"]))).json
    assert api["body"].startswith("Something rude") and api["hidden_reason"] == "Keep it civil"
    assert "0 results" in mc.get("/search?q=superintendent").get_data(as_text=True) or \
        "Something rude" not in mc.get("/search?q=superintendent").get_data(as_text=True)

    assert modc.post(f"/posts/{post.id}/moderate", data={"action": "restore"}).status_code == 302
    assert audit.query(action="moderation.restored")[0].target_id == post.id
    assert _notice(s["author"], post).kind == "restored"
    assert "Something rude" in mc.get(f"/threads/{s['thread'].id}").get_data(as_text=True)

    assert modc.post(f"/posts/{post.id}/moderate", data={"action": "delete", "reason": "Abuse"}).status_code == 302
    ev = audit.query(action="moderation.deleted")[0]
    assert ev.target_id == post.id and "Abuse" in ev.detail
    assert _notice(s["author"], post).kind == "removed"
    assert "Something rude" not in modc.get(f"/threads/{s['thread'].id}").get_data(as_text=True)
    # members cannot moderate
    assert mc.post(f"/posts/{post.id}/moderate", data={"action": "hide", "reason": "x"}).status_code == 404


def test_mute_blocks_posting_with_a_clear_message(app, make, room_setup):
    s = room_setup
    modc = login_client(app, s["mod"])
    r = modc.post(f"/posts/{s['post'].id}/moderate", data={"action": "mute", "hours": "2", "reason": "Cool off"})
    assert r.status_code == 302
    ev = audit.query(action="moderation.muted")[0]
    assert ev.target_id == s["author"].id and "Cool off" in ev.detail
    assert _notice(s["author"], s["post"]).kind == "muted"
    tok = make.token(s["author"])
    r = app.test_client().post(f"/api/v1/threads/{s['thread'].id}/posts", json={"body": "again"}, headers=bearer(tok))
    assert r.status_code == 403 and "muted you in this room until" in r.json["error"]["message"]
    ac = login_client(app, s["author"])
    r = ac.post(f"/posts/{s['post'].id}/reply", data={"body": "again"})
    assert r.status_code == 403
    # moderators and owners cannot be muted; bad durations are refused
    with pytest.raises(Forbidden):
        moderation.mute_member(s["mod"], s["room"].id, s["owner"].id, 1, "no")
    with pytest.raises(Invalid):
        moderation.mute_member(s["mod"], s["room"].id, s["member"].id, 0, "no")
    mute = moderation.queue(s["mod"], s["room"].id).mutes[0]
    moderation.lift_mute(s["mod"], s["room"].id, mute.id)
    r = app.test_client().post(f"/api/v1/threads/{s['thread'].id}/posts", json={"body": "again"}, headers=bearer(tok))
    assert r.status_code == 201


def test_suspended_accounts_cannot_sign_in_use_tokens_or_connect(app, make, room_setup):

    s = room_setup
    admin = make.user(admin=True)
    victim = s["author"]
    tok = make.token(victim)
    vc = login_client(app, victim)
    ac = login_client(app, admin)
    assert login_client(app, s["owner"]).get(f"/admin/people/{victim.id}/suspend").status_code == 404
    r = ac.post(f"/admin/people/{victim.id}/suspend", data={"days": "3", "reason": "Repeated abuse"})
    assert r.status_code == 302
    ev = audit.query(action="account.suspended")[0]
    assert ev.target_id == victim.id and "Repeated abuse" in ev.detail
    assert vc.get("/rooms").status_code == 302  # the open session has ended
    assert app.test_client().get("/api/v1/me", headers=bearer(tok)).status_code == 401
    c = app.test_client()
    assert c.post("/login", data={"email": victim.email, "password": PASSWORD}).status_code != 302
    # once the suspension has run out, the next sign-in works again
    sus = suspension.current_suspension(victim)
    db.begin_write()
    sus = db.session.merge(sus)
    sus.until = sus.until - timedelta(days=4)
    db.session.commit()
    assert app.test_client().post("/login", data={"email": victim.email, "password": PASSWORD}).status_code == 302


def test_suspended_accounts_cannot_open_sockets(app, make):
    from tests.live_support import sock

    admin, victim = make.user(admin=True), make.user()
    tok = make.token(victim)
    suspension.suspend_account(admin, victim.id, 1, "Spam")
    assert not sock(app, token=tok).is_connected()


def test_history_of_a_hidden_post_is_kept_from_members(app, make, room_setup):
    """Hiding takes a post's text away from members; its edit history must not hand it back."""
    from rooms import posts as room_posts

    s = room_setup
    post = s["post"]
    room_posts.edit_post(s["author"], post.id, body="Second thoughts about the superintendent")
    moderation.hide_post(s["mod"], post.id, "Keep it civil")
    mc = login_client(app, s["member"])
    r = mc.get(f"/posts/{post.id}/history")
    text = r.get_data(as_text=True)
    assert r.status_code == 404
    assert "Something rude" not in text and "Second thoughts" not in text
    # its author and the moderators still see every version
    for who in ("author", "mod", "owner"):
        text = login_client(app, s[who]).get(f"/posts/{post.id}/history").get_data(as_text=True)
        assert "Something rude" in text and "Second thoughts" in text, who
    # and once restored, members see it again
    moderation.restore_post(s["mod"], post.id)
    assert "Something rude" in mc.get(f"/posts/{post.id}/history").get_data(as_text=True)


def test_a_post_removed_by_a_moderator_leaves_no_text_in_the_stored_events(app, make, room_setup):
    """`sync` replays the room's stored events: a removal must rewrite them (rooms/post_removal.py), whoever removes."""
    from rooms.models import PostRevision, RoomEvent
    from rooms import posts as room_posts

    s = room_setup
    room_posts.edit_post(s["author"], s["post"].id, body="Second thoughts about the superintendent")
    moderation.delete_post(s["mod"], s["post"].id, "Abuse")
    payloads = " ".join(db.session.scalars(select(RoomEvent.payload).where(RoomEvent.room_id == s["room"].id)))
    assert "Something rude" not in payloads and "Second thoughts" not in payloads
    assert '"post.deleted"' not in payloads  # names are columns; the tombstone is there:
    assert db.session.scalar(select(RoomEvent).where(RoomEvent.name == "post.deleted")) is not None
    assert not db.session.scalars(select(PostRevision).where(PostRevision.post_id == s["post"].id)).all()
