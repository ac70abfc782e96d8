"""Closing polls whose closing time has come: a loop of collab/tasks.py in each server process
(every 30 seconds), or `flask --app wsgi polls close-due` from cron; tests call
`services.close_due` directly. Each poll is closed by one conditional UPDATE, so several processes
never close one twice."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from collab import tasks
from rooms.polls import services

EVERY = 30.0


@tasks.loop("poll closing", first=lambda app: 5.0, every=lambda app: EVERY,
            when=lambda app: app.config.get("POLL_JOBS_LOOP", tasks.server_process(app)))
def _turn(app: Flask) -> None:
    services.close_due()


polls_cli = AppGroup("polls", help="Polls: close those whose closing time has come (for cron).")


@polls_cli.command("close-due")
def close_due_command() -> None:
    """Close the polls whose closing time has passed (`flask serve` does this too)."""
    n = services.close_due()
    click.echo(f"Closed {n} poll{'s' if n != 1 else ''}.")
