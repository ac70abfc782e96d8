"""collab.events: listeners hear about a change only after the outermost commit,
even when a SAVEPOINT is released inside the transaction (SQLAlchemy fires
"after_commit" for that too). Delivering early ran listeners, which may yield
under gevent, while the SQLite write lock was still held, and told clients about
changes that could still roll back."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from collab import events
from collab.extensions import db


def test_events_wait_for_the_outermost_commit(app):
    heard = []

    def listener(ev):
        if ev.name == "test.nested":
            heard.append(ev.name)

    events.listen(listener)
    try:
        db.begin_write()
        events.queue(db.session, "test.nested", {"x": 1})
        with db.session.begin_nested():  # SAVEPOINT ... RELEASE
            pass
        assert heard == []  # the real transaction is still open
        db.session.commit()
        assert heard == ["test.nested"]
    finally:
        events._listeners.remove(listener)


def test_a_reply_is_announced_after_its_commit(app, make):
    """A reply that writes a notification (in a savepoint) is announced once, after the commit."""
    from rooms import posts as room_posts
    from rooms.models import Post

    author, replier = make.user(), make.user()
    room = make.room(author, members=[replier])
    thread = make.thread(author, room)
    heard = []

    def listener(ev):
        if ev.name == "post.created":  # is the post there for everyone else yet?
            with db.engine.connect() as other:
                heard.append(other.scalar(select(Post.id).where(Post.id == ev.payload["post"]["id"])))

    events.listen(listener)
    try:
        post, created = room_posts.create_post(replier, thread.id, body="A reply", client_id=uuid.uuid4().hex)
    finally:
        events._listeners.remove(listener)
    assert created and heard == [post.id]  # delivered once, and the post was committed by then
