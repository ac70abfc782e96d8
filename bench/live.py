#!/usr/bin/env python
"""Live fan-out benchmark of Collab (issue 3): `.venv/bin/python bench/live.py --help`.

What it does, for each N (default 100, 500, 1,000, 2,000):
  1. Starts the production server exactly as `make run` does, `flask --app wsgi
     serve` (gunicorn, one gevent worker, worker-connections 10000), on a fresh
     data folder (SQLite, the default install) in its own process group.
  2. Seeds it through the real services: an owner, 20 member accounts each with a
     personal access token, one private room and a thread.
  3. From this process (separate from the server) opens N authenticated
     Socket.IO connections with python-socketio's AsyncClient on one asyncio
     loop, WebSocket transport, tokens round-robin over the 20 accounts; each
     subscribes to the room.
  4. Posts replies through the JSON API (aiohttp, owner's token) at a steady rate
     and measures, for each post, the time from just before the HTTP POST is sent
     until the last of the N clients has received its `post.created` event
     (client ids tie events to posts; one clock, this process). That includes
     the HTTP request, the database write and the commit, then the fan-out.
  5. Records connections held at the end and connections dropped during the run,
     the server's CPU (the whole process group: supervisor, gunicorn master and
     worker, media worker; 100 % = one core) during the posting phase, the
     gunicorn worker's RSS, and the machine's load average.
  6. Prints a Markdown table and, with --write, puts it into docs/benchmarks.md
     under "## Live (issue 3)" (only that section is replaced).

The load generator shares the machine's cores with the server, so latencies
are upper bounds. Quick run: .venv/bin/python bench/live.py --clients 50 --posts 10
"""
from __future__ import annotations

import os
import sys

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse
import asyncio
import json
import platform
import resource
import statistics
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from support import ROOT, cpu_seconds, group_pids, rss_mb  # noqa: E402
from tests.liveserver import make_server  # noqa: E402

ACCOUNTS = 20
PASSWORD = "benchmark passphrase, long enough"
SECTION = "## Live (issue 3)"

SEED = r"""
import json, sys
from collab import create_app
app = create_app()
with app.app_context():
    from auth import services as accounts
    from rooms import services as rooms
    from rooms import posts as room_posts
    owner = accounts.create_user(email="owner@bench.example", name="Bench Owner", password=PASSWORD)
    room = rooms.create_room(owner, name="Fan-out room", visibility="private")
    tokens = []
    for i in range(ACCOUNTS):
        u = accounts.create_user(email=f"member{i}@bench.example", name=f"Member {i:02d}", password=PASSWORD)
        rooms.add_member(owner, room.id, user_id=u.id)
        tokens.append(accounts.create_token(u, "bench")[1])
    thread = room_posts.create_thread(owner, room.id, title="Fan-out", body="Replies follow.")
    print(json.dumps({"owner": accounts.create_token(owner, "bench")[1], "tokens": tokens,
                      "room_id": room.id, "thread_id": thread.id}))
"""


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the server's processes --------------------------------------------------------------------------

def gunicorn_worker(pgid: int) -> int:
    """The gunicorn worker: a gunicorn process whose parent is also gunicorn."""
    pids = group_pids(pgid)
    cmd = {}
    ppid = {}
    for pid in pids:
        try:
            cmd[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            pass
    for pid in pids:
        if "gunicorn" in cmd.get(pid, "") and "gunicorn" in cmd.get(ppid.get(pid, 0), ""):
            return pid
    raise RuntimeError(f"no gunicorn worker among {cmd}")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- one run --------------------------------------------------------------------------------------------

async def run_clients(url: str, seed: dict, n: int, posts: int, rate: float, server_pgid: int) -> dict:
    import aiohttp
    import socketio

    arrivals: dict[str, list[float]] = {}
    dropped = 0
    clients: list[socketio.AsyncClient] = []
    connector = aiohttp.TCPConnector(limit=0)
    http = aiohttp.ClientSession(connector=connector)

    def make_client(i: int) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False, http_session=http)

        @sio.on("post.created")
        async def _created(data):
            arrivals.setdefault(data["post"]["client_id"], []).append(time.perf_counter())

        @sio.on("disconnect")
        async def _gone(*_a):
            nonlocal dropped
            if not stopping:
                dropped += 1

        return sio

    stopping = False
    sem = asyncio.Semaphore(50)
    connect_errors: list[str] = []

    async def open_one(i: int):
        sio = make_client(i)
        async with sem:
            try:
                await sio.connect(url, auth={"token": seed["tokens"][i % len(seed["tokens"])]},
                                  transports=["websocket"], wait_timeout=60)
                ack = await sio.call("subscribe", {"room_id": seed["room_id"]}, timeout=60)
                if not ack.get("ok"):
                    connect_errors.append(str(ack))
            except Exception as exc:  # noqa: BLE001 - counted and reported, not hidden
                connect_errors.append(repr(exc))
        clients.append(sio)

    t_connect = time.perf_counter()
    await asyncio.gather(*(open_one(i) for i in range(n)))
    connect_s = time.perf_counter() - t_connect
    connected = sum(1 for c in clients if c.connected)
    await asyncio.sleep(3)  # let the presence messages of the arrivals settle

    pids = group_pids(server_pgid)
    worker = gunicorn_worker(server_pgid)
    cpu0, wall0 = cpu_seconds(pids), time.perf_counter()
    me0 = time.process_time()
    load_before = loadavg()
    sent: dict[str, float] = {}
    http_ms: list[float] = []
    headers = {"Authorization": f"Bearer {seed['owner']}"}
    post_url = f"{url}/api/v1/threads/{seed['thread_id']}/posts"
    for i in range(posts):
        cid = f"bench-{n}-{i}"
        t0 = time.perf_counter()
        sent[cid] = t0
        async with http.post(post_url, json={"body": f"Fan-out test post {i}", "client_id": cid},
                             headers=headers) as resp:
            assert resp.status == 201, (resp.status, await resp.text())
        http_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(max(0.0, t0 + 1 / rate - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and any(len(arrivals.get(c, [])) < connected for c in sent):
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - wall0
    cpu = (cpu_seconds(pids) - cpu0) / wall * 100
    client_cpu = (time.process_time() - me0) / wall * 100
    rss = rss_mb([worker])
    load_after = loadavg()

    fanout = []
    incomplete = 0
    for cid, t0 in sent.items():
        times = arrivals.get(cid, [])
        if len(times) < connected:
            incomplete += 1
        if times:
            fanout.append((max(times) - t0) * 1000)
    held = sum(1 for c in clients if c.connected)
    stopping = True
    await asyncio.gather(*(c.disconnect() for c in clients if c.connected), return_exceptions=True)
    await http.close()
    fanout.sort()

    def pct(p: float) -> float:
        return fanout[min(len(fanout) - 1, round(p / 100 * (len(fanout) - 1)))] if fanout else float("nan")

    return {"n": n, "connected": connected, "held": held, "dropped": dropped, "connect_errors": connect_errors[:5],
            "connect_s": round(connect_s, 1), "posts": posts, "incomplete_posts": incomplete,
            "p50": round(pct(50)), "p99": round(pct(99)), "max": round(fanout[-1]) if fanout else None,
            "http_p50": round(statistics.median(http_ms)), "cpu": round(cpu), "client_cpu": round(client_cpu),
            "rss": round(rss),
            "load_before": load_before, "load_after": load_after}


def start_server(data_dir: Path):
    server = make_server(data_dir, extra_env={"COLLAB_LIVE_POST_LIMIT": "100000 per minute"})
    server.start(timeout=60)
    env = dict(server.env, PASSWORD=PASSWORD, ACCOUNTS=str(ACCOUNTS))
    code = SEED.replace("PASSWORD", repr(PASSWORD)).replace("ACCOUNTS", str(ACCOUNTS))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        server.stop()
        raise RuntimeError(f"seeding failed:\n{out.stderr[-3000:]}")
    return server, json.loads(out.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    header = ("| clients N | held at end | dropped | fan-out p50 / p99 (max) ms | server CPU (1 core = 100 %) "
              "| worker RSS MB | HTTP POST p50 ms | load generator CPU | connect time s "
              "| load average before → after |")
    lines = [header,
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['held']:,} | {r['dropped']} | {r['p50']} / {r['p99']} ({r['max']}) "
                     f"| {r['cpu']} % | {r['rss']} | {r['http_p50']} | {r['client_cpu']} % | {r['connect_s']} "
                     f"| {r['load_before']} → {r['load_after']} |")
    return "\n".join(lines)


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
    ap.add_argument("--clients", type=int, nargs="+", default=[100, 500, 1000, 2000])
    ap.add_argument("--posts", type=int, default=40, help="posts per N (default 40)")
    ap.add_argument("--rate", type=float, default=2.0, help="posts per second (default 2)")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    fds = raise_fd_limit()
    base = Path(args.data_dir) if args.data_dir else Path(f"/tmp/collab-bench-live-{os.getpid()}")
    results = []
    for n in args.clients:
        server, seed = start_server(base / f"n{n}")
        try:
            print(f"N={n}: server up at {server.url}, opening {n} connections…", flush=True)
            r = asyncio.run(run_clients(server.url, seed, n, args.posts, args.rate, server.proc.pid))
            print(json.dumps(r), flush=True)
            results.append(r)
        finally:
            server.stop()
    text = table(results)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in
                         ("Flask-SocketIO", "python-socketio", "python-engineio", "gunicorn", "gevent",
                          "simple-websocket"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=False,
                            text=True).stdout.strip() or "unknown"
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), platform.processor())
    section = f"""{SECTION}

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/live.py` at commit {commit} on {os.cpu_count()} cores ({cpu_model}),
{platform.system()} {platform.release()}, Python {platform.python_version()}; {versions}; open files limit {fds}.
Server: the production command `flask --app wsgi serve` (gunicorn, 1 gevent worker, worker-connections 10,000), SQLite.
Clients: one separate process, python-socketio AsyncClient on one asyncio loop, WebSocket only, token auth,
{ACCOUNTS} accounts round-robin, all subscribed to one room; {args.posts} replies per N posted through the JSON API at
{args.rate:g}/s. Fan-out = from just before the HTTP POST is sent until the last client has the `post.created`
event (so it includes the HTTP request, the write and the commit). Server CPU = the whole server process group
during the posting phase. The load generator runs on the same cores, and other work was running on the machine
(load average in the last column), so the latencies are upper bounds.

{text}
"""
    print("\n" + section)
    if args.write:
        write_docs(section)
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
