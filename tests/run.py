"""`make test`: find the real services this machine offers, then run pytest.

PostgreSQL and Redis tests run when the servers answer (CI machines have both);
otherwise they are skipped with the reason printed.

Two phases: everything in two test processes, then the tests marked `alone` in one, with
nothing beside them. Those measure what a line or a worker does in real time (issue 15's
weak line): another test file's browsers on the same two cores would take their processes'
CPU, and the kernel's packet work (softirqs) with it, and show up as loss on the line.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTHING = 5  # pytest's status when no test was collected


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    env = dict(os.environ)
    if "COLLAB_TEST_POSTGRES_URL" not in env and answers("127.0.0.1", 5432):
        env["COLLAB_TEST_POSTGRES_URL"] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if "COLLAB_TEST_REDIS_URL" not in env and answers("127.0.0.1", 6379):
        env["COLLAB_TEST_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    print("PostgreSQL tests:", "on" if env.get("COLLAB_TEST_POSTGRES_URL") else "skipped (no server on 127.0.0.1:5432)")
    print("Redis tests:", "on" if env.get("COLLAB_TEST_REDIS_URL") else "skipped (no server on 127.0.0.1:6379)")
    args = sys.argv[1:]
    workers = env.get("COLLAB_TEST_PROCESSES", "2")
    if workers != "1" and not any(a == "-n" or a.startswith(("-n=", "--numprocesses")) for a in args):
        # Two test processes: most tests wait on servers, browsers and sockets more than they compute, so two
        # keep both cores busy. A test file stays in one process (its module fixtures start once).
        # Files are handed out in collection order, which tests/file_order.py makes longest first.
        args = ["-n", workers, "--dist", "loadfile", "--no-loadscope-reorder", *args]
    parallel = subprocess.call([sys.executable, "-m", "pytest", "-m", "not alone", *args], cwd=ROOT, env=env)
    print("Tests that need the machine to themselves (marked alone):", flush=True)
    user_args = sys.argv[1:]
    alone = subprocess.call([sys.executable, "-m", "pytest", "-m", "alone", *user_args], cwd=ROOT, env=env)
    # 5: nothing collected (a selection with no such test, or none of the other kind)
    if parallel == NOTHING and alone == NOTHING:
        return NOTHING
    return next((rc for rc in (parallel, alone) if rc not in (0, NOTHING)), 0)


if __name__ == "__main__":
    sys.exit(main())
