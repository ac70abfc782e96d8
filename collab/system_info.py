"""What the administrators' System page shows (collab/monitoring_views.py): versions, uptime, the
readiness checks, the search index, waiting jobs, workers, disk use and the last backup.

Why gathered here and not in the view: the page, its tests and anything else that wants the same
facts (a support bundle, say) read one dictionary. Each fact is read with a bound (the checks'
timeouts, short worker calls); a fact that cannot be read says so instead of failing the page.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis
from flask import Flask
from sqlalchemy import func, select, text

from collab import __version__, health
from collab.extensions import db
from rooms.meetings import media_control
from rooms.meetings.conversion import ACTIVE as DECK_ACTIVE
from rooms.meetings.models import Deck, Meeting
from rooms.meetings.services import OPEN_HOURS
from search.indexer import outbox_size

ROOT = Path(__file__).resolve().parent.parent
STARTED = time.time()          # this process's start (the app module is imported once per process)
WORKER_TIMEOUT = 1.5           # seconds a media worker has to answer its signed /status


def collab_version() -> str:
    """`git describe` of the checkout when it is one (a deployment from git), else the package version."""
    try:
        out = subprocess.run(["git", "describe", "--tags", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                             text=True, timeout=2, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__} ({out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def database_version() -> str:
    name = db.engine.dialect.name
    if name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    try:
        return "PostgreSQL " + str(db.session.execute(text("SHOW server_version")).scalar()).split()[0]
    finally:
        db.session.rollback()


def redis_version(app: Flask) -> str:
    url = app.config.get("REDIS_URL")
    if not url:
        return "not configured"
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return "Redis " + str(client.info("server").get("redis_version", "?"))
    except redis.RedisError as err:
        return f"unreachable ({type(err).__name__})"
    finally:
        client.close()


def worker_status(app: Flask, ws_url: str) -> dict | None:
    """A media worker's own figures (its signed /status), or None when it does not answer."""
    try:
        url = media_control.status_url(ws_url, app.config["SECRET_KEY"])
        with urllib.request.urlopen(url, timeout=WORKER_TIMEOUT) as resp:
            return json.loads(resp.read(65536))
    except Exception:  # noqa: BLE001 - not answering is what the page shows
        return None


def last_backup(data_dir: str) -> dict | None:
    """`<data>/backups/last.json`, written by `flask backup`: {"finished_at", "path", "bytes"}; None if absent
    or unreadable (a half-written file is not a backup)."""
    path = Path(data_dir) / "backups" / "last.json"
    try:
        raw = json.loads(path.read_text()[:10_000])
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    return {"finished_at": str(raw.get("finished_at", ""))[:40], "path": str(raw.get("path", ""))[:500],
            "bytes": raw["bytes"] if isinstance(raw.get("bytes"), int) else None}


def folder_bytes(path: Path, limit: int = 20_000) -> int | None:
    """Bytes under `path` (None when it has more than `limit` files: too many to count on a page view)."""
    total, seen = 0, 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            seen += 1
            if seen > limit:
                return None
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def waiting_jobs() -> dict:
    decks = db.session.scalar(select(func.count(Deck.id)).where(Deck.status.in_(DECK_ACTIVE))) or 0
    db.session.rollback()
    return {"search_outbox": outbox_size(), "deck_conversions": decks}


def gather(app: Flask) -> dict:
    data_dir = Path(app.config["DATA_DIR"])
    usage = shutil.disk_usage(data_dir)
    since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=OPEN_HOURS)
    open_meetings = db.session.scalar(select(func.count(Meeting.id)).where(Meeting.ended_at.is_(None),
                                                                         Meeting.created_at >= since)) or 0
    db.session.rollback()
    return {
        "versions": {"Collab": collab_version(), "Python": platform.python_version(),
                     "Database": database_version(), "Redis": redis_version(app)},
        "started_at": datetime.fromtimestamp(STARTED, timezone.utc),
        "uptime_seconds": int(time.time() - STARTED),
        "readiness": health.run(app),
        "jobs": waiting_jobs(),
        "mail": "SMTP " + app.config["SMTP_HOST"] if app.config.get("SMTP_HOST") else "no mail server",
        "open_meetings": open_meetings,
        "workers": [{"url": u, "status": worker_status(app, u)} for u in app.config.get("MEDIA_URLS") or []],
        "web_processes": app.config.get("WORKERS", 1),
        "disk": {"total": usage.total, "used": usage.used, "free": usage.free},
        "data_bytes": {name: folder_bytes(data_dir / name) for name in ("attachments", "slides", "search")
                       if (data_dir / name).exists()},
        "backup": last_backup(str(data_dir)),
    }

