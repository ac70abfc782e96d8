"""The command line: `users create` (password on stdin), `tokens create`,
`demo` and `db upgrade`, through Flask's CLI runner and, once, as the real
`flask --app wsgi` processes an administrator types."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from auth.models import ApiToken, Organisation, User
from collab.extensions import db
from tests.conftest import PASSWORD, PG_URL, bearer, make_test_app

ROOT = Path(__file__).resolve().parent.parent


def count(model, *where) -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def empty_db_url(backend, tmp_path):
    """A database with no schema at all, on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"collab_cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# -- users create -----------------------------------------------------------------------

def test_users_create_reads_password_from_stdin(app, runner, client):
    r = runner.invoke(args=["users", "create", "--email", "Chief@Example.org", "--name", "Chief Admin", "--admin",
                            "--org", "Kent Police"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "Created account" in r.output and PASSWORD not in r.output
    user = db.session.scalar(select(User).where(User.email == "chief@example.org"))
    assert user.role == "admin" and user.organisation.name == "Kent Police"
    assert user.password_hash.startswith("$argon2id$")
    assert client.post("/login", data={"email": "chief@example.org", "password": PASSWORD}).status_code == 302

    # An existing organisation is reused, not duplicated.
    r = runner.invoke(args=["users", "create", "--email", "iag@example.org", "--name", "Ivy", "--kind", "iag",
                            "--org", "Kent Police"], input=PASSWORD + "\r\n")
    assert r.exit_code == 0, r.output
    assert count(Organisation) == 1
    assert db.session.scalar(select(User.kind).where(User.email == "iag@example.org")) == "iag"


@pytest.mark.parametrize("password,message", [
    ("short", "at least 12 characters"),
    ("iloveyou1234", "too common"),
    ("", "at least 12 characters"),
])
def test_users_create_refuses_bad_passwords_and_creates_nothing(app, runner, password, message):
    r = runner.invoke(args=["users", "create", "--email", "a@example.org", "--name", "A", "--org", "New Force"],
                      input=password + "\n")
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert count(User) == 0
    assert count(Organisation) == 0  # not even the organisation it named


def test_users_create_other_bad_input(app, runner, make):
    make.user(email="taken@example.org")
    for args, message in [
        (["--email", "not-an-address", "--name", "A"], "Email must be an address"),
        (["--email", "taken@example.org", "--name", "A"], "already exists"),
        (["--email", "b@example.org", "--name", "   "], "Name is required"),
    ]:
        r = runner.invoke(args=["users", "create", *args, "--org", "Another Force"], input=PASSWORD + "\n")
        assert r.exit_code != 0 and message in r.output, r.output
    assert count(User) == 1
    assert count(Organisation) == 0


# -- tokens create ------------------------------------------------------------------------

def test_tokens_create_prints_token_alone_on_last_line(app, runner, make):
    user = make.user()
    r = runner.invoke(args=["tokens", "create", "--email", user.email, "--name", "monitoring"])
    assert r.exit_code == 0, r.output
    lines = r.output.rstrip("\n").split("\n")
    token = lines[-1]
    assert token == token.strip() and " " not in token and token.startswith("collab_")
    stored = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert stored.name == "monitoring" and token not in (stored.token_hash, stored.prefix)
    me = app.test_client().get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200 and me.json["email"] == user.email

    r = runner.invoke(args=["tokens", "create", "--email", "nobody@example.org"])
    assert r.exit_code != 0 and "No active account" in r.output
    assert count(ApiToken) == 1


def test_tokens_create_refuses_deactivated_accounts(app, runner, make):
    from auth import services

    admin, user = make.user(admin=True), make.user()
    services.set_active(admin, user.id, False)
    r = runner.invoke(args=["tokens", "create", "--email", user.email])
    assert r.exit_code != 0 and "No active account" in r.output
    assert count(ApiToken) == 0


# -- demo -------------------------------------------------------------------------------------

def test_demo_fills_an_empty_install_and_refuses_a_second_time(app, runner, client):
    from rooms.models import Post, Room, Thread

    r = runner.invoke(args=["demo", "--password", PASSWORD])
    assert r.exit_code == 0, r.output
    assert "admin@demo.collab" in r.output

    orgs = {o.kind for o in db.session.scalars(select(Organisation))}
    forces = count(Organisation, Organisation.kind == "force")
    assert forces >= 2 and "pcc" in orgs
    assert count(User, User.kind == "iag") >= 2
    assert count(User, User.role == "admin") >= 1
    visibilities = set(db.session.scalars(select(Room.visibility)))
    assert visibilities == {"private", "organisation", "national"}
    assert count(Thread) >= 4
    assert db.session.scalar(select(func.max(Post.depth))) >= 3  # nested replies

    # The demo accounts sign in with the given password and see a living site.
    assert client.post("/login", data={"email": "admin@demo.collab", "password": PASSWORD}).status_code == 302
    page = client.get("/rooms").get_data(as_text=True)
    assert "National: stop and search scrutiny" in page

    before = (count(Room), count(Post), count(User))
    r = runner.invoke(args=["demo", "--password", PASSWORD])
    assert r.exit_code != 0 and "only be loaded into an install without rooms" in r.output
    assert (count(Room), count(Post), count(User)) == before


def test_demo_refuses_an_install_in_use(app, runner, make):
    owner = make.user()
    make.room(owner)
    users = count(User)
    r = runner.invoke(args=["demo"])
    assert r.exit_code != 0
    assert count(User) == users


# -- db upgrade ---------------------------------------------------------------------------------

def test_db_upgrade_is_idempotent(tmp_path, empty_db_url):
    fresh = make_test_app(tmp_path / "fresh", empty_db_url)
    runner = fresh.test_cli_runner()
    with fresh.app_context():
        for _ in range(2):
            r = runner.invoke(args=["db", "upgrade"])
            assert r.exit_code == 0, r.output
            assert "up to date" in r.output
        db.session.remove()
    db.engine.dispose()
    engine = create_engine(empty_db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"users", "organisations", "rooms", "threads", "posts", "attachments", "api_tokens",
                "invitations", "alembic_version"} <= tables
        with engine.connect() as conn:
            versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()
    from alembic.script import ScriptDirectory

    from collab.cli import alembic_config

    assert sorted(versions) == sorted(ScriptDirectory.from_config(alembic_config(empty_db_url)).get_heads())


# -- the real commands ----------------------------------------------------------------------------

def test_real_flask_commands(tmp_path):
    """What an administrator types on a fresh install: migrate, create an account with the
    password piped in, make a token, and use it. (Each process takes seconds to start, so this
    runs once, on the embedded SQLite default; the tests above cover both databases.)"""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
    env.update(COLLAB_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]

    def run(*args, stdin: str = ""):
        return subprocess.run([*flask, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=120, check=False)

    p = run("db", "upgrade")
    assert p.returncode == 0, p.stderr
    assert (data / "collab.db").exists() and (data / "secret_key").exists()
    p = run("users", "create", "--email", "ops@example.org", "--name", "Ops Admin", "--admin", stdin=PASSWORD + "\n")
    assert p.returncode == 0, p.stderr
    p = run("tokens", "create", "--email", "ops@example.org")
    assert p.returncode == 0, p.stderr
    token = p.stdout.rstrip("\n").split("\n")[-1]

    app = make_test_app(tmp_path / "check", f"sqlite:///{data / 'collab.db'}", DATA_DIR=str(data))
    with app.app_context():
        r = app.test_client().get("/api/v1/me", headers=bearer(token))
        assert r.status_code == 200 and r.json["email"] == "ops@example.org"
        db.session.remove()
    db.engine.dispose()
