#!/usr/bin/env python
"""Backup and restore benchmark (issue 17): `.venv/bin/python bench/backup.py --help`.

For the 100,000-post data set of bench/search.py (same generator, same seed), on PostgreSQL and on SQLite, with
attachments in the data folder (default 400 files of 256 KB, incompressible, like photos and PDFs):
  1. the baseline: the database tool alone (pg_dump --format=custom; SQLite's online backup API) into a file;
  2. `flask backup` (collab.backup.create_backup): database + files into one archive, plain and encrypted;
  3. `flask restore` into an empty database and data folder (collab.restore.restore_backup), the schema check,
     and the search index rebuild that follows it (timed apart: it is most of a restore);
  4. the baseline for restore: pg_restore alone (SQLite: the backup API the other way).
Times are wall-clock seconds in this process; the ratio column compares each step with its baseline measured in
the same run. The table goes into docs/benchmarks.md under "## Backup and restore (issue 17)".
"""
from __future__ import annotations

import support  # noqa: F401  (first: sets sys.path)

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import create_engine, text  # noqa: E402

import importlib.util  # noqa: E402
from support import commit, loadavg, machine, write_section  # noqa: E402

from collab.backup import create_backup, pg_env  # noqa: E402
from collab.extensions import db  # noqa: E402
from collab.restore import restore_backup  # noqa: E402
from collab.schema import upgrade_database  # noqa: E402
from search.indexer import rebuild  # noqa: E402

TITLE = "## Backup and restore (issue 17)"
# bench/search.py (the corpus generator and loader), by path: the name `search` is the application's package.
_spec = importlib.util.spec_from_file_location("bench_search", Path(__file__).with_name("search.py"))
search_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_bench)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def sqlite_copy(src, dst) -> None:
    """SQLite's online backup API, the baseline both ways (what a backup and a restore of the file cost alone)."""
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b, pages=4096)
    a.close()
    b.close()


def empty_pg() -> str:
    name = f"collab_bench_restore_{uuid.uuid4().hex[:6]}"
    admin = create_engine(search_bench.PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return search_bench.PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def add_attachments(data_dir: Path, count: int, size: int) -> int:
    for i in range(count):
        sha = uuid.uuid4().hex + uuid.uuid4().hex
        path = data_dir / "attachments" / sha[:2] / sha[2:4] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return count * size


def one_backend(kind: str, threads, posts, work: Path, files: int, size: int) -> dict:
    data = work / f"{kind}-data"
    url = search_bench.make_database(len(posts)) if kind == "postgres" else f"sqlite:///{work / 'source.db'}"
    if kind == "sqlite":
        upgrade_database(url)
    app = search_bench.make_app(data, url, "whoosh")
    with app.app_context():
        search_bench.seed(app, threads, posts)
        db.session.remove()
    add_attachments(data, files, size)
    row: dict = {"backend": kind}
    # 1. baseline: the database tool alone
    if kind == "postgres":
        env, name = pg_env(url)
        row["base_backup"], _ = timed(subprocess.run, ["pg_dump", "--format=custom", "--no-owner",
                                                      "--file", str(work / "raw.pgdump"), name], env=env, check=True)
        row["db_bytes"] = (work / "raw.pgdump").stat().st_size
    else:
        row["base_backup"], _ = timed(sqlite_copy, url.removeprefix("sqlite:///"), work / "raw.sqlite3")
        row["db_bytes"] = (work / "raw.sqlite3").stat().st_size
    # 2. the backup command (plain, then encrypted)
    key = work / "backup.key"
    key.write_bytes(os.urandom(32))
    row["backup"], result = timed(create_backup, app.config, work / f"{kind}-archives")
    row["archive_bytes"] = result.bytes
    row["backup_enc"], _ = timed(create_backup, app.config, work / f"{kind}-archives-enc", key_file=str(key))
    # 3. restore into an empty install, then the search rebuild
    target_url = empty_pg() if kind == "postgres" else f"sqlite:///{work / 'restored' / 'collab.db'}"
    target = search_bench.make_app(work / f"{kind}-restored", target_url, "whoosh")
    row["restore"], _ = timed(restore_backup, target.config, result.path)
    with target.app_context():
        row["upgrade"], _ = timed(upgrade_database, target_url)
        row["rebuild"], row["indexed"] = timed(rebuild, target, procs=2)
        db.session.remove()
        db.engine.dispose()
    # 4. baseline restore: the database tool alone
    if kind == "postgres":
        again = empty_pg()
        env, name = pg_env(again)
        row["base_restore"], _ = timed(subprocess.run, ["pg_restore", "--no-owner", "--dbname", name,
                                                       str(work / "raw.pgdump")], env=env, check=True)
        for u in (again, target_url, url):
            search_bench.drop_database(u)
    else:
        row["base_restore"], _ = timed(sqlite_copy, work / "raw.sqlite3", work / "again.sqlite3")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return row


def mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def report(n: int, files: int, size: int, rows: list[dict], seconds: float, load_before: str) -> str:
    lines = [TITLE, "",
             f"`bench/backup.py --posts {n} --files {files}`: the search benchmark's {n:,}-post corpus (same generator "
             f"and seed), plus {files} incompressible attachments of {size // 1024} KB ({mb(files * size)}). Seconds, "
             "wall clock; \"×\" is the ratio to the database tool alone (pg_dump / pg_restore, or SQLite's backup API) "
             "in the same run.", "",
             "| database | DB dump alone | `flask backup` | × | encrypted | archive | restore (DB + files) | × | "
             "schema check | search rebuild |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} ({mb(r['db_bytes'])} dump) | {r['base_backup']:.1f} | {r['backup']:.1f} | "
                     f"{r['backup'] / r['base_backup']:.1f} | {r['backup_enc']:.1f} | {mb(r['archive_bytes'])} | "
                     f"{r['restore']:.1f} | {r['restore'] / r['base_restore']:.1f} | {r['upgrade']:.1f} | "
                     f"{r['rebuild']:.1f} ({r['indexed']:,} posts) |")
    lines += ["", "The archive adds the files and gzip (level 1) to the database tool's work; the encrypted archive "
              "costs AES-GCM on top. A restore is dominated by the search rebuild (the index is never archived: it is "
              "made again from the database).", "",
              f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at {commit()}, {seconds:.0f} s; {machine(('psycopg',))}; "
              f"load average {load_before} before, {loadavg()} after.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--file-kb", type=int, default=256)
    ap.add_argument("--backends", default="postgres,sqlite")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    started, load_before = time.monotonic(), loadavg()
    print(f"generating {args.posts:,} posts …", flush=True)
    _vocab, threads, posts, *_ = search_bench.generate(args.posts)
    rows = []
    with tempfile.TemporaryDirectory(prefix="collab-bench-backup-") as tmp:
        for kind in args.backends.split(","):
            work = Path(tmp) / kind
            work.mkdir()
            print(f"{kind} …", flush=True)
            rows.append(one_backend(kind, threads, posts, work, args.files, args.file_kb * 1024))
            print(rows[-1], flush=True)
            shutil.rmtree(work, ignore_errors=True)
    text_ = report(args.posts, args.files, args.file_kb * 1024, rows, time.monotonic() - started, load_before)
    print(text_)
    if not args.no_write:
        write_section(TITLE, text_)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
