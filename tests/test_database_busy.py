"""A web process whose database connections are all in use (an overloaded server, issue 17's mixed workload)
answers a request that waited the pool's whole timeout with 503 "busy" and Retry-After, not a 500 with a
traceback, logs it once rather than per request, and answers normally once a connection is free again."""
from __future__ import annotations

import logging

import pytest

from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="the pool settings are PostgreSQL's (SQLite: one file, no pool)")


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def app_config():
    return {"DATABASE_POOL_SIZE": 1, "DATABASE_POOL_OVERFLOW": 0, "DATABASE_POOL_TIMEOUT": 0.3}


def test_a_request_that_finds_every_connection_in_use_is_answered_busy(app, client, make, caplog):
    from collab.extensions import db

    u = make.user()
    auth = {"Authorization": f"Bearer {make.token(u)}"}
    assert client.get("/api/v1/rooms", headers=auth).status_code == 200
    db.session.remove()   # (the test's own session gives its connection back)
    caplog.set_level(logging.WARNING)
    held = db.engine.connect()   # the pool's only connection, in use by someone else for a while
    try:
        held.exec_driver_sql("SELECT 1")
        answers = [client.get("/api/v1/rooms", headers=auth) for _ in range(3)]
        posted = client.post("/api/v1/rooms", json={"name": "Busy", "visibility": "private"}, headers=auth)
    finally:
        held.close()
    for r in [*answers, posted]:
        assert r.status_code == 503, (r.status_code, r.get_data(as_text=True)[:300])
        assert r.headers["Retry-After"] and r.json["error"]["code"] == "unavailable"
        assert "too busy" in r.json["error"]["message"] and "Nothing was saved" in r.json["error"]["message"]
    busy_lines = [rec for rec in caplog.records if "too busy" in rec.getMessage()]
    assert len(busy_lines) == 1 and busy_lines[0].levelno == logging.WARNING   # once, not per request
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]   # (no traceback, from anyone)
    db.session.remove()
    assert client.get("/api/v1/rooms", headers=auth).status_code == 200   # a connection is free again
    rooms = client.get("/api/v1/rooms", headers=auth).json
    assert "Busy" not in str(rooms)   # the refused create wrote nothing
