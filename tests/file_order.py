"""The order test files are handed to the test processes: the longest first.

`make test` runs two pytest-xdist processes that each take whole files (`--dist loadfile`).
xdist's own order puts the files with the most tests first, so the browser files — few
tests, each long — came last and one process ran them alone for minutes while the other
had finished. Handing out the longest files first (longest-processing-time scheduling)
keeps both busy to the end.

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
    """Reorder pytest's items in place: files by expected seconds, longest first; within a
    file the order stays as collected (its module fixtures are shared in that order)."""
    known = _known()
    counts = Counter(item.nodeid.split("::", 1)[0] for item in items)
    first_seen = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.nodeid.split("::", 1)[0], i)

    def key(item):
        path = item.nodeid.split("::", 1)[0]
        return (-known.get(path, PER_TEST * counts[path]), first_seen[path])

    items.sort(key=key)   # stable: tests keep their order within a file


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
