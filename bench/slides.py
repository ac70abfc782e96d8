#!/usr/bin/env python
"""Presenter-sync benchmark of hybrid meetings (issue 6): `.venv/bin/python bench/slides.py --help`.

The target: every participant's slide view follows the presenter within 300 ms.

What it does:
  1. Starts the production server as `make run` does (`flask --app wsgi serve`) on a
     fresh data folder (SQLite), in its own process group.
  2. Seeds it through the real services: a chair and N-1 participants (default N = 50,
     the largest meeting the issue names), each with a personal access token, a room,
     a scheduled meeting and a 10-page PDF deck converted to slide images.
  3. From this process opens one authenticated Socket.IO connection per person
     (python-socketio AsyncClient, WebSocket transport); each sends `meeting_join`.
  4. The chair moves the slides (`meeting_slide`) --changes times, one change every
     --interval seconds, and for each change measures the time from just before the
     chair's event is sent until the last of the N-1 participants has received the
     `meeting.state` showing that page (one clock, this process). It also fetches
     that slide's image (`/meetings/<id>/decks/<id>/pages/<n>.png`, as the pages do) with
     one participant's session and reports that time separately.
  5. Prints a Markdown table; with --write it replaces "## Slides (issue 6)" in
     docs/benchmarks.md.

The load generator shares the machine's cores with the server, so the latencies are
upper bounds. Quick run: .venv/bin/python bench/slides.py --people 10 --changes 10
"""
from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on sys.path, and bench/http.py would hide the standard
# library's `http` package. Take the folder off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.liveserver import make_server  # noqa: E402

PASSWORD = "benchmark passphrase, long enough"
SECTION = "## Slides (issue 6)"
PAGES = 10

SEED = r"""
import io, json, sys
from fpdf import FPDF
from collab import create_app
app = create_app()
with app.app_context():
    from auth import services as accounts
    from rooms import services as rooms
    from rooms.meetings import conversion, decks, schedule
    chair = accounts.create_user(email="chair@bench.example", name="Bench Chair", password=PASSWORD)
    room = rooms.create_room(chair, name="Plenary room", visibility="private")
    tokens = []
    for i in range(PEOPLE - 1):
        u = accounts.create_user(email=f"p{i}@bench.example", name=f"Participant {i:02d}", password=PASSWORD)
        rooms.add_member(chair, room.id, user_id=u.id)
        tokens.append(accounts.create_token(u, "bench")[1])
    meeting = schedule.schedule_meeting(chair, room.id, title="Plenary", starts_at="2030-01-01T10:00:00Z")
    doc = FPDF(orientation="L")
    doc.set_font("helvetica", size=60)
    for i in range(PAGES):
        doc.add_page()
        doc.cell(text=f"Slide {i + 1}")
    deck = decks.upload(chair, meeting.id, io.BytesIO(bytes(doc.output())), "plenary.pdf", background=False)
    assert conversion.convert(deck.id) == "ready"
    print(json.dumps({"chair": accounts.create_token(chair, "bench")[1], "tokens": tokens,
                      "meeting_id": meeting.id, "deck_id": deck.id, "email": "p0@bench.example"}))
"""


def group_cpu(pgid: int) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


async def run(url: str, seed: dict, changes: int, interval: float, pgid: int) -> dict:
    import aiohttp
    import socketio

    mid, did = seed["meeting_id"], seed["deck_id"]
    seen: dict[int, list[float]] = {}
    clients = []

    def follower() -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)

        @sio.on("meeting.state")
        async def _state(data):
            if data.get("meeting_id") == mid and data.get("deck_id") == did:
                seen.setdefault(data["version"], []).append(time.perf_counter())

        return sio

    errors: list[str] = []
    for tok in seed["tokens"]:
        sio = follower()
        try:
            await sio.connect(url, auth={"token": tok}, transports=["websocket"], wait_timeout=30)
            ack = await sio.call("meeting_join", {"meeting_id": mid}, timeout=30)
            if not ack.get("ok"):
                errors.append(str(ack))
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append(repr(exc))
        clients.append(sio)
    chair = socketio.AsyncClient(reconnection=False)
    await chair.connect(url, auth={"token": seed["chair"]}, transports=["websocket"], wait_timeout=30)
    await chair.call("meeting_join", {"meeting_id": mid}, timeout=30)
    n = sum(1 for c in clients if c.connected)

    # one participant's browser session, for the slide images
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(f"{url}/login") as r:
        page = await r.text()
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    async with http.post(f"{url}/login", data={"email": seed["email"], "password": PASSWORD,
                                               **({"csrf_token": csrf.group(1)} if csrf else {})},
                         allow_redirects=False) as r:
        assert r.status == 302, (r.status, (await r.text())[:300])

    await asyncio.sleep(1)
    cpu0, wall0, load0 = group_cpu(pgid), time.perf_counter(), loadavg()
    follow_ms: list[float] = []
    image_ms: list[float] = []
    incomplete = 0
    for i in range(changes):
        page_no = (i % (PAGES - 1)) + 2 if i % 2 == 0 else 1
        t0 = time.perf_counter()
        ack = await chair.call("meeting_slide", {"meeting_id": mid, "deck_id": did, "page": page_no}, timeout=30)
        assert ack.get("ok"), ack
        version = ack["version"]
        deadline = t0 + 5
        while len(seen.get(version, [])) < n and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        got = seen.get(version, [])
        if len(got) < n:
            incomplete += 1
        if got:
            follow_ms.append((max(got) - t0) * 1000)
        t1 = time.perf_counter()
        async with http.get(f"{url}/meetings/{mid}/decks/{did}/pages/{page_no}.png") as r:
            body = await r.read()
            assert r.status == 200 and body[:4] == b"\x89PNG", r.status
        image_ms.append((time.perf_counter() - t1) * 1000)
        await asyncio.sleep(max(0.0, t0 + interval - time.perf_counter()))
    wall = time.perf_counter() - wall0
    cpu = (group_cpu(pgid) - cpu0) / wall * 100
    await http.close()
    for c in [*clients, chair]:
        if c.connected:
            await c.disconnect()

    def pct(values: list[float], p: float) -> float:
        v = sorted(values)
        return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")

    return {"people": n + 1, "followers": n, "changes": changes, "incomplete": incomplete, "errors": errors[:3],
            "p50": round(pct(follow_ms, 50)), "p95": round(pct(follow_ms, 95)),
            "max": round(max(follow_ms)) if follow_ms else None,
            "img_p50": round(pct(image_ms, 50)), "img_max": round(max(image_ms)) if image_ms else None,
            "cpu": round(cpu), "load": f"{load0} → {loadavg()}"}


def table(r: dict) -> str:
    return "\n".join([
        SECTION, "",
        "`bench/slides.py`: the chair moves the slides; time from the chair's `meeting_slide` until the last "
        "participant's connection has the new state, and one participant's fetch of that slide image. "
        "Load generator on the same 2-core machine, so these are upper bounds.", "",
        "| people | slide changes | incomplete | follow p50 / p95 (max) ms | slide image p50 (max) ms "
        "| server CPU (1 core = 100 %) | load average before → after |",
        "|---|---|---|---|---|---|---|",
        f"| {r['people']} | {r['changes']} | {r['incomplete']} | {r['p50']} / {r['p95']} ({r['max']}) "
        f"| {r['img_p50']} ({r['img_max']}) | {r['cpu']} % | {r['load']} |", ""])


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
    ap.add_argument("--people", type=int, default=50, help="chair + participants (default 50)")
    ap.add_argument("--changes", type=int, default=60, help="slide changes (default 60)")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between changes (default 0.5)")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    base = Path(args.data_dir) if args.data_dir else Path(f"/tmp/collab-bench-slides-{os.getpid()}")
    server = make_server(base)
    server.start(timeout=60)
    try:
        code = SEED.replace("PASSWORD", repr(PASSWORD)).replace("PEOPLE", str(args.people)) \
            .replace("PAGES", str(PAGES))
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=server.env, capture_output=True, text=True,
                             check=False)
        if out.returncode:
            raise RuntimeError(f"seeding failed:\n{out.stderr[-3000:]}")
        seed = json.loads(out.stdout.strip().splitlines()[-1])
        r = asyncio.run(run(server.url, seed, args.changes, args.interval, server.proc.pid))
    finally:
        server.stop()
    print(json.dumps(r))
    text = table(r)
    print(text)
    if args.write:
        write_docs(text)
    return 0 if r["incomplete"] == 0 and not r["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
