#!/usr/bin/env python
"""Mixed workload on the reference deployment (issue 17): `.venv/bin/python bench/workload.py --help`.

Like Mattermost's load test: every simulated user is an account of its own, holds a live connection (subscribed
to their room, as an open page is) and about every `--think` seconds (uniformly between half and one and a half
times it) does one thing through the JSON API: read a thread of their room (50 %), reply in it (20 %), search
(15 %) or react to a post (15 %). Users are spread over rooms of 20 members; each room starts with threads and
replies. The deployment is the one operators copy (tests/deployment_support.py: nginx with TLS, `--web` web
processes, Redis, PostgreSQL, one media worker); users run in `--client-processes` separate processes, each
user with a kept-alive HTTPS connection and its own session cookie (nginx's sticky hash spreads them).

Recorded over the steady phase (after every user has connected and a ramp of one think time): per action, how
many, p50 / p95 ms and answers by class (5xx must stay under 0.025 % of all requests); the deployment's CPU and the
web processes' memory, also per 1,000 users; the load generator's CPU.

Quick run: .venv/bin/python bench/workload.py --users 200 --seconds 60
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import multiprocessing as mp  # noqa: E402
import random  # noqa: E402
import ssl  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import aiohttp  # noqa: E402

from support import (CpuMeter, commit, deployment_pids, loadavg, local, machine, pct,  # noqa: E402
                     ready_for_deployment, rss_mb, seed, write_section)
from tests.deployment_support import deployment  # noqa: E402

socket_client = local("socket_client")

SECTION = "## Mixed workload (issue 17)"
ROOM_SIZE = 20
THREADS_PER_ROOM = 5
REPLIES_PER_THREAD = 4
WORDS = ["patrol", "custody", "briefing", "community", "stop", "search", "neighbourhood", "youth", "knife",
         "crime", "safeguarding", "training", "complaint", "response", "volunteer", "feedback", "trust",
         "vehicle", "station", "school"]
ACTIONS = [("read", 50), ("post", 20), ("search", 15), ("react", 15)]
EMOJI = ["👍", "❤️", "🎉", "🙏"]

SEED = """
import json, random, sys
users_n, room_size, threads_n, replies_n = (int(a) for a in sys.argv[1:5])
words = sys.argv[5].split(",")
rng = random.Random(17)
with app.app_context():
    from auth import services as accounts
    from rooms import services as rooms
    from rooms import posts as room_posts
    owner = accounts.create_user(email="owner@bench.example", name="Bench Owner", password="bench passphrase, long")
    users = []
    for i in range(users_n):
        u = accounts.create_user(email=f"user{i}@bench.example", name=f"User {i:04d}", password="bench passphrase, long")
        users.append({"id": u.id, "token": accounts.create_token(u, "bench")[1], "obj": u})
    rooms_out = []
    for r in range(0, users_n, room_size):
        room = rooms.create_room(owner, name=f"Room {r // room_size:03d}", visibility="private")
        members = users[r:r + room_size]
        for m in members:
            rooms.add_member(owner, room.id, user_id=m["id"])
        threads = []
        for t in range(threads_n):
            text = lambda: " ".join(rng.choice(words) for _ in range(30))
            th = room_posts.create_thread(members[t % len(members)]["obj"], room.id, title=f"Topic {t}", body=text())
            for k in range(replies_n):
                room_posts.create_post(members[(t + k + 1) % len(members)]["obj"], th.id, body=text())
            threads.append(th.id)
        for m in members:
            m["room"] = room.id
            m["threads"] = threads
        rooms_out.append(room.id)
    print(json.dumps({"users": [{k: v for k, v in u.items() if k != "obj"} for u in users]}))
"""


# -- a client process -----------------------------------------------------------------------------------------

def client_process(url: str, ca: str, users: list[dict], think: float, start_at: float, measure_from: float,
                   end_at: float, out: mp.Queue) -> None:
    asyncio.run(_users(url, ca, users, think, start_at, measure_from, end_at, out))


async def _users(url: str, ca: str, users: list[dict], think: float, start_at: float, measure_from: float,
                 end_at: float, out: mp.Queue) -> None:
    rng = random.Random(users[0]["id"] if users else 0)
    tls = ssl.create_default_context(cafile=ca)
    sockets, tasks, errors = [], [], []
    results: dict[str, list] = {a: [] for a, _w in ACTIONS}   # action -> [(ms, status)]
    dropped = {"n": 0, "stopping": False}
    sem = asyncio.Semaphore(40)
    posts_seen: dict[str, list[int]] = {}
    conn = aiohttp.TCPConnector(limit=0, ssl=tls)
    shared = aiohttp.ClientSession(connector=conn)

    def on_closed() -> None:
        if not dropped["stopping"]:
            dropped["n"] += 1

    async def open_socket(u: dict) -> None:
        async with sem:
            try:
                ws = await socket_client.connect(shared, url, u["token"], f"bench-user-{u['id']}", u["room"])
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(repr(exc))
                return
        sockets.append(ws)
        tasks.append(asyncio.create_task(socket_client.listen(ws, lambda _c, _t: None, on_closed)))

    await asyncio.gather(*(open_socket(u) for u in users))
    out.put(("ready", len(sockets), errors[:3]))
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    async def act(u: dict, http: aiohttp.ClientSession) -> None:
        action = rng.choices([a for a, _w in ACTIONS], weights=[w for _a, w in ACTIONS])[0]
        thread = rng.choice(u["threads"])
        t0 = time.monotonic()
        status = 0
        try:
            if action == "read":
                async with http.get(f"{url}/api/v1/threads/{thread}") as r:
                    status = r.status
                    body = await r.json() if r.status == 200 else {}
                    posts_seen[u["room"]] = [p["id"] for p in body.get("posts", [])][-20:] or \
                        posts_seen.get(u["room"], [])
            elif action == "post":
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
                async with http.post(f"{url}/api/v1/threads/{thread}/posts", json={"body": text}) as r:
                    status = r.status
                    if r.status == 201:
                        posts_seen.setdefault(u["room"], []).append((await r.json())["id"])
            elif action == "search":
                q = " ".join(rng.sample(WORDS, rng.choice((1, 1, 2))))
                async with http.get(f"{url}/api/v1/search", params={"q": q}) as r:
                    status = r.status
                    await r.read()
            else:
                seen = posts_seen.get(u["room"])
                if not seen:   # nothing read in this room yet: read first
                    async with http.get(f"{url}/api/v1/threads/{thread}") as r:
                        status = r.status
                        body = await r.json() if r.status == 200 else {}
                        seen = posts_seen[u["room"]] = [p["id"] for p in body.get("posts", [])][-20:]
                    action = "read"
                else:
                    emoji = rng.choice(EMOJI)
                    async with http.put(f"{url}/api/v1/posts/{rng.choice(seen)}/reactions/{emoji}") as r:
                        status = r.status
                        await r.read()
        except Exception as exc:  # noqa: BLE001 - a failed request is a result (status 0), not a crash
            errors.append(f"{action}: {exc!r}")
        if t0 >= measure_from and t0 < end_at:
            results[action].append(((time.monotonic() - t0) * 1000, status))

    async def user(u: dict) -> None:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, ssl=tls), headers={
            "Authorization": f"Bearer {u['token']}", "Cookie": f"session=bench-user-{u['id']}"})
        try:
            await asyncio.sleep(rng.uniform(0, think))   # users do not all start at once
            while time.monotonic() < end_at:
                await act(u, http)
                await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
        finally:
            await http.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(user(u) for u in users))
    cpu = time.process_time() - cpu0
    held = sum(not ws.closed for ws in sockets)
    dropped["stopping"] = True
    out.put(("done", results, dropped["n"], held, cpu, errors[:5]))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for t in tasks:
        t.cancel()
    await shared.close()


# -- the run ----------------------------------------------------------------------------------------------

def run(d, users: list[dict], procs: int, think: float, seconds: float) -> dict:
    ctx = mp.get_context("fork")   # (nothing runs in this process yet: no loop, no threads)
    out = ctx.Queue()
    pids = deployment_pids(d)
    rss_base = rss_mb(pids["web"])   # before anyone connects
    shares = [users[i::procs] for i in range(procs)]
    # the users start once every connection is open: a generous bound for opening them, then one think time
    # of ramp (users start at random within it) before measuring
    opening = 30 + len(users) / 20
    start_at = time.monotonic() + opening
    measure_from = start_at + think
    end_at = measure_from + seconds
    workers = [ctx.Process(target=client_process, args=(d.url, d.ca, share, think, start_at, measure_from, end_at,
                                                        out), daemon=True) for share in shares]
    for w in workers:
        w.start()
    ready = [out.get(timeout=opening + 600) for _ in workers]
    connected = sum(r[1] for r in ready)
    if time.monotonic() > start_at:
        raise SystemExit(f"opening {len(users)} connections took longer than the {opening:.0f} s allowed")
    time.sleep(max(0.0, measure_from - time.monotonic()))
    load_before = loadavg()
    meter = CpuMeter(deployment_pids(d))   # (again: PostgreSQL's server processes of the connections now open)
    time.sleep(max(0.0, end_at - time.monotonic()))
    wall = meter.elapsed()
    cpu = meter.percent()
    web_rss = rss_mb(pids["web"])
    load_after = loadavg()
    done = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    merged: dict[str, list] = {a: [] for a, _w in ACTIONS}
    for r in done:
        for a, rows in r[1].items():
            merged[a].extend(rows)
    return {"users": len(users), "connected": connected, "held": sum(r[3] for r in done),
            "dropped": sum(r[2] for r in done), "errors": [e for r in ready for e in r[2]] + [e for r in done
                                                                                              for e in r[5]],
            "actions": merged, "seconds": wall, "cpu_deploy": cpu["deployment"], "cpu_parts": cpu, "cpu_infra": cpu["infra"],
            "client_cpu": sum(r[4] for r in done) / (end_at - start_at) * 100, "web_rss": web_rss, "rss_base": rss_base,
            "load": f"{load_before} → {load_after}"}


def one_size(args, users: int) -> str:
    """Bring a deployment up for `users`, run the workload, and describe it (Markdown)."""
    tmp = Path(tempfile.mkdtemp(prefix="collab-bench-workload-"))

    def seed_it(d) -> None:
        t0 = time.monotonic()
        d.seeded = seed(d, SEED, str(users), str(ROOM_SIZE), str(THREADS_PER_ROOM), str(REPLIES_PER_THREAD),
                        ",".join(WORDS))
        print(f"seeded {users} users in {time.monotonic() - t0:.0f} s", flush=True)

    with deployment(tmp, web_processes=args.web, seed=seed_it, nginx_connections=4 * users + 1024) as d:
        print(f"deployment up at {d.url}: {args.web} web processes; {users} users in {args.client_processes} "
              f"processes…", flush=True)
        r = run(d, d.seeded["users"], args.client_processes, args.think, args.seconds)
    requests_n = sum(len(v) for v in r["actions"].values())
    five = sum(1 for v in r["actions"].values() for _ms, st in v if st >= 500)
    failed = sum(1 for v in r["actions"].values() for _ms, st in v if st == 0)
    rows = []
    for a, _w in ACTIONS:
        v = r["actions"][a]
        ms = [m for m, _st in v]
        classes: dict[str, int] = {}
        for _m, st in v:
            key = f"{st}" if st >= 500 else f"{st // 100}xx" if st else "no answer"
            classes[key] = classes.get(key, 0) + 1
        rows.append(f"| {a} | {len(v):,} | {pct(ms, 50):.0f} / {pct(ms, 95):.0f} | "
                    + ", ".join(f"{k} {n:,}" for k, n in sorted(classes.items())) + " |")
    per_k = 1000 / r["users"]
    print(r["errors"][:5], flush=True)
    return f"""#### {r['users']:,} users

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {commit()}; measured phase {r['seconds']:.0f} s after a ramp of one think time.

| action | requests | p50 / p95 ms | answers |
|---|---|---|---|
{chr(10).join(rows)}

- Requests {requests_n:,} ({requests_n / r['seconds']:.0f}/s): 5xx **{five}** ({100 * five / max(1, requests_n):.3f} %; target < 0.025 %), no answer {failed}.
- Live connections: {r['connected']:,} opened, {r['held']:,} held at the end, {r['dropped']} dropped.
- CPU (100 % = one core): the deployment {r['cpu_deploy']:.0f} % (nginx {r['cpu_parts']['nginx']:.0f} %, web processes
  {r['cpu_parts']['web']:.0f} %, media worker {r['cpu_parts']['media']:.0f} %), i.e.
  {r['cpu_deploy'] * per_k:.0f} % per 1,000 users; PostgreSQL + Redis {r['cpu_infra']:.0f} %
  ({r['cpu_infra'] * per_k:.0f} % per 1,000); the load generator {r['client_cpu']:.0f} %.
- Memory: the web processes (each `flask serve` with its gunicorn master and worker and search worker)
  {r['rss_base']:,.0f} MB before anyone connected, {r['web_rss']:,.0f} MB at the end of the measured phase:
  {(r['web_rss'] - r['rss_base']) * per_k:,.0f} MB more per 1,000 users.
- Load average before → after: {r['load']}.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--web", type=int, default=3, help="web processes behind nginx (default 3)")
    ap.add_argument("--client-processes", type=int, default=2)
    ap.add_argument("--think", type=float, default=20.0, help="mean seconds between a user's actions (default 20)")
    ap.add_argument("--seconds", type=float, default=180.0, help="length of the measured phase (default 180)")
    ap.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    args = ap.parse_args()
    ready_for_deployment()
    parts = [one_size(args, n) for n in args.users]
    text = f"""{SECTION}

`bench/workload.py` on {machine(("gunicorn", "gevent", "aiohttp"))}; nginx in front.
The reference deployment (docs/deploy/; tests/deployment_support.py): nginx with TLS, {args.web} web processes, Redis,
PostgreSQL (search backend as in docs/deploy/collab.env), one media worker, a fresh one for each size. Simulated
users, each an account of its own in rooms of {ROOM_SIZE} ({THREADS_PER_ROOM} threads of {REPLIES_PER_THREAD + 1}
posts each to start), each holding a live connection to their room and every {args.think:g} s on average (uniform
± half) doing one of: read a thread of their room (API, 50 %), reply (20 %), search one or two words (15 %), react
to a post (15 %); kept-alive HTTPS per user, {args.client_processes} client processes on the same 2 cores as the
deployment, PostgreSQL and Redis.

{chr(10).join(parts)}"""
    print("\n" + text)
    if args.write:
        write_section(SECTION, text)
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
