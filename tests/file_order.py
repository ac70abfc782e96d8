"""The order test files are handed to the test processes: the longest first.

`make test` runs two pytest-xdist processes that each take whole files (`--dist loadfile`).
xdist's own order puts the files with the most tests first, so the browser files — few
tests, each long — came last and one process ran them alone for minutes while the other
had finished. Handing out the longest files first (longest-processing-time scheduling)
keeps both busy to the end. Browser files are spread through the queue in proportion
to their share of the time rather than all first: two of them at once (Chromium,
servers and media workers each) made both about half as fast again, while a browser
file beside a database file costs each little.

The seconds come from a real run (tests/file_seconds.json); refresh them after adding
a long test:

    PYTEST_ADDOPTS=--durations=0 make test | tee run.log
    .venv/bin/python -m tests.file_order run.log

A file the table does not know counts PER_TEST seconds a test. Only the order depends on
these figures, never a result.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

TABLE = Path(__file__).with_name("file_seconds.json")
PER_TEST = 0.7
_DURATION = re.compile(r"^([0-9.]+)s (?:setup|call|teardown)\s+(\S+?)::")


def _known() -> dict[str, float]:
    try:
        return json.loads(TABLE.read_text())
    except (OSError, ValueError):
        return {}


def longest_first(items: list) -> None:
    """Reorder pytest's items in place: files by expected seconds, longest first, browser files
    interleaved with the others; within a file the order stays as collected (its module fixtures
    are shared in that order)."""
    known = _known()
    counts = Counter(item.nodeid.split("::", 1)[0] for item in items)
    first_seen = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.nodeid.split("::", 1)[0], i)

    def seconds(path: str) -> float:
        return known.get(path, PER_TEST * counts[path])

    files = sorted(first_seen, key=lambda path: (-seconds(path), first_seen[path]))
    browser = [f for f in files if "/browser/" in f]
    others = [f for f in files if "/browser/" not in f]
    total_b, total_o = sum(map(seconds, browser)) or 1.0, sum(map(seconds, others)) or 1.0
    queue, done_b, done_o = [], 0.0, 0.0
    while browser or others:
        # the list that is further behind its share of the time gives the next file
        if browser and (not others or done_b / total_b <= done_o / total_o):
            queue.append(browser.pop(0))
            done_b += seconds(queue[-1])
        else:
            queue.append(others.pop(0))
            done_o += seconds(queue[-1])
    rank = {path: i for i, path in enumerate(queue)}
    items.sort(key=lambda item: rank[item.nodeid.split("::", 1)[0]])   # stable: tests keep their order in a file


def table_from_log(text: str) -> dict[str, float]:
    """Seconds per test file from pytest's `--durations=0` listing (setup, call and teardown)."""
    seconds: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = _DURATION.match(line.strip())
        if m:
            seconds[m.group(2)] += float(m.group(1))
    return {path: round(s, 1) for path, s in sorted(seconds.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.file_order PYTEST_LOG (a run with --durations=0)")
    table = table_from_log(Path(sys.argv[1]).read_text())
    if not table:
        sys.exit("No durations in that log: run pytest with --durations=0.")
    TABLE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(table)} files, {sum(table.values()):.0f} s in all, written to {TABLE}")
