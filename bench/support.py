"""What the benchmark scripts share: the production server in a fresh data folder (tests/liveserver.py),
seeding it in a separate process through the real services, percentiles, a description of the machine
(with its load average: other work may share it) and replacing one section of docs/benchmarks.md.

Import it first thing in a bench script run as `python bench/x.py`: it takes bench/ off `sys.path`
(bench/http.py would hide the standard library's `http` package) and puts the repository on it."""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.liveserver import LiveServer, make_server  # noqa: E402,F401

# Cheap password hashes for seeded accounts (they sign in with tokens); the server keeps its own settings.
SEED_APP = ('from collab import create_app\n'
            'app = create_app({"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024, "ARGON2_PARALLELISM": 1,'
            ' "SEARCH_INDEXING": False})\n')


def seed(server: LiveServer, code: str, *args: str) -> dict:
    """Run `code` (Python; `app` is made for it, the server's database) in a separate process with the
    server's settings; it prints one JSON line last, returned here."""
    out = subprocess.run([sys.executable, "-c", SEED_APP + code, *args], cwd=ROOT, env=server.env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=False,
                          text=True).stdout.strip() or "unknown"


def machine(packages: tuple[str, ...] = ("gunicorn", "gevent", "aiohttp", "python-socketio")) -> str:
    """One line: cores, system, Python and the versions of `packages`."""
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in packages)
    return (f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}; "
            f"{versions}")


def write_section(title: str, text: str, *, drop: tuple[str, ...] = ()) -> None:
    """Replace the section `title` (a "## ..." line up to the next "## ") of docs/benchmarks.md with
    `text`, or add it at the end; sections titled in `drop` are removed (a script that replaces others)."""
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"

    def cut(doc: str, heading: str) -> tuple[str, int]:
        start = doc.find(heading + "\n")
        if start == -1:
            return doc, -1
        nxt = doc.find("\n## ", start + len(heading))
        return doc[:start] + (doc[nxt + 1:] if nxt != -1 else ""), start

    for old in drop:
        doc, _ = cut(doc, old)
    doc, at = cut(doc, title)
    body = text.rstrip("\n") + "\n"
    if at == -1:
        doc = doc.rstrip("\n") + "\n\n" + body
    else:
        doc = doc[:at] + body + ("\n" if doc[at:] else "") + doc[at:]
    path.write_text(doc)
