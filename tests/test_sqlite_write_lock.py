"""SQLite's write lock under gevent (the production worker).

A greenlet that holds the write lock and yields (an after-commit hook starting a
greenlet, a socket write) must not freeze the worker: a second writer used to
wait in SQLite's busy handler, a sleep inside C that blocks every greenlet of
the process, so the holder never ran again and the wait ended after 15 s in
"database is locked". Run in a child process: gevent must patch the standard
library before anything else is imported.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, time
    import gevent
    from sqlalchemy import text
    sys.path.insert(0, {root!r})
    from collab.db import make_engine

    engine = make_engine("sqlite:///" + sys.argv[1])
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (x INTEGER)"))

    def holder():
        with engine.connect().execution_options(sqlite_immediate=True) as c:
            c.begin()
            c.execute(text("INSERT INTO t VALUES (1)"))
            gevent.sleep(0.3)  # yields while holding the write lock
            c.commit()

    waited = []

    def writer():
        t0 = time.monotonic()
        with engine.connect().execution_options(sqlite_immediate=True) as c:
            c.begin()
            c.execute(text("INSERT INTO t VALUES (2)"))
            c.commit()
        waited.append(time.monotonic() - t0)

    gevent.joinall([gevent.spawn(holder), gevent.spawn(writer)], raise_error=True)
    with engine.connect() as c:
        rows = c.execute(text("SELECT count(*) FROM t")).scalar()
        busy = c.exec_driver_sql("PRAGMA busy_timeout").scalar()
    print(rows, round(waited[0], 2), busy)
""")


def test_second_writer_waits_cooperatively_under_gevent(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT)), str(tmp_path / "t.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    rows, waited, busy = out.stdout.split()
    assert rows == "2"  # both writes committed
    assert float(waited) < 5  # about the 0.3 s the holder kept the lock, not SQLite's 15 s busy timeout
    assert busy == "15000"  # the connection's busy timeout is back to normal afterwards
