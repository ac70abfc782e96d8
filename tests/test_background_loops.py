"""Failures an operator reads in the log: a background loop whose turns keep failing (the database is
down) is logged once with its traceback and once when it recovers, not at every turn; and a database
error's message never carries the values of the statement that failed (a post's text, an e-mail)."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from collab import tasks
from collab.extensions import db
from tests.live_support import wait_for


def _run_loop(app, caplog, name: str, turn, done) -> list[logging.LogRecord]:
    """Register `turn` as a fast loop, run it until `done()`, stop it; the log records that name it."""
    tasks.loop(name, every=0.01, when=lambda _app: True)(turn)
    caplog.set_level(logging.DEBUG, logger="collab.tasks")
    try:
        assert name in tasks.start(app)
        assert wait_for(done, timeout=30)
    finally:
        tasks.stop(app)
        tasks._loops.pop(name, None)
    return [r for r in caplog.records if name in r.getMessage()]


def test_a_loop_that_keeps_failing_is_logged_once_and_again_when_it_recovers(app, caplog):
    turns = []

    def turn(_app):
        turns.append(1)
        if len(turns) <= 5:
            raise RuntimeError("the database went away")

    name = "test: fails five times"
    mine = _run_loop(app, caplog, name, turn, lambda: len(turns) >= 8)
    failures = [r for r in mine if r.levelno == logging.ERROR]
    assert len(failures) == 1 and failures[0].exc_info and "the database went away" in str(failures[0].exc_info[1])
    recovered = [r.getMessage() for r in mine if r.levelno == logging.WARNING]
    assert recovered == [f"background loop {name!r} works again after 5 failed turns"]


def test_a_database_error_does_not_carry_the_statements_values(app):
    secret = "the inspector's frank words about the custody suite"
    with pytest.raises(DBAPIError) as err:
        db.session.execute(text("SELECT no_such_column FROM posts WHERE body = :body"), {"body": secret})
    db.session.rollback()
    assert "no_such_column" in str(err.value)  # the statement is still there to debug it
    assert secret not in str(err.value) and "hidden due to hide_parameters" in str(err.value)


def test_a_loop_that_cannot_reach_the_database_logs_one_line_not_a_traceback(app, caplog):
    """While the database is down the requests answer 503 and log one line per cause; a loop's turn says the
    same in one line (an operator reading the log during an outage does not need a traceback per loop)."""
    turns = []

    def turn(_app):
        turns.append(1)
        if len(turns) <= 3:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    name = "test: database down"
    mine = _run_loop(app, caplog, name, turn, lambda: len(turns) >= 5)
    errors = [r for r in mine if r.levelno == logging.ERROR]
    assert len(errors) == 1 and not errors[0].exc_info, errors
    assert "cannot reach the database" in errors[0].getMessage() and "connection refused" in errors[0].getMessage()
    assert [r.getMessage() for r in mine if r.levelno == logging.WARNING] == [
        f"background loop {name!r} works again after 3 failed turns"]
