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
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.deployment_support import missing  # noqa: E402
from tests.liveserver import LiveServer, make_server  # noqa: E402,F401


def local(name: str):
    """A module of bench/ itself (bench/ is off sys.path: see above), imported by its file."""
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(_HERE) / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

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
    """Replace the section `title` (its heading line, "## ..." or "### ...", up to the next heading of its
    level or above) of docs/benchmarks.md with `text`, or add it at the end; sections titled in `drop` are
    removed (a script that replaces others)."""
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"

    def cut(doc: str, heading: str) -> tuple[str, int]:
        start = doc.find(heading + "\n")
        if start == -1:
            return doc, -1
        level = len(heading) - len(heading.lstrip("#"))
        ends = [i for i in (doc.find("\n" + "#" * k + " ", start + len(heading)) for k in range(2, level + 1))
                if i != -1]
        nxt = min(ends) if ends else -1
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


# -- the server's processes, seen from /proc ---------------------------------------------------------------

def group_pids(pgid: int) -> list[int]:
    """The processes of a process group (a server started in a session of its own)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def named_pids(*names: str) -> list[int]:
    """Processes whose command name is one of `names` (the machine's PostgreSQL and Redis servers)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if Path(f"/proc/{d}/comm").read_text().strip() in names:
                    out.append(int(d))
            except OSError:
                pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


class CpuMeter:
    """CPU of named sets of processes from `start()` on, in % of one core (100 = one core busy)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start()

    def start(self) -> None:
        self._at = time.monotonic()
        self._used = {name: cpu_seconds(pids) for name, pids in self.groups.items()}

    def elapsed(self) -> float:
        return max(1e-9, time.monotonic() - self._at)

    def percent(self) -> dict[str, float]:
        wall = self.elapsed()
        return {name: (cpu_seconds(pids) - self._used[name]) / wall * 100 for name, pids in self.groups.items()}


def deployment_pids(d) -> dict[str, list[int]]:
    """The processes of a reference deployment (tests/deployment_support.py) by part, and the machine's
    PostgreSQL and Redis ("infra": only the server processes that exist now; PostgreSQL starts one per new
    connection, so later ones are not counted)."""
    web = [pid for p in d.web for pid in group_pids(d.names[f"web-{p}"].pid)]
    return {"deployment": [pid for proc in d.procs for pid in group_pids(proc.pid)], "web": web,
            "nginx": group_pids(d.names["nginx"].pid), "media": group_pids(d.names["media"].pid),
            "infra": named_pids("postgres", "redis-server")}


def rss_mb(pids: list[int]) -> float:
    """Resident memory of `pids`, added up (MB)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def ready_for_deployment() -> None:
    """Before bringing the reference deployment up (tests/deployment_support.py): say why it cannot be, if it
    cannot, and let this process and its children hold thousands of connections."""
    why = missing()
    if why:
        raise SystemExit(f"cannot bring the deployment up here: {why}")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # (the children inherit it)

