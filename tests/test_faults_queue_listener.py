"""The message queue's listener dies silently (issue 17; python-socketio#1581: its listener thread can end
without a word, and from then on the process hears nothing from the others). The watchdog in
collab/live_queue.py sees it within a second or two and starts another, so notes and events from other
processes arrive again within 5 s. The listener is made to die here the way a real one does, by an exception
that is not an Exception (SystemExit) raised while it handles a message; Redis is a private one."""
from __future__ import annotations

import json
import time

import pytest
import redis as redis_lib

from collab import live_queue
from collab.extensions import socketio
from tests.conftest import make_test_app
from tests.fault_support import PrivateRedis
from tests.live_support import wait_for


@pytest.fixture
def queue_app(tmp_path, db_url):
    server = PrivateRedis()
    server.start()
    app = make_test_app(tmp_path, db_url, REDIS_URL=server.url)
    manager = socketio.server.manager
    assert isinstance(manager, live_queue.NoteQueue) and manager.app is app
    try:
        yield app, manager, server
    finally:
        manager.close()
        server.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_a_listener_that_dies_is_replaced_within_5_seconds(queue_app):
    app, manager, server = queue_app
    heard: list[dict] = []

    def listener(_app, note):
        if note.get("op") == "test-die":
            raise SystemExit("the listener dies, as python-socketio#1581's do")
        if note.get("op") == "test-note":
            heard.append(note)

    live_queue.on_note(listener)
    other = redis_lib.Redis.from_url(server.url)

    def from_another_process(note: dict) -> None:
        other.publish(manager.channel, json.dumps({
            "method": "emit", "event": live_queue.NOTE, "data": [note], "namespace": "/", "room": live_queue.NOTE,
            "skip_sid": None, "callback": None, "host_id": "another-process"}))

    try:
        manager.initialize()
        assert wait_for(lambda: (from_another_process({"op": "test-note", "n": 0}), heard)[1], timeout=10,
                        interval=0.2), "the listener never heard a note"
        first = manager.thread
        from_another_process({"op": "test-die"})
        assert wait_for(lambda: not first.is_alive(), timeout=10), "the listener did not die"
        died = time.monotonic()
        n = len(heard)
        assert wait_for(lambda: (from_another_process({"op": "test-note", "n": 1}), len(heard) > n)[1], timeout=5,
                        interval=0.1), "no note heard within 5 s of the listener dying"
        print(f"\nlistener replaced and hearing again {time.monotonic() - died:.1f} s after it died")
        assert manager.thread is not first and manager.thread.is_alive()
        assert manager.up
    finally:
        live_queue._listeners.remove(listener)
        other.close()
