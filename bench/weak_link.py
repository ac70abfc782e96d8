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

The netns line is also tests/test_media_weak_link.py (in `make test`); this benchmark runs
both lines several times and prints the table of docs/benchmarks.md, "Weak links and simulcast".
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import sys  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from media.client import SyntheticParticipant  # noqa: E402
from media.linkemu import Downlink  # noqa: E402
from support import commit, loadavg  # noqa: E402
from tests.weak_link_support import (  # noqa: E402
    CAMERAS, DELAY, LOSS, RATE, WeakLinkResult, netns_unavailable, run_netns, run_weak_link, shortfalls,
    worker_and_publishers,
)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of each line")
    ap.add_argument("--line", choices=("in-process", "netns", "both"), default="both")
    args = ap.parse_args()
    lines = {"in-process": in_process, "netns": run_netns}
    chosen = list(lines) if args.line == "both" else [args.line]
    if "netns" in chosen and (why := netns_unavailable()):
        sys.exit(f"the netns line {why}: use --line in-process")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}, load average at the start {loadavg()}")
    print("| line | run | audio in time (weak / sent) | audio received, late or not | speaker's video frames per 5 s "
          "| cameras at the end | speaker's layer (width) | back to all 9 | issue 15's bar |")
    print("|---|---|---|---|---|---|---|---|---|")
    met = {name: 0 for name in chosen}
    for i in range(1, args.runs + 1):
        for name in chosen:
            r = lines[name]()
            missed = shortfalls(r)
            met[name] += not missed
            back = "no (15 s)" if r.recovered_in is None else f"{r.recovered_in:.1f} s"
            print(f"| {name} | {i} | {r.audio_weak} / {r.audio_sent} = {r.audio_ratio:.1%} | {r.audio_weak_all} | "
                  f"{', '.join(map(str, r.speaker_video_weak))} | {r.cameras_weak} of {CAMERAS} | "
                  f"{r.stage_width_weak} | {back} | {'met' if not missed else 'missed: ' + '; '.join(missed)} |",
                  flush=True)
    print(f"load average at the end {loadavg()}; runs meeting every point: "
          + ", ".join(f"{name} {n} of {args.runs}" for name, n in met.items()))


if __name__ == "__main__":
    main()
