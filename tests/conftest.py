"""Fixtures: a real app on a real database (SQLite always, PostgreSQL too when
COLLAB_TEST_POSTGRES_URL is set), the Flask test client, the CLI runner and
helpers that make accounts and sign them in."""
from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from collab import create_app
from collab.cli import upgrade_database
from collab.db import Base
from tests.file_order import longest_first
from tests.live_support import PASSWORD, SmtpSink  # noqa: F401  (PASSWORD: many tests import it from here)

# `make test` runs two pytest processes side by side (pytest-xdist, tests/run.py). Each gets a temporary folder of
# its own, for itself and every program it starts (servers, LibreOffice, Chromium): code that finds its own leftovers
# there by name (deck conversions are named by deck id, which both processes' databases number from 1) must not see
# the other process's.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    _TMP = Path(tempfile.mkdtemp(prefix=f"collab-tests-{_WORKER}-", dir=tempfile.gettempdir()))
    _TMP.chmod(0o755)  # as /tmp lets them: other accounts (postgres, for a test's own cluster) reach folders in it
    os.environ["TMPDIR"] = tempfile.tempdir = str(_TMP)

PG_URL = os.environ.get("COLLAB_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
_seq = itertools.count(1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file, copied for each test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "collab.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database():
    """A fresh PostgreSQL database for this run, migrated once."""
    if not PG_URL:
        yield None
        return
    name = f"collab_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    upgrade_database(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
    admin.dispose()


def _truncate(url: str) -> None:
    """Empty every table. Connections a previous test left behind (background
    threads of its app: indexer, digests) are ended first, so TRUNCATE's
    exclusive locks never wait on, or deadlock with, them."""
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            break
        except OperationalError as err:
            # Such a thread may connect again between the two statements (its pool replaces the ended
            # connection) and take a lock TRUNCATE then deadlocks with; PostgreSQL aborts one of the two.
            if "deadlock detected" not in str(err) or attempt == 4:
                raise
    engine.dispose()


def make_test_app(tmp_path: Path, db_url: str, **extra):
    config = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": db_url,
        "PUBLIC_URL": "http://localhost",
        "WTF_CSRF_ENABLED": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 1024,
        "ARGON2_PARALLELISM": 1,
        "REDIS_URL": None,
        "SMTP_HOST": None,
        "SERVER_NAME": "localhost",
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path, sqlite_template, pg_database) -> str:
    if backend == "postgres":
        _truncate(pg_database)
        return pg_database
    path = tmp_path / "collab.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config() -> dict:
    """Override in a test module to change settings."""
    return {}


class RequestClient(FlaskClient):
    """Each request starts with an empty `g`, as in production. The `app` fixture keeps one app
    context pushed for the whole test and Flask reuses it for requests, so without this `g` (and
    with it Flask-Login's signed-in user) would leak from one request, and one client, to the next."""

    def open(self, *args, **kwargs):
        from flask import g

        for name in list(g):
            g.pop(name, None)
        return super().open(*args, **kwargs)


@pytest.fixture
def app(tmp_path, db_url, app_config):
    app = make_test_app(tmp_path, db_url, **app_config)
    app.test_client_class = RequestClient
    with app.app_context():
        yield app
    from collab.extensions import db

    db.session.remove()
    db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Factory:
    """Makes organisations, accounts, rooms and tokens through the real services."""

    def __init__(self, app):
        self.app = app

    def org(self, name: str | None = None, kind: str = "force"):
        from auth.models import Organisation
        from collab.extensions import db

        db.begin_write()
        org = Organisation(name=name or f"Force {next(_seq)}", kind=kind)
        db.session.add(org)
        db.session.commit()
        return org

    def user(self, *, name: str | None = None, kind: str = "staff", admin: bool = False, org=None,
             email: str | None = None, org_admin: bool = False):
        from auth import services
        from collab.extensions import db

        n = next(_seq)
        user = services.create_user(email=email or f"user{n}@example.org", name=name or f"User {n}",
                                    password=PASSWORD, kind=kind, role="admin" if admin else "member",
                                    organisation_id=org.id if org else None, org_admin=org_admin)
        return db.session.merge(user)

    def token(self, user) -> str:
        from auth import services

        return services.create_token(user, "test")[1]

    def room(self, owner, *, visibility: str = "private", name: str | None = None, members=(), **roles):
        from rooms import services

        room = services.create_room(owner, name=name or f"Room {next(_seq)}", visibility=visibility)
        for m in members:
            services.add_member(owner, room.id, user_id=m.id, role="member")
        for role, users in roles.items():
            for u in users if isinstance(users, (list, tuple)) else [users]:
                services.add_member(owner, room.id, user_id=u.id, role=role)
        return room

    def thread(self, author, room, *, title: str = "A thread", body: str = "Opening post"):
        from rooms import posts as room_posts

        return room_posts.create_thread(author, room.id, title=title, body=body)

    def reply(self, author, thread, body: str = "A reply", parent=None):
        from rooms import posts as room_posts

        return room_posts.create_post(author, thread.id, body=body, parent_id=parent.id if parent else None)[0]


@pytest.fixture
def make(app) -> Factory:
    return Factory(app)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, user_or_email, password: str = PASSWORD):
        email = getattr(user_or_email, "email", user_or_email)
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def smtp():
    """A real SMTP server on loopback that keeps what it receives (tests/live_support.py SmtpSink). Point the
    app at it with `app_config`: {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port}."""
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    longest_first(items)   # tests/file_order.py: why (tests/run.py turns xdist's own reordering off)


# -- ending the run ------------------------------------------------------------------------------------

_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """Once everything is reported, end the process with pytest's status. A test that failed halfway
    through a meeting can leave a non-daemon thread of a third-party library behind (aiortc's, a
    Socket.IO client's), and the interpreter would wait for it at exit for ever: one run on a fresh
    machine sat for 50 minutes after printing its summary. The failure is already reported; the run
    must end."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1] if _EXIT_STATUS else 1)
