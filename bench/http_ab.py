#!/usr/bin/env python
"""A/B of the HTTP benchmark: the room page and the 200-post thread page of two (or more) git revisions,
measured in one run on the same machine, so that "no slower than before" is a ratio of figures taken
side by side rather than against a table measured on another day under another load (issue 14: the
"…" menus and personal preferences must not slow these pages; p95 within 10 % of the baseline).

    .venv/bin/python bench/http_ab.py BASE [OTHER ...] [--rounds 3] [--requests 500] [--no-write]

BASE is the baseline (e.g. the commit before a change); each OTHER is compared with it; "WORKTREE" stands
for this checkout as it is on disk (uncommitted changes included). What it does:

  1. Exports each revision (`git archive`) into a temporary folder; "WORKTREE" is used where it is.
  2. For each, runs this checkout's bench/http.py with `--code-root <that tree> --prepare <folder>`: the
     same seed (same sizes, same random seed) through that revision's own migrations, models and services,
     and its search index. (The seeding code is this checkout's: revisions whose services or posts table
     differ too much from it cannot be compared this way; the run then stops at the seed, saying why.)
  3. Measures in rounds, in ABBA order (A B, then B A, ...), so that a machine that gets busier or
     quieter during the run weighs on both sides alike: each round starts that revision's production
     server on its prepared folder, measures the room page and the thread page at concurrency 1 and 16
     (`--only room thread`), and stops it.
  4. Reports, per line and revision, the p95 of every round and their median, and the ratio of each
     revision's median to the baseline's; "within 10 %" is ratio ≤ 1.10. Written into docs/benchmarks.md
     under "## HTTP A/B (issue 14)" unless --no-write.

Needs the same virtualenv for every revision (requirements unchanged between them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HTTP = ROOT / "bench" / "http.py"
SECTION = "## HTTP A/B (issue 14)"
WORKTREE = "WORKTREE"
LINES = ("Room page", "Thread page")
TOLERANCE = 1.10


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve(rev: str) -> str:
    if rev == WORKTREE:
        return WORKTREE
    out = subprocess.run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"not a git revision: {rev}")
    return out.stdout.strip()


def export(rev: str, into: Path) -> Path:
    """The revision's files (tracked files only, as committed) in `into`."""
    if rev == WORKTREE:
        return ROOT
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", rev], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return into


def run_http(tree: Path, *extra: str) -> None:
    cmd = [sys.executable, str(HTTP), "--code-root", str(tree), *extra]
    say("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, cwd=tree)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(revs: list[str], figures: dict, rounds: int, loads: list, args) -> str:
    """figures[rev][(line, conc)] -> [p95 of each round]."""
    base = revs[0]
    lines = [
        SECTION, "",
        (f"Measured {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} by `bench/http_ab.py "
         f"{' '.join(args.revisions)}`: {rounds} round{'s' if rounds != 1 else ''} in ABBA order, {args.requests} "
         f"requests per line and round after {args.warmup} warm-up rounds; {args.threads:,} threads and "
         f"{args.posts:,} posts, server and pages as in the HTTP section above (bench/http.py), seeded once per "
         "revision with its own code. Baseline: `" + base + "`."),
        "",
        "| Request | Concurrency | Revision | p95 ms, each round | p95 ms, median | Ratio to the baseline | Within 10 % |",
        "|---|---:|---|---|---:|---:|---|",
    ]
    keys = sorted({k for rev in revs for k in figures[rev]}, key=lambda k: (LINES.index(k[0]), k[1]))
    verdicts = []
    for line, conc in keys:
        b = median(figures[base].get((line, conc), []))
        for rev in revs:
            vals = figures[rev].get((line, conc), [])
            m = median(vals)
            ratio = m / b if b else float("nan")
            ok = "" if rev == base else ("yes" if ratio <= TOLERANCE else "**no**")
            if rev != base:
                verdicts.append(ratio <= TOLERANCE)
            lines.append(f"| {line} | {conc} | `{rev}` | {', '.join(f'{v:.1f}' for v in vals)} | {m:.1f} | "
                         f"{'—' if rev == base else f'{ratio:.2f}'} | {ok} |")
    lines += ["", (f"Every line within 10 % of the baseline: **{'yes' if all(verdicts) else 'no'}**. "
                   "Load average (1, 5, 15 min) before each measurement: "
                   + "; ".join(f"{rev}: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}" for rev, la in loads) + ".")]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("revisions", nargs="+", help="git revisions, the baseline first; WORKTREE: this checkout as is")
    ap.add_argument("--rounds", type=int, default=3, help="measurements of each revision (3)")
    ap.add_argument("--requests", type=int, default=500, help="measured requests per line and round (500)")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up rounds before each measurement (10)")
    ap.add_argument("--threads", type=int, default=2000, help="threads to seed (2000)")
    ap.add_argument("--posts", type=int, default=100_000, help="posts to seed (100000)")
    ap.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown file to update")
    ap.add_argument("--no-write", action="store_true", help="print the table only; do not touch docs/")
    ap.add_argument("--note", default="", help="a sentence added under the table")
    args = ap.parse_args()
    if len(args.revisions) < 2:
        raise SystemExit("give at least two revisions: the baseline, then what is compared with it")
    revs = [resolve(r) for r in args.revisions]
    work = Path(tempfile.mkdtemp(prefix="collab-http-ab-"))
    say(f"Working folder: {work}")
    sizes = ["--threads", str(args.threads), "--posts", str(args.posts)]
    try:
        trees, data = {}, {}
        for i, rev in enumerate(revs):
            trees[rev] = export(rev, work / f"tree-{i}")
            data[rev] = work / f"data-{i}"
            run_http(trees[rev], "--prepare", str(data[rev]), *sizes)
        figures: dict = {rev: {} for rev in revs}
        loads = []
        for r in range(args.rounds):
            for rev in (revs if r % 2 == 0 else list(reversed(revs))):
                out = work / f"round-{r}-{revs.index(rev)}.json"
                loads.append((rev, os.getloadavg()))
                run_http(trees[rev], "--reuse", str(data[rev]), "--only", "room", "thread", "--no-write",
                         "--requests", str(args.requests), "--warmup", str(args.warmup), "--json", str(out), *sizes)
                for x in json.loads(out.read_text())["results"]:
                    line = next(k for k in LINES if x["name"].startswith(k))
                    figures[rev].setdefault((line, x["conc"]), []).append(x["p95"])
        section = report(revs, figures, args.rounds, loads, args)
        print(section)
        if not args.no_write:
            write_section(args.output, section)
            say(f"Written to {args.output} under '{SECTION}'.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
