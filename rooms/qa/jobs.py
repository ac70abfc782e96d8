"""Reminding the owners of unanswered questions once their due date has come (questions left open when
a Q&A session ended): a loop of collab/tasks.py in each server process (every 10 minutes), or
`flask --app wsgi qa remind` from cron; tests call `hosting.remind_due` directly. Each reminder is
claimed by one conditional UPDATE, so several processes never send one twice."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from collab import tasks
from rooms.qa import hosting

EVERY = 600.0


@tasks.loop("Q&A reminders", first=lambda app: 30.0, every=lambda app: EVERY,
            when=lambda app: app.config.get("QA_JOBS_LOOP", tasks.server_process(app)))
def _turn(app: Flask) -> None:
    hosting.remind_due()


qa_cli = AppGroup("qa", help="Q&A sessions: remind owners of unanswered questions that are due (for cron).")


@qa_cli.command("remind")
def remind_command() -> None:
    """Remind the owners of unanswered questions whose due date has come (`flask serve` does this too)."""
    n = hosting.remind_due()
    click.echo(f"Sent {n} reminder{'s' if n != 1 else ''}.")
