"""`flask --app wsgi restore ARCHIVE`: an archive made by `backup` into an empty install.

Only into an empty data folder and an empty database: restoring over a live install would mix two histories
(posts whose attachments belong to the other one), so it is refused with what to do instead. After the database
and files are in place the schema is brought up to this version's migrations (an archive from an older release
restores into a newer one) and the search index is rebuilt from the database, as it is never archived.

Archive members are checked before anything is written (manifest first, known format, database kind matching
COLLAB_DATABASE_URL) and every file path must stay inside the data folder; tarfile's "data" filter refuses links,
devices and absolute or climbing paths as well.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Callable

from sqlalchemy import create_engine, inspect

from collab.archive_crypto import ArchiveKeyError, DecryptingReader, is_encrypted, read_key_file
from collab.backup import FORMAT, BackupError, database_kind, pg_env, sqlite_path

Progress = Callable[[str], None]


def _database_is_empty(url: str, kind: str) -> bool:
    if kind == "sqlite":
        path = sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return True
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return not inspect(conn).get_table_names()
    except Exception as err:  # noqa: BLE001 - the database cannot be reached: say which setting to look at
        raise BackupError(f"The database in COLLAB_DATABASE_URL cannot be reached: {err.__class__.__name__}.") from None
    finally:
        engine.dispose()


def _data_folder_is_empty(data_dir: Path) -> bool:
    """Nothing but what a fresh install makes by itself (the generated secret key, an empty search folder)."""
    if not data_dir.exists():
        return True
    for entry in data_dir.iterdir():
        if entry.name in ("secret_key", "search", "backups", "metrics", "tmp"):
            continue
        if entry.name.startswith("collab.db") and entry.stat().st_size == 0:
            continue
        return False
    return True


def _safe_member(member: tarfile.TarInfo) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not member.isfile():
        raise BackupError(f"The archive holds an unsafe entry ({member.name!r}); it was not restored.")
    return path


def _restore_sqlite(url: str, dump: Path) -> None:
    dest = sqlite_path(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    src = sqlite3.connect(dump)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    for suffix in ("-wal", "-shm", "-journal"):  # an empty install's leftovers must not be replayed over it
        dest.with_name(dest.name + suffix).unlink(missing_ok=True)
    os.replace(partial, dest)


def _restore_postgres(url: str, dump: Path) -> None:
    env, name = pg_env(url)
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not installed (Debian: apt-get install postgresql-client).")
    done = subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                           "--dbname", name,
                           str(dump)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no reason given"
        raise BackupError(f"pg_restore failed: {last}")


def _open(archive: Path, key_file: str | None):
    raw = open(archive, "rb")  # noqa: SIM115 - closed by the caller with the tar
    if is_encrypted(archive):
        if not key_file:
            raw.close()
            raise BackupError("This archive is encrypted: give the key file it was made with (--key-file).")
        return raw, DecryptingReader(raw, read_key_file(key_file))
    if key_file:
        raw.close()
        raise BackupError("This archive is not encrypted; restore it without --key-file.")
    return raw, raw


def restore_backup(config: dict, archive: str | os.PathLike, *, key_file: str | None = None,
                   progress: Progress = lambda _m: None) -> dict:
    """Restore `archive` into the (empty) install `config` describes; returns the archive's manifest."""
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"There is no archive at {archive}.")
    data_dir = Path(config["DATA_DIR"])
    url = config["DATABASE_URL"]
    kind = database_kind(url)
    if not _data_folder_is_empty(data_dir):
        raise BackupError(f"The data folder {data_dir} is not empty: restore into a new, empty folder "
                          "(set COLLAB_DATA_DIR) so two installs' files are not mixed.")
    if not _database_is_empty(url, kind):
        raise BackupError("The database in COLLAB_DATABASE_URL already has tables: restore into an empty database.")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        raw, source = _open(archive, key_file)
    except ArchiveKeyError as err:
        raise BackupError(str(err)) from None
    staging = Path(tempfile.mkdtemp(prefix=".collab-restore-", dir=data_dir))
    manifest: dict | None = None
    written = 0
    before = {entry.name for entry in data_dir.iterdir()}
    try:
        with tarfile.open(fileobj=source, mode="r|gz") as tar:
            for member in tar:
                path = _safe_member(member)
                if manifest is None:
                    if path.as_posix() != "manifest.json":
                        raise BackupError("This file is not a Collab backup (it has no manifest first).")
                    manifest = json.load(tar.extractfile(member))
                    if manifest.get("format") != FORMAT:
                        raise BackupError(f"This backup's format ({manifest.get('format')}) is not one this "
                                          "version of Collab reads.")
                    if manifest.get("database") != kind:
                        raise BackupError(f"This backup holds a {manifest.get('database')} database but "
                                          f"COLLAB_DATABASE_URL is {kind}: point it at an empty {manifest.get('database')} "
                                          "database.")
                    continue
                if path.parts[0] == "database":
                    tar.extract(member, staging, filter="data")
                    progress("Database: unpacked")
                elif path.parts[0] == "data" and len(path.parts) > 1:
                    member.name = PurePosixPath(*path.parts[1:]).as_posix()
                    tar.extract(member, data_dir, filter="data")
                    written += 1
                    if written % 200 == 0 or written == manifest["files"]:
                        progress(f"Files: {written}/{manifest['files']} ({100 * written // max(manifest['files'], 1)} %)")
                else:
                    raise BackupError(f"The archive holds an unexpected entry ({member.name!r}).")
        if manifest is None:
            raise BackupError("This file is not a Collab backup (it is empty).")
        dumps = list((staging / "database").glob("*"))
        if len(dumps) != 1:
            raise BackupError("The archive holds no database.")
        progress("Database: restoring …")
        (_restore_sqlite if kind == "sqlite" else _restore_postgres)(url, dumps[0])
    except BaseException as err:
        for entry in data_dir.iterdir():  # nothing half-restored: the folder is left as it was found
            if entry.name not in before and entry != staging:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
        if isinstance(err, ArchiveKeyError):
            raise BackupError(str(err)) from None
        if isinstance(err, OSError) and err.errno == 28:
            raise BackupError(f"The disk holding {data_dir} is full: nothing was restored.") from None
        if isinstance(err, (tarfile.TarError, EOFError, OSError, ValueError)):
            raise BackupError(f"The archive could not be read ({err.__class__.__name__}): nothing was restored.") from None
        raise
    finally:
        raw.close()
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
