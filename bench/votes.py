#!/usr/bin/env python
"""Votes benchmark (issue 13): `.venv/bin/python bench/votes.py` (one command; `--help` for options).

1. A fresh data folder, migrated (SQLite, the default install; `--database-url` for PostgreSQL), seeded in
   a separate process through the real services: one private room (ideas on, budget 10), two ideas and
   two single-choice polls (4 options, results shown always), N accounts (default 1,000), members with
   personal access tokens.
2. The production server, `flask --app wsgi serve` (gunicorn, one gevent worker).
3. W watchers (default 500): Socket.IO clients in separate processes (2 by default), each signed in as
   one of the accounts and subscribed to the room; each notes when it hears every `poll.tally`.
4. Four runs, each account voting once, C votes in flight (default 50), from this process:
   idea over the JSON API (`POST /api/v1/ideas/<id>/vote`), poll over the API
   (`POST /api/v1/polls/<id>/votes`), then, with one Socket.IO connection per account opened beforehand
   (not timed), idea over Socket.IO (`idea.vote`) and poll over Socket.IO (`poll.vote`).
5. Checks per run: every vote accepted; the answers' counts are each of 1..N once (none lost or doubled);
   the stored tally read back is N (polls: per option, what was sent); latency p50/p99 from sending to
   the answer; wall time within 10 s. Poll runs: every watcher's last tally is the stored one, and the
   live-tally latency p50/p99 over every (vote, watcher) pair: from the vote's send to the watcher
   hearing a tally that includes it (a tally of k voters includes the k-th vote committed).
6. Prints the table and the load average; `--write` replaces the "Votes (issue 13)" section of
   docs/benchmarks.md (and drops the older "Idea votes" and "Poll votes" sections).
"""
from __future__ import annotations

import support  # noqa: F401  (first: sets sys.path)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import aiohttp  # noqa: E402

from support import ROOT, commit, loadavg, machine, make_server, pct, seed, write_section  # noqa: E402

SECTION = "## Votes (issue 13)"
OLD_SECTIONS = ("## Idea votes (issue 13)", "## Poll votes (issue 13)")
OPTIONS = ["Earlies", "Lates", "Nights", "Rest days"]

SEED = r"""
import json, sys
N = int(sys.argv[1])
with app.app_context():
    from auth import services as accounts
    from auth.models import Organisation
    from collab.extensions import db
    from rooms import services as rooms
    from rooms.ideas import services as ideas
    from rooms.polls import services as polls
    db.begin_write(); org = Organisation(name="Bench Constabulary", kind="force"); db.session.add(org)
    db.session.commit()
    pw = "benchmark passphrase, long enough"
    owner = accounts.create_user(email="owner@bench.example.org", name="Bench Owner", password=pw, kind="staff",
                                 role="member", organisation_id=org.id)
    room = rooms.create_room(owner, name="Votes room", visibility="private")
    ideas.update_settings(owner, room.id, enabled=True, vote_budget=10)
    idea_ids = [ideas.create_idea(owner, room.id, title=t, body="One page, not four.").id
                for t in ("Shorter handover forms", "Body cameras charged at the desk")]
    poll_ids = [polls.create_poll(owner, room.id, question=q, kind="single",
                                  options=["Earlies", "Lates", "Nights", "Rest days"]).id
                for q in ("Which shift pattern?", "Which training day?")]
    tokens = []
    for i in range(N):
        u = accounts.create_user(email=f"voter{i}@bench.example.org", name=f"Voter {i:04d}", password=pw,
                                 kind="staff", role="member", organisation_id=org.id)
        rooms.add_member(owner, room.id, user_id=u.id)
        tokens.append(accounts.create_token(u, "bench")[1])
    print(json.dumps({"owner": accounts.create_token(owner, "bench")[1], "tokens": tokens, "room_id": room.id,
                      "ideas": idea_ids, "polls": poll_ids}))
"""


# -- watchers (child processes) -----------------------------------------------------------------------

async def watch(url: str, room_id: int, tokens: list[str]) -> None:
    """Child: connect and subscribe every token, say "ready", note each poll.tally until told to stop,
    then print {"heard": [[poll_id, voters, time], ...] per watcher, "errors": [...]}."""
    import socketio

    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    heard: list[list] = [[] for _ in tokens]
    errors: list[str] = []
    clients = []
    dropped = [0]
    stopping = [False]
    sem = asyncio.Semaphore(25)

    async def one(i: int, token: str) -> None:
        sio = socketio.AsyncClient(reconnection=False, http_session=http)

        @sio.on("poll.tally")
        async def _tally(d):
            heard[i].append([d["poll_id"], d["results"]["voters"], time.time()])

        @sio.on("disconnect")
        async def _gone(*_a):
            if not stopping[0]:
                dropped[0] += 1   # the server let it go (e.g. no ping answer in time on a starved machine)

        async with sem:
            try:
                await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=120)
                ack = await sio.call("subscribe", {"room_id": room_id}, timeout=120)
                if not ack.get("ok"):
                    errors.append(str(ack)[:200])
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(repr(exc)[:200])
        clients.append(sio)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
    print(json.dumps({"ready": sum(1 for c in clients if c.connected), "errors": errors}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)   # "stop"
    stopping[0] = True
    print(json.dumps({"heard": heard, "errors": errors, "dropped": dropped[0]}), flush=True)
    for c in clients:
        try:
            await c.disconnect()
        except Exception:  # noqa: BLE001
            pass
    await http.close()


def start_watchers(url: str, room_id: int, tokens: list[str], procs: int) -> list[subprocess.Popen]:
    out = []
    for k in range(procs):
        share = tokens[k::procs]
        p = subprocess.Popen([sys.executable, __file__, "--watcher", url, str(room_id)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
        p.stdin.write(json.dumps(share) + "\n")
        p.stdin.flush()
        out.append(p)
    return out


# -- voting -------------------------------------------------------------------------------------------

async def api_votes(url: str, path: str, tokens: list[str], bodies: list, conc: int, count) -> dict:
    sem = asyncio.Semaphore(conc)
    res: list = [None] * len(tokens)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as http:
        async def one(i: int) -> None:
            async with sem:
                t0 = time.time()
                async with http.post(url + path, json=bodies[i],
                                     headers={"Authorization": f"Bearer {tokens[i]}"}) as r:
                    body = await r.json()
                res[i] = (t0, time.time(), r.status in (200, 201), count(body) if r.status in (200, 201) else None)
                if r.status not in (200, 201):
                    errors[str(r.status)] = errors.get(str(r.status), 0) + 1
        errors: dict[str, int] = {}
        w0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(len(tokens))))
        wall = time.perf_counter() - w0
    return {"wall": wall, "res": res, "errors": errors}


async def socket_votes(clients: list, event: str, payloads: list, conc: int, count) -> dict:
    sem = asyncio.Semaphore(conc)
    res: list = [None] * len(clients)
    errors: dict[str, int] = {}

    async def one(i: int) -> None:
        async with sem:
            t0 = time.time()
            try:
                ack = await clients[i].call(event, payloads[i], timeout=120)
            except Exception as exc:  # noqa: BLE001 - a vote with no answer: counted
                ack = {"ok": False, "error": {"code": type(exc).__name__}}
            if not ack.get("ok"):
                errors[str((ack.get("error") or {}).get("code"))] = errors.get(str((ack.get("error") or {}).get("code")), 0) + 1
            res[i] = (t0, time.time(), bool(ack.get("ok")), count(ack) if ack.get("ok") else None)
    w0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(clients))))
    return {"wall": time.perf_counter() - w0, "res": res, "errors": errors,
            "connected": sum(1 for c in clients if c.connected)}


async def connect_voters(url: str, tokens: list[str]) -> tuple[list, aiohttp.ClientSession, list[str]]:
    import socketio

    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    clients = [socketio.AsyncClient(reconnection=False, http_session=http) for _ in tokens]
    errors: list[str] = []
    sem = asyncio.Semaphore(25)

    async def one(c, token):
        async with sem:
            try:
                await c.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=120)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc)[:200])
    await asyncio.gather(*(one(c, t) for c, t in zip(clients, tokens)))
    return clients, http, errors


async def get_json(url: str, path: str, token: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + path, headers={"Authorization": f"Bearer {token}"}) as r:
            return await r.json()


def summarise(run: dict, n: int) -> dict:
    res = run["res"]
    ok = [r for r in res if r and r[2]]
    lat = [(r[1] - r[0]) * 1000 for r in ok]
    counts = sorted(r[3] for r in ok)
    return {"votes": n, "accepted": len(ok), "wall": run["wall"], "p50": pct(lat, 50), "p99": pct(lat, 99),
            "counts_exact": counts == list(range(1, n + 1)), "errors": run.get("errors", {})}


def live_latency(run: dict, heard: list[list], poll_id: int, final: int) -> dict:
    """Per (vote, watcher): first tally with voters >= the vote's count, minus the vote's send time."""
    sends = {r[3]: r[0] for r in run["res"] if r and r[2]}
    lat: list[float] = []
    missing = 0
    last_ok = 0
    for w in heard:
        tallies = sorted((t, v) for p, v, t in w if p == poll_id)
        if tallies and tallies[-1][1] == final:
            last_ok += 1
        j, best = 0, -1
        # walk votes by count; a watcher's tallies by arrival (voters only grow within one poll)
        by_count = sorted(sends.items())
        for k, sent in by_count:
            while j < len(tallies) and tallies[j][1] < k:
                j += 1
            if j == len(tallies):
                missing += 1
                continue
            best = tallies[j][0]
            lat.append((best - sent) * 1000)
    return {"watchers": len(heard), "last_tally_exact": last_ok, "pairs": len(lat), "missing": missing,
            "p50": pct(lat, 50), "p99": pct(lat, 99),
            "tallies": sum(1 for w in heard for p, _v, _t in w if p == poll_id)}


async def main_async(args, server, s: dict) -> dict:
    url, n = server.url, len(s["tokens"])
    rng = random.Random(13)
    choices = [rng.randrange(len(OPTIONS)) for _ in range(n)]
    sent_totals = [choices.count(i) for i in range(len(OPTIONS))]
    out: dict = {"n": n, "rows": []}
    watchers = start_watchers(url, s["room_id"], s["tokens"][: args.watchers], args.watcher_procs) \
        if args.watchers else []
    ready, werrs = 0, []
    for p in watchers:
        line = json.loads(await asyncio.get_running_loop().run_in_executor(None, p.stdout.readline))
        ready += line["ready"]
        werrs += line["errors"]
    out["watchers_ready"], out["watcher_errors"] = ready, werrs[:5]
    print(f"{ready} watchers connected and subscribed ({len(werrs)} errors)", flush=True)
    await asyncio.sleep(3)   # presence of the arrivals settles

    idea_count = lambda b: (b.get("idea") or b).get("votes")  # noqa: E731
    poll_count = lambda b: ((b.get("poll") or b).get("results") or {}).get("voters")  # noqa: E731
    runs = []
    r = await api_votes(url, f"/api/v1/ideas/{s['ideas'][0]}/vote", s["tokens"], [None] * n, args.concurrency,
                        idea_count)
    runs.append(("Idea", "JSON API", r, s["ideas"][0], "idea"))
    print("idea/API", summarise(r, n), flush=True)
    r = await api_votes(url, f"/api/v1/polls/{s['polls'][0]}/votes", s["tokens"],
                        [{"choices": [c]} for c in choices], args.concurrency, poll_count)
    runs.append(("Poll", "JSON API", r, s["polls"][0], "poll"))
    print("poll/API", summarise(r, n), flush=True)
    clients, http, cerrs = await connect_voters(url, s["tokens"])
    out["voter_connect_errors"] = cerrs[:5]
    print(f"{sum(1 for c in clients if c.connected)} voter connections ({len(cerrs)} errors)", flush=True)
    r = await socket_votes(clients, "idea.vote", [{"idea_id": s["ideas"][1]}] * n, args.concurrency, idea_count)
    runs.append(("Idea", "Socket.IO", r, s["ideas"][1], "idea"))
    print("idea/socket", summarise(r, n), flush=True)
    r = await socket_votes(clients, "poll.vote", [{"poll_id": s["polls"][1], "choices": [c]} for c in choices],
                           args.concurrency, poll_count)
    runs.append(("Poll", "Socket.IO", r, s["polls"][1], "poll"))
    print("poll/socket", summarise(r, n), flush=True)
    out["load_after_votes"] = loadavg()
    await asyncio.sleep(2)   # the last coalesced tallies reach the watchers
    heard: list = []
    for p in watchers:
        p.stdin.write("stop\n")
        p.stdin.flush()
    for p in watchers:
        line = await asyncio.get_running_loop().run_in_executor(None, p.stdout.readline)
        got = json.loads(line)
        heard += got["heard"]
        out["watchers_dropped"] = out.get("watchers_dropped", 0) + got["dropped"]
        p.wait(timeout=120)
    for c in clients:
        try:
            await c.disconnect()
        except Exception:  # noqa: BLE001
            pass
    await http.close()
    for what, via, r, target, kind in runs:
        row = summarise(r, n) | {"what": what, "via": via}
        if kind == "idea":
            got = await get_json(url, f"/api/v1/ideas/{target}", s["owner"])
            row["stored"] = got["votes"]
            row["tally_exact"] = got["votes"] == n
        else:
            got = await get_json(url, f"/api/v1/polls/{target}", s["owner"])
            row["stored"] = got["results"]["voters"]
            row["tally_exact"] = got["results"]["voters"] == n and got["results"]["totals"] == sent_totals
            if watchers:
                row["live"] = live_latency(r, heard, target, n)
        out["rows"].append(row)
    return out


def _ms(v: float) -> str:
    return "–" if v != v else f"{v:.0f}"   # NaN: no watcher heard a tally


def section(out: dict, db: str, args) -> str:
    lines = [SECTION, "",
             f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/votes.py` at commit {commit()}; "
             f"{machine()}. Server: the production command `flask --app wsgi serve` (gunicorn, one gevent worker), "
             f"{db}. Clients in separate processes from the server: the voters on one asyncio loop (aiohttp, "
             f"python-socketio AsyncClient, WebSocket, token auth), {args.concurrency} votes in flight; "
             f"{out['watchers_ready']} watchers (Socket.IO clients subscribed to the room) in {args.watcher_procs} "
             f"more processes. {out['n']:,} accounts, members of one private room, each vote once per run on its own "
             f"idea or poll (single choice, 4 options, results shown always). Load average (1, 5, 15 min) at the "
             f"start: {out['load_start']}; after the votes: {out['load_after_votes']}. "
             "The machine is shared with other engineers' work, so these are upper bounds; rerun with "
             "`.venv/bin/python bench/votes.py --write` on a quiet machine.", "",
             "| Votes on | Over | Votes | Accepted | Wall s | Within 10 s | p50 ms | p99 ms | Counts 1..N once | "
             "Stored tally exact | Live tally p50 ms | Live tally p99 ms | Watchers with the final tally |",
             "|---|---|---:|---:|---:|---|---:|---:|---|---|---:|---:|---:|"]
    for r in out["rows"]:
        live = r.get("live")
        lines.append(
            f"| {r['what']} | {r['via']} | {r['votes']:,} | {r['accepted']:,} | {r['wall']:.2f} | "
            f"{'yes' if r['wall'] <= 10 else '**no**'} | {r['p50']:.0f} | {r['p99']:.0f} | "
            f"{'yes' if r['counts_exact'] else '**NO**'} | {'yes' if r['tally_exact'] else '**NO**'} | "
            + (f"{_ms(live['p50'])} | {_ms(live['p99'])} | {live['last_tally_exact']}/{live['watchers']} |"
               if live else "– | – | – |"))
    lines += ["", f"Watcher connections the server dropped during the runs: {out.get('watchers_dropped', 0)} of "
              f"{out['watchers_ready']}. Votes not accepted, by reason: "
              + ("; ".join(f"{r['what']} over {r['via']}: {r['errors']}" for r in out["rows"] if r["errors"]) or "none")
              + "."]
    lives = [r["live"] for r in out["rows"] if r.get("live")]
    if lives:
        lines += ["", "Live tallies: " + "; ".join(
            f"{r['via']} poll run: {r['live']['tallies']:,} `poll.tally` messages reached the watchers in all "
            f"({r['live']['tallies'] / max(1, r['live']['watchers']):.1f} each, coalesced from {r['votes']:,} "
            f"votes), {r['live']['missing']} (vote, watcher) pairs never saw a tally including the vote"
            for r in out["rows"] if r.get("live")) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--watchers", type=int, default=500)
    ap.add_argument("--watcher-procs", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in the data folder)")
    ap.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    ap.add_argument("--watcher", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.watcher:
        tokens = json.loads(sys.stdin.readline())
        asyncio.run(watch(args.watcher[0], int(args.watcher[1]), tokens))
        return 0
    server = make_server(Path(f"/tmp/collab-bench-votes-{os.getpid()}"), database_url=args.database_url)
    t0 = time.perf_counter()
    s = seed(server, SEED, str(args.accounts))
    print(f"seeded {args.accounts} accounts in {time.perf_counter() - t0:.1f} s", flush=True)
    server.start(timeout=180)   # a loaded machine starts it slowly
    try:
        load_start = loadavg()
        out = asyncio.run(main_async(args, server, s))
        out["load_start"] = load_start
    finally:
        server.stop()
    db = "PostgreSQL" if args.database_url else "SQLite"
    text = section(out, db, args)
    print("\n" + text, flush=True)
    if args.write:
        write_section(SECTION, text, drop=OLD_SECTIONS)
        print("written to docs/benchmarks.md")
    exact = all(r["accepted"] == r["votes"] and r["counts_exact"] and r["tally_exact"] for r in out["rows"])
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
