"""`flask serve`: run the production server (gunicorn, gevent worker) as a
child process and supervise it; later also the media worker.

Why a child process: gevent must patch the standard library before the app is
imported, and the media worker needs its own asyncio loop in its own process.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from collab import metrics

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
CONNECT_TIMEOUT = 10  # seconds the start-up check waits for the database server


def database_problem(url: str) -> str | None:
    """Why Collab cannot serve this database, as one sentence naming the setting, or None.

    Checked before anything is started: a server that says "Collab is running" and then answers
    every request with an error sends the operator looking in the wrong place."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines would bury the one sentence
    parsed = make_url(url)
    args = {"connect_timeout": CONNECT_TIMEOUT} if parsed.get_backend_name() == "postgresql" else {}
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return (f"the SQLite database of COLLAB_DATABASE_URL ({parsed.database}) does not exist yet: "
                "run `flask --app wsgi db upgrade` to create it.")
    engine = create_engine(url, poolclass=pool.NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
        return (f"the database of COLLAB_DATABASE_URL ({parsed.render_as_string(hide_password=True)}) does not "
                f"answer ({reason}): check that the database server is running and the setting is right.")
    finally:
        engine.dispose()
    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    if current != heads:
        state = "has no tables yet" if not current else "has not been migrated to this version of Collab"
        return (f"the database of COLLAB_DATABASE_URL {state}: run `flask --app wsgi db upgrade`, "
                "then start the server again.")
    return None


def preflight(config: dict) -> None:
    """Refuse to start, with one sentence and no traceback, on a database Collab cannot use."""
    problem = database_problem(config["DATABASE_URL"])
    if problem:
        sys.exit(f"Collab cannot start: {problem}")


def gunicorn_command(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gevent",
        "--workers", str(workers),
        "--worker-connections", "10000",
        "--bind", f"{host}:{port}",
        "--graceful-timeout", "5",
        "--timeout", "60",
        # Without the flag gunicorn skips access logging altogether (to /dev/null it still formats each line).
        *(["--access-logfile", "-"] if os.environ.get("COLLAB_ACCESS_LOG") else []),
        "wsgi:app",
    ]


class SearchWorker:
    """`flask search worker`: applies index changes in its own process (restarted if it dies),
    so the web worker only writes the outbox and never spends request time indexing."""

    def __init__(self, env: dict) -> None:
        self.env = dict(env, COLLAB_SEARCH_INDEXING="on")
        self.proc: subprocess.Popen | None = None
        self.next_start = 0.0
        self.failures = 0

    def start(self) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "search", "worker"],
                                     cwd=ROOT, env=self.env)

    def poll(self) -> None:
        if self.proc is None or self.proc.poll() is None:
            return
        now = time.monotonic()
        if not self.next_start:
            self.failures = self.failures + 1 if now - self.started < 10 else 0
            delay = min(30.0, 0.5 * 2 ** min(self.failures, 6))
            print(f"search worker exited with code {self.proc.returncode}; restarting in {delay:.1f}s",
                  file=sys.stderr, flush=True)
            self.next_start = now + delay
        if now >= self.next_start:
            self.next_start = 0.0
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run(host: str, port: int, workers: int, public_url: str, data_dir: str | None = None) -> int:
    env = dict(os.environ, COLLAB_ASYNC_MODE="gevent", COLLAB_HOST=host, COLLAB_PORT=str(port))
    if data_dir:  # absolute, so every child (and the media worker's state file, media/supervisor.py) agrees
        env["COLLAB_DATA_DIR"] = data_dir
    env.setdefault("COLLAB_PUBLIC_URL", public_url)
    env.pop("FLASK_RUN_FROM_CLI", None)
    # /metrics adds up every process's figures: an emptied folder under the data folder (collab/metrics.py)
    metrics.prepare_multiprocess_dir(env, Path(env.get("COLLAB_DATA_DIR") or "instance").resolve(), port)
    indexer = SearchWorker(env)
    indexer.start()
    env["COLLAB_SEARCH_INDEXING"] = "off"  # the web processes only write the outbox
    web = subprocess.Popen(gunicorn_command(host, port, workers), cwd=ROOT, env=env)
    from media.supervisor import (  # meetings: the embedded media worker
        EmbeddedWorker,
        embedded_enabled,
    )

    media = EmbeddedWorker(env) if embedded_enabled(env) else None
    if media:
        media.start()
    print(f"Collab is running at {env['COLLAB_PUBLIC_URL']}  (press Ctrl+C to stop)", flush=True)

    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if web.poll() is None:
            web.send_signal(signal.SIGTERM)
        if media:
            media.stop()
        indexer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while True:
        code = web.poll()
        if code is not None:
            if media:
                media.stop()
            indexer.stop()
            return 0 if stopping else code
        if media:
            media.poll()
        if not stopping:
            indexer.poll()
        time.sleep(0.2)
