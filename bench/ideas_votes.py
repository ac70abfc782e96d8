#!/usr/bin/env python
"""Idea votes benchmark (issue 13): `.venv/bin/python bench/ideas_votes.py --help`.

What it does
  1. Makes a fresh data folder and migrates it (tests/liveserver.py `make_server`; SQLite, the default
     install, or --database-url for PostgreSQL).
  2. Seeds it through the real services (a separate process): an owner, a private room that takes ideas,
     one idea, and N member accounts (default 1,000), each with a personal access token.
  3. Starts the production server, `flask --app wsgi serve` (gunicorn, one gevent worker).
  4. From this process (aiohttp on one asyncio loop) every account votes once,
     `POST /api/v1/ideas/<id>/vote`, at most C requests in flight (default 50); then a tenth of the
     accounts vote again (each must be refused with 409, nothing counted).
  5. Checks that no vote was lost or doubled: every first vote answered 200, every second 409, and the
     idea's tally read back (`GET /api/v1/ideas/<id>`) is exactly N, as is the number of distinct
     tallies seen in the answers (each vote got its own count from 1 to N).
  6. Prints p50/p95/p99 latency and the wall time and, with --write, writes the section
     "## Idea votes (issue 13)" of docs/benchmarks.md (only that section is replaced).

Quick run: .venv/bin/python bench/ideas_votes.py --accounts 100
"""
from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on sys.path, and bench/http.py would hide the standard
# library's `http` package from everything imported below. Take the folder off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.liveserver import make_server  # noqa: E402

SECTION = "## Idea votes (issue 13)"

SEED = r"""
import json, sys
from collab import create_app
# Cheap password hashes: the accounts sign in with tokens only (the server itself keeps its settings).
app = create_app({"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 47104, "ARGON2_PARALLELISM": 1})
N = int(sys.argv[1])
with app.app_context():
    from auth import services as accounts
    from rooms import services as rooms
    from rooms.ideas import services as ideas
    pw = "benchmark passphrase, long enough"
    owner = accounts.create_user(email="owner@bench.example", name="Bench Owner", password=pw)
    room = rooms.create_room(owner, name="Ideas room", visibility="private")
    ideas.update_settings(owner, room.id, enabled=True, vote_budget=10)
    idea = ideas.create_idea(owner, room.id, title="Shorter handover forms", body="One page, not four.")
    tokens = []
    for i in range(N):
        u = accounts.create_user(email=f"voter{i}@bench.example", name=f"Voter {i:04d}", password=pw)
        rooms.add_member(owner, room.id, user_id=u.id)
        tokens.append(accounts.create_token(u, "bench")[1])
    print(json.dumps({"owner": accounts.create_token(owner, "bench")[1], "tokens": tokens, "idea_id": idea.id}))
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def vote_all(url: str, seed: dict, concurrency: int) -> dict:
    idea = seed["idea_id"]
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    firsts: list[tuple[int, int | None]] = []
    seconds: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(token: str, sink: list, measure: bool) -> None:
            async with sem:
                t0 = time.perf_counter()
                async with http.post(f"{url}/api/v1/ideas/{idea}/vote",
                                     headers={"Authorization": f"Bearer {token}"}) as r:
                    body = await r.json()
                if measure:
                    lat.append((time.perf_counter() - t0) * 1000)
                    sink.append((r.status, body.get("votes")))
                else:
                    sink.append(r.status)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t, firsts, True) for t in seed["tokens"]))
        wall = time.perf_counter() - t0
        again = seed["tokens"][:: 10]
        await asyncio.gather(*(one(t, seconds, False) for t in again))
        async with http.get(f"{url}/api/v1/ideas/{idea}",
                            headers={"Authorization": f"Bearer {seed['owner']}"}) as r:
            final = await r.json()
    n = len(seed["tokens"])
    ok = [v for s, v in firsts if s == 200]
    return {
        "votes": n, "concurrency": concurrency, "wall_s": wall, "per_s": n / wall,
        "p50": statistics.median(lat), "p95": pct(lat, 95), "p99": pct(lat, 99), "max": max(lat),
        "ok": len(ok), "errors": n - len(ok), "distinct_tallies": len(set(ok)),
        "tallies_are_1_to_n": sorted(ok) == list(range(1, n + 1)),
        "second_votes": len(again), "second_refused_409": sum(1 for s in seconds if s == 409),
        "final_tally": final["votes"], "voters_listed": len(final.get("voters") or []),
    }


def write_docs(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    start = doc.find(SECTION)
    if start == -1:
        doc = doc.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        nxt = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text.rstrip("\n") + "\n" + (doc[nxt:] if nxt != -1 else "")
    path.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in the data folder)")
    ap.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    args = ap.parse_args()
    server = make_server(Path(f"/tmp/collab-bench-ideas-{os.getpid()}"), database_url=args.database_url)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SEED, str(args.accounts)], cwd=ROOT, env=server.env,
                         capture_output=True, text=True, check=True)
    seed = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"seeded {args.accounts} accounts in {time.perf_counter() - t0:.1f} s", flush=True)
    server.start()
    try:
        r = asyncio.run(vote_all(server.url, seed, args.concurrency))
    finally:
        server.stop()
    print(json.dumps(r), flush=True)
    exact = (r["ok"] == r["votes"] and r["final_tally"] == r["votes"] and r["tallies_are_1_to_n"]
             and r["second_refused_409"] == r["second_votes"] and r["voters_listed"] == r["votes"])
    db = "PostgreSQL" if args.database_url else "SQLite"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=False,
                            text=True).stdout.strip() or "unknown"
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("gunicorn", "gevent", "aiohttp"))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    section = f"""{SECTION}

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/ideas_votes.py` at commit {commit} on {os.cpu_count()} cores,
{platform.system()} {platform.release()}, Python {platform.python_version()}; {versions}. Server: the production
command `flask --app wsgi serve` (gunicorn, 1 gevent worker), {db}. Client: aiohttp on one asyncio loop in a separate
process, {r['concurrency']} requests in flight. {r['votes']:,} accounts (members of one private room, budget 10 votes
each) each vote once for one idea over the JSON API (`POST /api/v1/ideas/<id>/vote`, bearer token); then every tenth
account votes again. Latency: from sending the request to reading the whole answer. Load average at the end: {load}
(other engineers' work shared the machine, so these are upper bounds).

| Votes | In flight | Wall time s | Votes/s | p50 ms | p95 ms | p99 ms | Max ms | Errors |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| {r['votes']:,} | {r['concurrency']} | {r['wall_s']:.2f} | {r['per_s']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['errors']} |

- Within 10 s: {"**yes**" if r['wall_s'] <= 10 else "**no**"} ({r['wall_s']:.2f} s).
- No vote lost or doubled: {"**exact**" if exact else "**NOT exact**"} — {r['ok']:,} answered 200, the answers' tallies
  were each of 1…{r['votes']:,} exactly once ({r['distinct_tallies']:,} distinct), the tally read back is
  {r['final_tally']:,} with {r['voters_listed']:,} voters listed, and {r['second_refused_409']} of {r['second_votes']}
  second votes were refused with 409 (nothing counted).
"""
    print("\n" + section)
    if args.write:
        write_docs(section)
        print("written to docs/benchmarks.md")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
