"""Command-line interface: `flask --app wsgi <command>`."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from collab.errors import ServiceError
from collab.schema import alembic_config, upgrade_database  # noqa: F401  (tests and benches import them here)
from rooms.meetings.jobs import meetings_cli
from rooms.polls.jobs import polls_cli
from rooms.qa.jobs import qa_cli

db_cli = AppGroup("db", help="Database schema (made only by migrations).")


@db_cli.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    upgrade_database(current_app.config["DATABASE_URL"], revision)
    click.echo("Database is up to date.")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from alembic import command  # imported when the command runs: the CLI starts fast

    command.downgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)


@db_cli.command("current")
def db_current() -> None:
    from alembic import command  # imported when the command runs: the CLI starts fast

    command.current(alembic_config(current_app.config["DATABASE_URL"]))


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers only)."""
    from alembic import command  # imported when the command runs: the CLI starts fast

    command.revision(alembic_config(current_app.config["DATABASE_URL"]), message=message, autogenerate=True)


users_cli = AppGroup("users", help="Accounts.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--admin", is_flag=True, help="Make the account a site administrator.")
@click.option("--org", "org_name", default=None, help="Organisation name (created if new).")
@click.option("--kind", type=click.Choice(["staff", "iag", "guest"]), default="staff", show_default=True)
@click.option("--job-title", default=None)
def users_create(email: str, name: str, admin: bool, org_name: str | None, kind: str, job_title: str | None) -> None:
    """Create an account; the password is read from standard input."""
    from auth import services  # imported when the command runs: the CLI starts fast

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = services.create_user(email=email, name=name, password=password, kind=kind,
                                    role="admin" if admin else "member", organisation_name=org_name,
                                    job_title=job_title)
    except ServiceError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"Created account {user.id} for {user.email}.")


tokens_cli = AppGroup("tokens", help="Personal access tokens.")


@tokens_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", default="cli", show_default=True)
def tokens_create(email: str, name: str) -> None:
    """Create a token for an account and print it alone on the last line."""
    from auth import services  # imported when the command runs: the CLI starts fast

    user = services.find_user_by_email(email)
    if user is None or not user.active:
        raise click.ClickException(f"No active account has the e-mail address {email!r}.")
    try:
        _, raw = services.create_token(user, name)
    except ServiceError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"Token {name!r} created for {user.email}. It is shown only once:")
    click.echo(raw)


@click.command("serve")
@click.option("--host", default=None, help="Defaults to COLLAB_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Defaults to COLLAB_PORT (5000).")
@click.option("--workers", default=None, type=int, help="Web processes (default COLLAB_WORKERS, 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve Collab the way production runs: gunicorn with a gevent worker."""
    from collab.serve import preflight, run  # imported when the command runs: the CLI starts fast

    cfg = current_app.config
    preflight(cfg)  # unreachable or unmigrated database: one sentence, nothing started
    sys.exit(run(host or cfg["HOST"], port or cfg["PORT"], workers or cfg["WORKERS"], cfg["PUBLIC_URL"],
                 data_dir=cfg["DATA_DIR"]))


@click.command("demo")
@click.option("--password", default=None, help="Password for every demo account (default: printed).")
def demo(password: str | None) -> None:
    """Fill an empty install with a small, realistic demo."""
    from collab.demo import load  # imported when the command runs: the CLI starts fast

    try:
        summary = load(password)
    except ServiceError as err:
        raise click.ClickException(err.message) from None
    click.echo(summary)


@click.command("media")
@click.option("--host", default=None, help="Signalling address (default COLLAB_MEDIA_HOST or COLLAB_HOST).")
@click.option("--port", default=None, type=int, help="Signalling port (default COLLAB_MEDIA_PORT or COLLAB_PORT + 1).")
@click.option("--processes", default=None, type=int, help="Worker processes (default COLLAB_MEDIA_PROCESSES).")
@click.option("--self-test", is_flag=True, help="Only check the aiortc internals the worker relies on.")
def media_command(host, port, processes, self_test) -> None:
    """Run a media worker for meetings (the same as `python -m media`)."""
    from media.__main__ import main  # here, not at the top: aiortc loads only for this command

    args = []
    if host:
        args += ["--host", host]
    if port:
        args += ["--port", str(port)]
    if processes:
        args += ["--processes", str(processes)]
    if self_test:
        args.append("--self-test")
    sys.exit(main(args))


def init_app(app: Flask) -> None:
    from rooms.retention import retention_cli  # imported when the command runs: the CLI starts fast
    from search.cli import search_cli  # imported when the command runs: the CLI starts fast
    from collab.backup_cli import backup_command, restore_command  # likewise

    for cmd in (db_cli, users_cli, tokens_cli, serve, demo, search_cli, retention_cli, meetings_cli, polls_cli, qa_cli,
                media_command, backup_command, restore_command):
        app.cli.add_command(cmd)
