"""Upgrades (issue 17): an install at ANY earlier schema version, with data in it, upgrades to this version; every
migration downgrades one step with data in it; and the schema an upgrade arrives at is the one a fresh install gets.

How: a database at the current version is filled through the services (the demo, plus a meeting, an idea, a poll, a
Q&A session and an invitation, so the later migrations have rows to change). Then the migrations are undone one at
a time, newest first (each downgrade runs over real rows); after each, a copy of the database as it stands (an
install of that older version, with the data that version can hold) is upgraded to the current version and compared
with a fresh install: same tables and columns, and the accounts and posts are all still there.
"""
from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from auth import services as accounts
from auth.models import User
from collab import demo
from collab.extensions import db
from collab.schema import alembic_config, upgrade_database
from rooms import services as rooms
from rooms.ideas.services import create_idea, update_settings
from rooms.meetings.schedule import schedule_meeting
from rooms.polls.services import create_poll
from rooms.qa.services import create_session
from tests.conftest import PASSWORD, PG_URL, make_test_app


class Databases:
    """Empty databases on one backend, made and dropped by the test."""

    def __init__(self, backend: str, folder) -> None:
        self.backend, self.folder, self.made = backend, folder, []
        self.admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT") if backend == "postgres" else None

    def new(self, copy_of: str | None = None) -> str:
        name = f"collab_mig_{uuid.uuid4().hex[:10]}"
        if self.backend == "sqlite":
            path = self.folder / f"{name}.db"
            if copy_of:  # through SQLite's backup API: a file copy would miss what is still in the WAL
                src, dst = sqlite3.connect(copy_of.removeprefix("sqlite:///")), sqlite3.connect(path)
                src.backup(dst)
                src.close()
                dst.close()
            return f"sqlite:///{path}"
        with self.admin.connect() as conn:
            template = ""
            if copy_of:  # a template must have no sessions: end the ones alembic's and the app's pools keep open
                source = copy_of.rsplit("/", 1)[1]
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                             {"d": source})
                template = f' TEMPLATE "{source}"'
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        self.made.append(name)
        return PG_URL.rsplit("/", 1)[0] + "/" + name

    def drop(self, url: str) -> None:
        if self.admin is None:
            Path(url.removeprefix("sqlite:///")).unlink()
            return
        name = url.rsplit("/", 1)[1]
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.made.remove(name)

    def drop_all(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def _shape(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}
    finally:
        engine.dispose()


def _scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def _versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def _fill(url: str, tmp_path) -> None:
    app = make_test_app(tmp_path / "fill", url)
    with app.app_context():
        demo.load(PASSWORD)
        admin = db.session.scalar(select(User).where(User.email == "admin@demo.collab"))
        room = rooms.create_room(admin, name="Scrutiny panel", visibility="private")
        soon = datetime.now(timezone.utc) + timedelta(days=3)
        meeting = schedule_meeting(admin, room.id, title="Quarterly scrutiny", agenda="Stop and search",
                                   starts_at=soon.isoformat(), ends_at=(soon + timedelta(hours=1)).isoformat())
        update_settings(admin, room.id, enabled=True, vote_budget=2, judge_on_merit=False)
        create_idea(admin, room.id, title="Shared rota", body="One rota for community meetings.")
        create_poll(admin, room.id, question="Which evening suits?", kind="single", options=["Tuesday", "Thursday"],
                    meeting_id=meeting.id)
        create_session(admin, room.id, title="Ask the superintendent", starts_at=soon.isoformat(),
                       meeting_id=meeting.id)
        accounts.create_invitation(admin, email="new.volunteer@example.org", kind="iag", room_id=room.id,
                                   room_role="member")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def databases(backend, tmp_path):
    dbs = Databases(backend, tmp_path)
    yield dbs
    dbs.drop_all()


def test_every_earlier_version_with_data_upgrades_and_every_migration_downgrades(databases, tmp_path):
    fresh = databases.new()
    upgrade_database(fresh)
    head_shape, heads = _shape(fresh), _versions(fresh)

    url = databases.new()
    upgrade_database(url)
    _fill(url, tmp_path)
    users, posts = _scalar(url, "SELECT count(*) FROM users"), _scalar(url, "SELECT count(*) FROM posts")
    assert users >= 10 and posts >= 15

    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    newest_first = list(script.walk_revisions())
    assert len(newest_first) >= 20
    checked = []
    for rev in newest_first:
        # Undo this migration alone (it is a leaf now: everything built on it was undone before it).
        if rev.down_revision is None:
            target = "base"
        elif isinstance(rev.down_revision, tuple):  # a merge: back to its first parent, the other stays applied
            target = rev.down_revision[0]
        else:
            target = f"{rev.revision}@-1"
        command.downgrade(cfg, target)
        assert rev.revision not in _versions(url) if target != "base" else True
        if target == "base":
            break
        # An install of this older version, with its data, upgrades to the current one.
        older = databases.new(copy_of=url)
        upgrade_database(older)
        assert _versions(older) == heads, rev.revision
        assert _shape(older) == head_shape, f"upgrading from below {rev.revision} gives a different schema"
        assert _scalar(older, "SELECT count(*) FROM users") == users
        assert _scalar(older, "SELECT count(*) FROM posts") == posts
        checked.append(rev.revision)
        databases.drop(older)
    assert len(checked) == len(newest_first) - 1
    assert set(_shape(url)) <= {"alembic_version"}  # all the way down
