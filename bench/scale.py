#!/usr/bin/env python
"""Scale benchmark of the reference deployment (issue 17): `.venv/bin/python bench/scale.py --help`.

What it brings up: the deployment operators copy from docs/deploy/ (tests/deployment_support.py: nginx with TLS
and its sticky hash on the session cookie, `--web` web processes started as collab-web@.service starts them, one
media worker, PostgreSQL and Redis shared), seeded through the real services.

fan-out: N Socket.IO clients (bench/socket_client.py: a minimal client on aiohttp's WebSocket, token auth over TLS through nginx,
each with its own session cookie so nginx spreads them over the web processes as it spreads people) in
`--client-processes` separate processes, all subscribed to one room. Replies are posted through the JSON API (also
through nginx) at a steady rate; for each post, the time from just before the HTTP POST is sent until the last
client has its `post.created` event: the write, the commit, Redis between the web processes, every process's
fan-out and nginx. Clock: CLOCK_MONOTONIC, the same in every process of this machine. Also: connections held per
web process (each one's own /metrics), connections dropped, CPU of the deployment's processes, of PostgreSQL and
Redis, and of the load generator, and the web processes' memory.

The load generator shares the machine's cores with the deployment, so the latencies are upper bounds.
Quick run: .venv/bin/python bench/scale.py --clients 300 --posts 10
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import ssl  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import aiohttp  # noqa: E402
import requests  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from support import (CpuMeter, commit, deployment_pids, loadavg, local, machine, pct,  # noqa: E402
                     ready_for_deployment, rss_mb, seed, write_section)
from tests.deployment_support import deployment  # noqa: E402

socket_client = local("socket_client")

SECTION = "## Scale (issue 17)"
ACCOUNTS = 20
PASSWORD = "benchmark passphrase, long enough"
SEED = f"""
import json
with app.app_context():
    from auth import services as accounts
    from rooms import services as rooms
    from rooms import posts as room_posts
    owner = accounts.create_user(email="owner@bench.example", name="Bench Owner", password={PASSWORD!r})
    room = rooms.create_room(owner, name="Fan-out room", visibility="private")
    tokens = []
    for i in range({ACCOUNTS}):
        u = accounts.create_user(email=f"member{{i}}@bench.example", name=f"Member {{i:02d}}", password={PASSWORD!r})
        rooms.add_member(owner, room.id, user_id=u.id)
        tokens.append(accounts.create_token(u, "bench")[1])
    thread = room_posts.create_thread(owner, room.id, title="Fan-out", body="Replies follow.")
    print(json.dumps({{"owner": accounts.create_token(owner, "bench")[1], "tokens": tokens,
                      "room_id": room.id, "thread_id": thread.id}}))
"""


# -- a client process -----------------------------------------------------------------------------------------

def client_process(url: str, ca: str, seeded: dict, first: int, n: int, out: mp.Queue, stop: mp.Event) -> None:
    """Open clients first..first+n-1, report how many are up, then record every post.created until `stop`;
    report (post client id -> (events received, time of the last)), connections dropped and held."""
    os.environ["SSL_CERT_FILE"] = ca   # the deployment's test CA (engine.io's default TLS context)
    asyncio.run(_clients(url, ca, seeded, first, n, out, stop))


async def _clients(url: str, ca: str, seeded: dict, first: int, n: int, out: mp.Queue, stop: mp.Event) -> None:
    arrivals: dict[str, list] = {}
    state = {"dropped": 0, "stopping": False}
    errors: list[str] = []
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=ssl.create_default_context(cafile=ca)))
    sockets: list = []
    tasks = []
    sem = asyncio.Semaphore(40)

    def on_post(cid: str, at: float) -> None:
        got = arrivals.setdefault(cid, [0, 0.0])
        got[0] += 1
        got[1] = at

    def on_closed() -> None:
        if not state["stopping"]:
            state["dropped"] += 1

    async def open_one(i: int) -> None:
        async with sem:
            try:
                ws = await socket_client.connect(http, url, seeded["tokens"][i % len(seeded["tokens"])],
                                                 f"bench-client-{i}", seeded["room_id"])
            except Exception as exc:  # noqa: BLE001 - counted and reported, not hidden
                errors.append(repr(exc))
                return
        sockets.append(ws)
        tasks.append(asyncio.create_task(socket_client.listen(ws, on_post, on_closed)))

    t0 = time.monotonic()
    await asyncio.gather(*(open_one(first + i) for i in range(n)))
    cpu0 = time.process_time()
    out.put(("ready", sum(not ws.closed for ws in sockets), time.monotonic() - t0, errors[:3]))
    while not stop.is_set():
        await asyncio.sleep(0.2)
    held = sum(not ws.closed for ws in sockets)
    cpu = time.process_time() - cpu0
    state["stopping"] = True
    out.put(("done", {k: tuple(v) for k, v in arrivals.items()}, state["dropped"], held, cpu))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for t in tasks:
        t.cancel()
    await http.close()


# -- the run ----------------------------------------------------------------------------------------------

def socket_counts(d) -> dict[int, int]:
    """Socket.IO connections each web process holds, from its own /metrics (loopback is allowed)."""
    out = {}
    for p in d.web:
        text = urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=10).read().decode()
        m = re.search(r"^collab_socketio_connections(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
        out[p] = int(float(m.group(1))) if m else -1
    return out


def fanout(d, seeded: dict, n: int, procs: int, posts: int, rate: float, settle: float) -> dict:
    ctx = mp.get_context("fork")   # (nothing runs in this process yet: no loop, no threads)
    out, stop = ctx.Queue(), ctx.Event()
    share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=client_process, args=(d.url, d.ca, seeded, sum(share[:i]), share[i], out, stop),
                           daemon=True) for i in range(procs)]
    for w in workers:
        w.start()
    ready = [out.get(timeout=900) for _ in workers]
    connected = sum(r[1] for r in ready)
    connect_s = max(r[2] for r in ready)
    errors = [e for r in ready for e in r[3]]
    per_process = socket_counts(d)

    pids = deployment_pids(d)
    # Holding them, nothing posted: the arrivals' presence messages settle, and the figure is what the heartbeats
    # of 3,000 idle connections cost. (Opening them is the load generator's heaviest work: TLS handshakes.)
    idle = CpuMeter({"deployment": pids["deployment"]})
    time.sleep(settle)
    cpu_idle = idle.percent()["deployment"]
    load_before = loadavg()
    meter = CpuMeter({k: pids[k] for k in ("deployment", "infra")})
    sent: dict[str, float] = {}
    http_ms: list[float] = []
    poster = requests.Session()   # one kept-alive connection, as a browser's
    poster.trust_env, poster.verify = False, d.ca
    poster.headers.update({"Authorization": f"Bearer {seeded['owner']}"})
    poster.cookies.set("session", "bench-poster")
    post_url = f"{d.url}/api/v1/threads/{seeded['thread_id']}/posts"
    for i in range(posts):
        cid = f"scale-{n}-{i}"
        t0 = time.monotonic()
        sent[cid] = t0
        resp = poster.post(post_url, json={"body": f"Fan-out test post {i}", "client_id": cid}, timeout=60)
        assert resp.status_code == 201, (resp.status_code, resp.text[:300])
        http_ms.append((time.monotonic() - t0) * 1000)
        time.sleep(max(0.0, t0 + 1 / rate - time.monotonic()))
    time.sleep(10)  # the last posts' events still on their way
    cpu = meter.percent()
    wall = meter.elapsed()
    web_rss = rss_mb(pids["web"])
    load_after = loadavg()
    stop.set()
    done = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    arrivals: dict[str, list[tuple[int, float]]] = {}
    for r in done:
        for cid, got in r[1].items():
            arrivals.setdefault(cid, []).append(got)
    lat, incomplete = [], 0
    for cid, t0 in sent.items():
        got = arrivals.get(cid, [])
        if sum(g[0] for g in got) < connected:
            incomplete += 1
        if got:
            lat.append((max(g[1] for g in got) - t0) * 1000)
    return {"n": n, "connected": connected, "held": sum(r[3] for r in done), "dropped": sum(r[2] for r in done),
            "errors": errors[:3], "connect_s": connect_s, "per_process": per_process, "posts": posts,
            "incomplete": incomplete, "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat) if lat else None,
            "http_p50": pct(http_ms, 50), "cpu_deploy": cpu["deployment"], "cpu_idle": cpu_idle, "cpu_infra": cpu["infra"],
            "client_cpu": sum(r[4] for r in done) / wall * 100, "web_rss": web_rss,
            "load": f"{load_before} → {load_after}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=3000)
    ap.add_argument("--web", type=int, default=3, help="web processes behind nginx (default 3)")
    ap.add_argument("--client-processes", type=int, default=2)
    ap.add_argument("--posts", type=int, default=40)
    ap.add_argument("--rate", type=float, default=2.0, help="posts per second (default 2)")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds held idle before posting (default 30)")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = ap.parse_args()
    ready_for_deployment()
    tmp = Path(tempfile.mkdtemp(prefix="collab-bench-scale-"))

    def seed_it(d) -> None:
        d.seeded = seed(d, SEED)

    extra = {"COLLAB_LIVE_POST_LIMIT": "100000 per minute"}
    with deployment(tmp, web_processes=args.web, seed=seed_it, extra_env=extra,
                    nginx_connections=4 * args.clients + 1024) as d:
        print(f"deployment up at {d.url}: {args.web} web processes; opening {args.clients} clients "
              f"in {args.client_processes} processes…", flush=True)
        r = fanout(d, d.seeded, args.clients, args.client_processes, args.posts, args.rate, args.settle)
    print(r, flush=True)
    spread = ", ".join(f"{v:,}" for v in r["per_process"].values())
    row = (f"| {r['n']:,} | {args.web} | {r['held']:,} ({spread}) | {r['dropped']} | {r['incomplete']} "
           f"| {r['p50']:.0f} / {r['p99']:.0f} ({r['max']:.0f}) | {r['http_p50']:.0f} | {r['cpu_idle']:.0f} % / {r['cpu_deploy']:.0f} % "
           f"| {r['cpu_infra']:.0f} % | {r['client_cpu']:.0f} % | {r['web_rss']:.0f} | {r['connect_s']:.0f} "
           f"| {r['load']} |")
    text = f"""{SECTION}

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/scale.py` at commit {commit()} on {machine(("gunicorn", "gevent", "python-socketio", "aiohttp"))}; nginx in front.
The reference deployment (docs/deploy/, brought up by tests/deployment_support.py as the deployment test does):
nginx with TLS and its sticky hash on the session cookie, {args.web} web processes (`flask serve`, one gevent worker
each), Redis between them, PostgreSQL, one media worker. Clients over TLS through
nginx, WebSocket only, token auth, each with its own session cookie (as people have), in {args.client_processes}
processes, all subscribed to one room (a minimal Socket.IO client on aiohttp's WebSocket that looks only at
`post.created` frames: python-socketio's client, decoding every frame in Python, was the larger part of the
latency on these shared cores); {args.posts} replies posted through the JSON API at {args.rate:g}/s.
Fan-out = from just before the HTTP POST is sent until the last client has the `post.created` event (write,
commit, Redis, every web process's fan-out, nginx, TLS). CPU: 100 % = one core; "deployment" is nginx, the web
processes (each `flask serve` with its gunicorn master and worker and its search worker; their memory is the RSS
column) and the media worker; the load generator shares the 2 cores, so the latencies are upper bounds.

| clients | web processes | held at end (per process) | dropped | posts not seen by all | fan-out p50 / p99 (max) ms | HTTP POST p50 ms | deployment CPU, idle / posting | PostgreSQL + Redis CPU | load generator CPU | web processes' RSS MB | connect s | load average before → after |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
{row}

Target (issue 17): 3,000 clients, cross-process fan-out p99 < 500 ms, none dropped.
"""
    print("\n" + text)
    if args.write:
        write_section(SECTION, text)
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
