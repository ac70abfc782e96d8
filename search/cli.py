"""`flask --app wsgi search rebuild|status|sweep`."""
from __future__ import annotations

import os
import signal
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup

from collab.extensions import db
from search import documents
from search.app_state import state
from search.indexer import outbox_size, rebuild

search_cli = AppGroup("search", help="The full-text search index.")


@search_cli.command("rebuild")
@click.option("--procs", type=int, default=None, help="Indexing processes for Whoosh (default: CPU count, max 4).")
@click.option("--background", is_flag=True, help="Quietly do nothing if another rebuild runs or the index is fine.")
def rebuild_cmd(procs: int | None, background: bool) -> None:
    """Rebuild the index from the database (searching keeps working meanwhile)."""
    procs = procs or min(4, os.cpu_count() or 1)
    if background:
        n = rebuild(current_app, procs=procs, background=True)
        click.echo(f"search rebuild: {n} posts" if n >= 0 else "search rebuild: another rebuild is running")
        return
    total = documents.count_indexable()
    backend = state().backend.name
    click.echo(f"Rebuilding the {backend} search index: {total} posts.")
    with click.progressbar(length=total, label="Indexing", file=sys.stderr, show_pos=True,
                           show_percent=True, show_eta=True) as bar:
        n = rebuild(current_app, progress=bar.update, procs=procs)
    click.echo(f"Indexed {n} posts.")


@search_cli.command("status")
def status_cmd() -> None:
    """Index health, documents, outbox rows waiting."""
    st = state()
    h = st.backend.health()
    click.echo(f"backend: {st.backend.name}")
    click.echo(f"health: {'ok' if h.ok else h.reason}")
    click.echo(f"documents: {h.documents}")
    click.echo(f"outbox: {outbox_size()}")
    click.echo(f"rebuilding: {'yes' if st.indexer.rebuilding() else 'no'}")
    for line in st.backend.fast_path_report():
        click.echo(line)


@search_cli.command("sweep")
def sweep_cmd() -> None:
    """Apply outbox rows left behind (what the background sweep does)."""
    st = state()
    st.indexer.check()
    n = st.indexer.drain()
    click.echo(f"Applied {n} outbox rows.")


@search_cli.command("worker")
@click.option("--interval", default=0.2, show_default=True, help="Seconds between looks at the outbox when idle.")
def worker_cmd(interval: float) -> None:
    """Apply index changes as they are committed, in a process of their own.

    `flask serve` runs one beside the web server (which then only writes the
    outbox), so indexing never takes CPU from requests in the web worker."""
    stop = False

    def _stop(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    indexer = state().indexer
    indexer.check()
    checked = time.monotonic()
    while not stop:
        applied = indexer.drain()
        db.session.remove()
        if time.monotonic() - checked > float(current_app.config.get("SEARCH_SWEEP_SECONDS") or 30):
            indexer.check()  # a broken or missing index is rebuilt (in the background when large)
            checked = time.monotonic()
        if not applied:
            time.sleep(interval)
