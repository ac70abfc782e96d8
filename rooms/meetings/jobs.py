"""The meetings' background jobs: reminders before a meeting starts, and pre-read
decks and recordings that a stopped server left half-converted or half-composed.

They run in three ways, all calling the same two functions:
- inside the server (`flask --app wsgi serve`): a loop of collab/tasks.py in each
  web process, which resumes stuck decks at once and then checks every minute;
- from cron or by hand: `flask --app wsgi meetings jobs` (both), `meetings remind`;
- in tests: call `run_once` (or the functions) directly, no server needed.
Each reminder and each deck is claimed with one conditional UPDATE, so several
processes (or a cron job beside the server) never send or convert anything twice.
"""
from __future__ import annotations

import logging

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from collab import tasks
from collab.extensions import db
from rooms.meetings import conversion, recording_processing, schedule

log = logging.getLogger(__name__)

FIRST_RUN = 2.0      # seconds after the process starts
EVERY = 60.0         # seconds between runs


def run_once(app: Flask | None = None, *, background: bool = True) -> dict[str, int]:
    """Resume stuck decks and send the reminders that are due; counts of each."""
    app = app or current_app._get_current_object()
    out = {"decks": 0, "reminders": 0, "recordings": 0}
    try:
        out["decks"] = len(conversion.resume_stuck(app, background=background))
    except Exception:
        log.exception("resuming stuck decks failed")
        db.session.rollback()
    try:
        out["recordings"] = len(recording_processing.resume_stuck(app, background=background))
    except Exception:
        log.exception("resuming stuck recordings failed")
        db.session.rollback()
    try:
        out["reminders"] = schedule.send_due_reminders()
    except Exception:
        log.exception("meeting reminders failed")
        db.session.rollback()
    return out


@tasks.loop("meeting jobs", first=lambda app: FIRST_RUN, every=lambda app: EVERY,
            when=lambda app: app.config.get("MEETING_JOBS_LOOP", tasks.server_process(app)))
def _turn(app: Flask) -> None:
    run_once(app)


meetings_cli = AppGroup("meetings", help="Scheduled meetings: reminders and pre-read decks (for cron).")


@meetings_cli.command("remind")
def remind_command() -> None:
    """Send the reminders of meetings starting within 30 minutes (each once; `flask serve` does this too)."""
    n = schedule.send_due_reminders()
    click.echo(f"Sent {n} reminder{'s' if n != 1 else ''}.")


@meetings_cli.command("jobs")
def jobs_command() -> None:
    """Send due reminders, and convert again the decks a stopped server left half-done (in the foreground)."""
    out = run_once(background=False)
    click.echo(f"Resumed {out['decks']} deck{'s' if out['decks'] != 1 else ''}; "
               f"sent {out['reminders']} reminder{'s' if out['reminders'] != 1 else ''}.")
