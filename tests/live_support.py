"""Helpers for the live-room tests: Socket.IO test clients that share the Flask
test client's login cookie (or use a token), event waiting, a real SMTP server
on loopback, and the services the live tests need (PostgreSQL, Redis)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from collab.extensions import socketio

ORIGIN = "http://localhost"   # PUBLIC_URL of the test app
PASSWORD = "a long enough test passphrase"   # every test account's (tests/conftest.py `make.user`)


def sock(app, client=None, *, token: str | None = None, origin: str | None = ORIGIN, auth: Any = None,
         headers: dict | None = None):
    """A Flask-SocketIO test client, signed in with the Flask client's cookie or a token."""
    h = dict(headers or {})
    if origin is not None:
        h["Origin"] = origin
    if token is not None:
        auth = {"token": token}
    return socketio.test_client(app, flask_test_client=client, headers=h, auth=auth)


def login_client(app, user, **environ):
    """A fresh Flask test client signed in as `user` (an account or its e-mail address); `environ` goes
    into every request it makes (e.g. REMOTE_ADDR)."""
    c = app.test_client()
    c.environ_base.update(environ)
    r = c.post("/login", data={"email": getattr(user, "email", user), "password": PASSWORD})
    assert r.status_code == 302, r.data[:300]
    return c


def received(sc, name: str | None = None) -> list[dict]:
    """Events received so far (all, or those named `name`), as {"name", "args"}."""
    if not sc.is_connected():
        evs = list(sc.queue)
        sc.queue.clear()
    else:
        evs = sc.get_received()
    return [e for e in evs if name is None or e["name"] == name]


async def until(pred: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """`wait_for` for a test running in an event loop (media participants): polls without blocking it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(interval)
    return bool(pred())


def wait_for(pred: Callable[[], Any], timeout: float = 3.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Collector:
    """Keeps every event a test client received, so tests can wait for one."""

    def __init__(self, sc):
        self.sc = sc
        self.events: list[dict] = []

    def pull(self) -> list[dict]:
        self.events.extend(received(self.sc))
        return self.events

    def named(self, name: str) -> list[Any]:
        self.pull()
        return [e["args"][0] if e["args"] else None for e in self.events if e["name"] == name]

    def wait(self, name: str, pred: Callable[[Any], bool] = lambda _d: True, timeout: float = 3.0):
        found = wait_for(lambda: [d for d in self.named(name) if pred(d)], timeout)
        return found[-1] if found else None


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def postgres_url() -> str | None:
    url = os.environ.get("COLLAB_TEST_POSTGRES_URL")
    if url:
        return url
    if answers("127.0.0.1", 5432):
        return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    return None


def redis_base() -> str | None:
    url = os.environ.get("COLLAB_TEST_REDIS_URL")
    if url:
        return url.rsplit("/", 1)[0]
    if answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379"
    return None


def fresh_postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty PostgreSQL database; returns its URL and a function that drops it."""
    from sqlalchemy import create_engine, text

    name = f"collab_live_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base_url.rsplit("/", 1)[0] + "/" + name, drop


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what arrives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                from email import message_from_bytes, policy

                msg = message_from_bytes(envelope.content, policy=policy.default)
                sink.messages.append({"to": list(envelope.rcpt_tos), "subject": str(msg["Subject"]),
                                      "body": msg.get_body(preferencelist=("plain",)).get_content()})
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[dict]:
        wait_for(lambda: len(self.messages) >= count, timeout)
        return self.messages


class ScriptedClient:
    """A python-socketio client that behaves like the browser: it follows one room,
    takes numbered events only in order (a gap, or a reconnect, makes it `sync` from
    the last number it saw), and keeps every post it sent until the server
    acknowledges it, sending again after reconnecting."""

    def __init__(self, url: str, token: str, room_id: int):
        import threading

        import socketio

        self.url, self.token, self.room_id = url, token, room_id
        self.lock = threading.RLock()
        self.last = 0
        self.accepted: list[tuple[int, str, dict]] = []   # (seq, event, data) in order
        self.ignored_duplicates = 0
        self.need_sync = True
        self.connects = 0
        self.other: list[tuple[str, Any]] = []
        self.sio = socketio.Client(reconnection=True, reconnection_attempts=0, reconnection_delay=0.2,
                                   reconnection_delay_max=1.0)
        self.sio.on("connect", self._on_connect)
        self.sio.on("*", self._on_any)

    def connect(self):
        self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)

    def _on_connect(self):
        with self.lock:
            self.connects += 1
            self.need_sync = True

    def _on_any(self, event, data=None):
        if isinstance(data, dict) and data.get("room_id") == self.room_id and "seq" in data:
            self._take(data["seq"], event, data)
        else:
            with self.lock:
                self.other.append((event, data))

    def _take(self, seq: int, event: str, data: dict) -> None:
        with self.lock:
            if seq <= self.last:
                self.ignored_duplicates += 1
            elif seq == self.last + 1:
                self.last = seq
                self.accepted.append((seq, event, data))
            else:
                self.need_sync = True

    def catch_up(self, timeout: float = 10) -> None:
        """Subscribe (after a reconnect) and sync until nothing is missing. Call from the test thread."""
        with self.lock:
            if not self.need_sync:
                return
            self.need_sync = False
        ack = self.sio.call("subscribe", {"room_id": self.room_id}, timeout=timeout)
        assert ack["ok"], ack
        while True:
            ack = self.sio.call("sync", {"room_id": self.room_id, "after_seq": self.last}, timeout=timeout)
            assert ack["ok"], ack
            for item in ack["events"]:
                self._take(item["data"]["seq"], item["event"], item["data"])
            if not ack["more"]:
                break

    def events_named(self, name: str) -> list[dict]:
        with self.lock:
            return [d for _s, e, d in self.accepted if e == name]

    def close(self):
        with contextlib.suppress(Exception):
            self.sio.disconnect()
