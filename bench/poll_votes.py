#!/usr/bin/env python
"""Poll votes benchmark (issue 13): `.venv/bin/python bench/poll_votes.py --help`.

1. Makes a fresh data folder and migrates it (tests/liveserver.py `make_server`; SQLite, or
   PostgreSQL with --database-url).
2. Seeds through the real services: one national room, one single-choice poll with 4 options
   (results shown always), and --voters accounts (staff of one force) each with an access token.
3. Starts the production server (`flask --app wsgi serve`: gunicorn, one gevent worker).
4. Sends one vote per account over the JSON API (POST /api/v1/polls/<id>/votes), --concurrency at
   a time from one aiohttp loop in this process, each account's option drawn at random (fixed seed).
5. Checks: every vote answered 201; the database holds exactly --voters votes, one per account
   (none lost, none doubled); the tally of GET /api/v1/polls/<id> equals the counts sent, option
   by option. Prints wall time (must be within 10 s), throughput, p50/p99 latency, and writes
   the table under "## Poll votes (issue 13)" in docs/benchmarks.md (that section only).

Quick run:  .venv/bin/python bench/poll_votes.py --voters 200 --no-write
"""
from __future__ import annotations

import os
import sys

# bench/ holds http.py, which would hide the standard library's `http` package: take this folder off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import sqlite3  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.liveserver import make_server  # noqa: E402

SECTION = "## Poll votes (issue 13)"
OPTIONS = ["Earlies", "Lates", "Nights", "Rest days"]


def seed(server, n: int, database_url: str | None) -> dict:
    from auth import services as accounts
    from auth.models import Organisation
    from collab import create_app
    from collab.extensions import db
    from rooms import services as rooms
    from rooms.polls import services as polls

    url = database_url or f"sqlite:///{server.data_dir / 'collab.db'}"
    app = create_app({"DATA_DIR": str(server.data_dir), "DATABASE_URL": url,
                      "SECRET_KEY": server.env["COLLAB_SECRET_KEY"], "PUBLIC_URL": server.url,
                      "SEARCH_INDEXING": False, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024,
                      "ARGON2_PARALLELISM": 1})
    with app.app_context():
        db.begin_write()
        org = Organisation(name="Bench Constabulary", kind="force")
        db.session.add(org)
        db.session.commit()
        owner = accounts.create_user(email="owner@bench.example.org", name="Bench Owner", password="bench passphrase x",
                                     kind="staff", role="member", organisation_id=org.id)
        room = rooms.create_room(owner, name="Bench rota", visibility="national")
        poll = polls.create_poll(owner, room.id, question="Which pattern?", kind="single", options=OPTIONS)
        tokens = []
        for i in range(n):
            u = accounts.create_user(email=f"voter{i}@bench.example.org", name=f"Voter {i}",
                                     password="bench passphrase x", kind="staff", role="member",
                                     organisation_id=org.id)
            tokens.append(accounts.create_token(u, "bench")[1])
        out = {"poll_id": poll.id, "tokens": tokens}
        db.session.remove()
        db.engine.dispose()
    return out


async def run_votes(base: str, poll_id: int, tokens: list[str], choices: list[int], concurrency: int):
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    statuses: dict[int, int] = {}

    async def one(session, token: str, choice: int):
        async with sem:
            t0 = time.perf_counter()
            async with session.post(f"{base}/api/v1/polls/{poll_id}/votes", json={"choices": [choice]},
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            lat.append(time.perf_counter() - t0)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(session, t, c) for t, c in zip(tokens, choices)))
        wall = time.perf_counter() - t0
        async with session.get(f"{base}/api/v1/polls/{poll_id}",
                               headers={"Authorization": f"Bearer {tokens[0]}"}) as r:
            poll = await r.json()
    return wall, lat, statuses, poll


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        out = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        out = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    path.write_text(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voters", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--database-url", default=None, help="a fresh, empty PostgreSQL database (default: SQLite)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()

    server = make_server(database_url=args.database_url)
    print(f"seeding {args.voters} accounts …", file=sys.stderr)
    seeded = seed(server, args.voters, args.database_url)
    rng = random.Random(13)
    choices = [rng.randrange(len(OPTIONS)) for _ in seeded["tokens"]]
    sent = [choices.count(i) for i in range(len(OPTIONS))]
    load = os.getloadavg()[0]
    server.start()
    try:
        wall, lat, statuses, poll = asyncio.run(run_votes(server.url, seeded["poll_id"], seeded["tokens"], choices,
                                                          args.concurrency))
    finally:
        server.stop()
    if args.database_url:
        from sqlalchemy import create_engine, text
        eng = create_engine(args.database_url)
        with eng.connect() as c:
            rows = c.execute(text("SELECT count(*), count(DISTINCT user_id) FROM poll_votes")).one()
        eng.dispose()
    else:
        con = sqlite3.connect(server.data_dir / "collab.db")
        rows = con.execute("SELECT count(*), count(DISTINCT user_id) FROM poll_votes").fetchone()
        con.close()
    stored, distinct = rows
    totals = (poll.get("results") or {}).get("totals")
    checks = {
        "every vote answered 201": statuses == {201: args.voters},
        "votes stored = voters (none lost, none doubled)": stored == distinct == args.voters,
        "tally equals what was sent, per option": totals == sent,
        "within 10 s": wall <= 10.0,
    }
    p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
    db_name = "PostgreSQL" if args.database_url else "SQLite"
    table = "\n".join([
        SECTION, "",
        f"`bench/poll_votes.py` on {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python "
        f"{platform.python_version()}, {db_name}, the production server (gunicorn, one gevent worker); "
        f"{args.voters} accounts vote once each on one single-choice poll over the JSON API, "
        f"{args.concurrency} at a time from one aiohttp client process, on {os.cpu_count()} cores with a load "
        f"average of {load:.1f} when it started (the machine is shared: figures are upper bounds).", "",
        "| votes | wall time | votes/s | p50 | p99 | stored (distinct accounts) | tally exact |",
        "|---|---|---|---|---|---|---|",
        f"| {args.voters} | {wall:.2f} s | {args.voters / wall:.0f} | {p50:.0f} ms | {p99:.0f} ms | "
        f"{stored} ({distinct}) | {'yes' if checks['tally equals what was sent, per option'] else 'NO'} |", "",
        "Checks: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()) + ".",
        "Not measured yet: votes over Socket.IO, the same on an idea, and the live tally reaching 500 watchers.", "",
    ])
    print(table)
    print(json.dumps({"statuses": statuses, "sent": sent, "totals": totals}), file=sys.stderr)
    if not args.no_write:
        write_section(args.output, table)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
