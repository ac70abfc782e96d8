#!/usr/bin/env python
"""Weak-link benchmark of issue 15: `.venv/bin/python bench/weak_link.py --help`.

The meeting of tests/weak_link_support.py (12 people, 9 simulcast cameras, one speaking) with one
subscriber behind a line of 600 kbit/s (a 200 ms queue), 80 ms delay and 1 % random loss, and one on a
good line (the control). Each run: the line is limited, 8 s to settle, three 5 s windows measured, the
limit lifted; what the weak subscriber got against issue 15's bar (≥ 98 % of the speaker's audio in time
to play, the speaker's video in every window, fewer cameras than the full set and a message saying so,
the control unaffected, back to all nine cameras within 15 s).

Two lines: `in-process` emulates it in the weak participant's process (media/linkemu.py; runs anywhere);
`netns` puts the weak participant in a network namespace with a veth pair limited by `tc … tbf` (root,
Debian's iproute2; netem adds delay and loss where the kernel has it, otherwise the weak process does).

Why a benchmark and not a test: on this 2-core machine the scenario passes most runs but not every run
(docs/benchmarks.md, "Weak links and simulcast"); a test that fails now and then would stop every change
from landing, and one that asserted less than the issue asks would prove nothing.
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from media.client import SyntheticParticipant  # noqa: E402
from media.linkemu import Downlink  # noqa: E402
from support import commit, loadavg  # noqa: E402
from tests.weak_link_support import CAMERAS, WeakLinkResult, WeakProcess, run_weak_link, worker_and_publishers  # noqa: E402

RATE = 600_000
DELAY, LOSS = 0.08, 0.01
NS = "collab-weak15"
HOST_IF, NS_IF = "cw15h", "cw15n"
HOST_IP, NS_IP = "192.0.2.241", "192.0.2.242"  # documentation range; never this machine's addresses


def shortfalls(r: WeakLinkResult) -> list[str]:
    """Issue 15's points this run missed (empty: every one met)."""
    missed = []
    if r.audio_ratio < 0.98:
        missed.append(f"audio {r.audio_ratio:.1%}")
    if not all(n > 0 for n in r.speaker_video_weak):
        missed.append("a window without the speaker's video")
    if not (r.cameras_weak < CAMERAS and any(m["cut"] > 0 and m["level"] in ("fair", "weak") for m in r.messages)):
        missed.append("no cut or no message")
    if not (r.cameras_control == CAMERAS and r.control_all_cameras and r.audio_control >= 0.98 * r.audio_sent):
        missed.append("the control was affected")
    if r.recovered_in is None or r.recovered_in > 15:
        missed.append("not back within 15 s")
    return missed


def in_process() -> WeakLinkResult:
    line = Downlink(None, latency=0.2, seed=15)

    async def make_weak(url, tok):
        return await SyntheticParticipant(url, tok, downlink=line).start()

    async def limit():
        line.rate, line.delay, line.loss = RATE, DELAY, LOSS

    async def lift():
        line.rate, line.delay, line.loss = None, 0.0, 0.0

    with worker_and_publishers() as url:
        return asyncio.run(asyncio.wait_for(run_weak_link(url, make_weak, limit, lift), 180))


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def _namespace():
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)  # left over by a killed run
    try:
        _run("ip", "netns", "add", NS)
        _run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS)
        _run("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        _run("ip", "link", "set", HOST_IF, "up")
        _run("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
        _run("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        _run("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        yield
    finally:
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def netns() -> WeakLinkResult:
    with _namespace():
        probe = subprocess.run(["tc", "qdisc", "add", "dev", HOST_IF, "root", "netem", "delay", "1ms"],
                               capture_output=True)
        subprocess.run(["tc", "qdisc", "del", "dev", HOST_IF, "root"], capture_output=True)
        has_netem = probe.returncode == 0
        weak: list[WeakProcess] = []

        async def start_weak(url, tok):
            weak.append(await WeakProcess(["ip", "netns", "exec", NS, sys.executable, "-m",
                                           "tests.weak_link_support", "weak", url, tok, "0", "0"]).start())
            return weak[0]

        async def limit():
            _run("tc", "qdisc", "add", "dev", HOST_IF, "root", "handle", "1:", "tbf", "rate",
                 f"{RATE // 1000}kbit", "burst", "6kb", "latency", "200ms")
            if has_netem:
                _run("tc", "qdisc", "add", "dev", HOST_IF, "parent", "1:1", "handle", "10:", "netem",
                     "delay", f"{int(DELAY * 1000)}ms", "loss", f"{LOSS * 100:g}%")
            else:
                await weak[0].ask(f"line {DELAY} {LOSS}")

        async def lift():
            _run("tc", "qdisc", "del", "dev", HOST_IF, "root")
            await weak[0].ask("lift")

        with worker_and_publishers(host=HOST_IP) as url:
            return asyncio.run(asyncio.wait_for(run_weak_link(url, start_weak, limit, lift), 240))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of each line")
    ap.add_argument("--line", choices=("in-process", "netns", "both"), default="both")
    args = ap.parse_args()
    lines = {"in-process": in_process, "netns": netns}
    chosen = list(lines) if args.line == "both" else [args.line]
    if "netns" in chosen and (os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("ip")):
        sys.exit("the netns line needs root and Debian's iproute2 (ip, tc): use --line in-process")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}, load average at the start {loadavg()}")
    print("| line | run | audio in time (weak / sent) | speaker's video frames per 5 s | cameras at the end "
          "| speaker's layer (width) | back to all 9 | issue 15's bar |")
    print("|---|---|---|---|---|---|---|---|")
    met = {name: 0 for name in chosen}
    for i in range(1, args.runs + 1):
        for name in chosen:
            r = lines[name]()
            missed = shortfalls(r)
            met[name] += not missed
            back = "no (15 s)" if r.recovered_in is None else f"{r.recovered_in:.1f} s"
            print(f"| {name} | {i} | {r.audio_weak} / {r.audio_sent} = {r.audio_ratio:.1%} | "
                  f"{', '.join(map(str, r.speaker_video_weak))} | {r.cameras_weak} of {CAMERAS} | "
                  f"{r.stage_width_weak} | {back} | {'met' if not missed else 'missed: ' + '; '.join(missed)} |",
                  flush=True)
    print(f"load average at the end {loadavg()}; runs meeting every point: "
          + ", ".join(f"{name} {n} of {args.runs}" for name, n in met.items()))


if __name__ == "__main__":
    main()
