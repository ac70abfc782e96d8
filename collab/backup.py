"""`flask --app wsgi backup`: one consistent, timestamped archive of an install.

What goes in: the database (SQLite through its online backup API, so the server keeps running and writing;
PostgreSQL through `pg_dump`, one transaction-consistent snapshot), then every file in the data folder that the
database points at or that cannot be made again (attachments, thumbnails, slides, recordings, transcripts), and the
secret key only with --include-secrets (it decrypts two-step verification secrets and signs sessions, so an archive
holding it is as sensitive as the server itself). Left out: the search index and its text cache (rebuilt after a
restore), earlier backups, metrics and lock files.

The database is taken first and the files after it: files are written before the rows that name them and are
never changed in place, so every file the database snapshot names is already there when the files are copied. A
file removed between the two (retention, a moderator) is counted in the manifest as missing rather than failing.

The archive is written to a ".partial" name beside its final one and renamed only when complete, so a full disk
or an interrupted run leaves no archive that looks usable; `<data>/backups/last.json` records the last good one
(the System page and monitoring read it).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from collab.archive_crypto import ArchiveKeyError, EncryptingWriter, read_key_file

FORMAT = 1
# Folders and files of the data folder that are never archived (see the module docstring).
EXCLUDED = {"search", "backups", "metrics", "tmp", "secret_key", "collab.db", "collab.db-wal", "collab.db-shm",
            "collab.db-journal"}
EXCLUDED_SUFFIXES = (".lock", ".partial", ".pid", ".sock")

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


@dataclass
class BackupResult:
    path: Path
    bytes: int
    files: int
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def database_kind(url: str) -> str:
    try:
        name = make_url(url).get_backend_name()
    except Exception:  # noqa: BLE001 - any parse error: the setting is malformed
        raise BackupError("COLLAB_DATABASE_URL is not a database URL.") from None
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {name}.")
    return name


def sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("COLLAB_DATABASE_URL names no SQLite file.")
    return Path(path)


def pg_env(url: str) -> tuple[dict, str]:
    """libpq settings for pg_dump/pg_restore: the password goes in the environment, never on the command line."""
    u = make_url(url)
    env = dict(os.environ)
    for key, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username), ("PGPASSWORD", u.password)):
        if value:
            env[key] = str(value)
    return env, u.database or ""


def schema_revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version ORDER BY version_num")).scalars().all()
    except Exception:  # noqa: BLE001 - no table or no database: reported as a clear error below
        rows = []
    finally:
        engine.dispose()
    if not rows:
        raise BackupError("The database has no schema yet (run `flask --app wsgi db upgrade`): nothing to back up.")
    return ",".join(rows)


def _snapshot_sqlite(url: str, dest: Path, progress: Progress) -> None:
    src_path = sqlite_path(url)
    if not src_path.exists():
        raise BackupError(f"The SQLite database {src_path} does not exist.")
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        def step(status, remaining, total):  # noqa: ARG001 - sqlite3's callback signature
            progress(f"Database: {100 * (total - remaining) // max(total, 1)} %")
        src.backup(dst, pages=4096, progress=step)
    finally:
        dst.close()
        src.close()


def _snapshot_postgres(url: str, dest: Path, progress: Progress) -> None:
    env, name = pg_env(url)
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (Debian: apt-get install postgresql-client).")
    progress("Database: pg_dump …")
    done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(dest), name],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no reason given'}")
    progress(f"Database: 100 % ({dest.stat().st_size // 1024} KB dumped)")


def data_files(data_dir: Path, include_secrets: bool) -> list[Path]:
    """Files of the data folder that belong in an archive, relative to it, in a stable order."""
    out: list[Path] = []
    for root, dirs, names in os.walk(data_dir):
        rel_root = Path(root).relative_to(data_dir)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in EXCLUDED]
        dirs.sort()
        for name in sorted(names):
            rel = rel_root / name
            if rel_root == Path(".") and name in EXCLUDED and not (include_secrets and name == "secret_key"):
                continue
            if name.endswith(EXCLUDED_SUFFIXES):
                continue
            out.append(rel)
    return out


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _write_last(data_dir: Path, result: BackupResult, encrypted: bool, kind: str) -> None:
    folder = data_dir / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "path": str(result.path),
              "bytes": result.bytes, "files": result.files, "missing": len(result.missing), "encrypted": encrypted,
              "database": kind, "seconds": round(result.seconds, 2)}
    tmp = folder / "last.json.partial"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, folder / "last.json")


def last_backup(data_dir: str | os.PathLike) -> dict | None:
    """What `<data>/backups/last.json` says about the last good backup, or None."""
    try:
        return json.loads((Path(data_dir) / "backups" / "last.json").read_text())
    except (OSError, ValueError):
        return None


def create_backup(config: dict, to: str | os.PathLike | None = None, *, include_secrets: bool = False,
                  key_file: str | None = None, progress: Progress = lambda _m: None) -> BackupResult:
    """Write one archive of the install described by `config` (the app's config) and return where it is."""
    started = time.monotonic()
    data_dir = Path(config["DATA_DIR"])
    url = config["DATABASE_URL"]
    kind = database_kind(url)
    try:
        key = read_key_file(key_file) if key_file else None
    except ArchiveKeyError as err:
        raise BackupError(str(err)) from None
    revision = schema_revision(url)
    target = Path(to) if to else data_dir / "backups"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BackupError(f"The backup folder {target} cannot be made: {err.strerror}.") from None
    if not os.access(target, os.W_OK):
        raise BackupError(f"The backup folder {target} is not writable.")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    final = target / f"collab-backup-{stamp}.tar.gz{'.enc' if key else ''}"
    partial = final.with_name(final.name + ".partial")
    staging = Path(tempfile.mkdtemp(prefix=".collab-backup-", dir=target))
    try:
        db_name = "database/collab.sqlite3" if kind == "sqlite" else "database/collab.pgdump"
        db_file = staging / Path(db_name).name
        (_snapshot_sqlite if kind == "sqlite" else _snapshot_postgres)(url, db_file, progress)
        files = data_files(data_dir, include_secrets)
        manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "database": kind, "schema_revision": revision, "files": len(files),
                    "includes_secret_key": include_secrets and (data_dir / "secret_key").exists(),
                    "encrypted": key is not None}
        missing: list[str] = []
        with open(partial, "wb") as raw:
            sink = EncryptingWriter(raw, key) if key else raw
            # Level 1: attachments and slides are mostly compressed already; speed matters more than a few %.
            zipped = gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=1, mtime=0)
            with tarfile.open(fileobj=zipped, mode="w|") as tar:
                _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
                tar.add(db_file, arcname=db_name)
                for i, rel in enumerate(files, 1):
                    try:
                        tar.add(data_dir / rel, arcname=f"data/{rel.as_posix()}", recursive=False)
                    except FileNotFoundError:
                        missing.append(rel.as_posix())
                    if i % 200 == 0 or i == len(files):
                        progress(f"Files: {i}/{len(files)} ({100 * i // len(files)} %)")
            zipped.close()
            if key:
                sink.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, final)
    except OSError as err:
        partial.unlink(missing_ok=True)
        if err.errno == 28:  # ENOSPC
            raise BackupError(f"The disk holding {target} is full: the backup was not written "
                              "(no partial archive is left). Free space or choose another folder with --to.") from None
        raise BackupError(f"The backup could not be written to {target}: {err.strerror or err}.") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = BackupResult(final, final.stat().st_size, len(files) - len(missing), missing,
                          time.monotonic() - started)
    _write_last(data_dir, result, key is not None, kind)
    return result
