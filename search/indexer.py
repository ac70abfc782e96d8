"""The single indexer: drains the outbox into the index right after a commit
that wrote outbox rows, checks the index at start-up, sweeps periodically for
rows a crashed process left behind, and rebuilds.

Order is kept by doing every step of a batch under the backend's writer lock
(a flock for Whoosh, an advisory lock for PostgreSQL): read outbox rows, read
those posts' current state, write the index, delete exactly those rows. A
crash anywhere leaves the rows, and the change is applied again (idempotent).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from flask import Flask, current_app
from sqlalchemy import delete, func, select, text

from collab import logs, outage
from collab.extensions import db
from rooms.models import Post
from search import documents
from search.app_state import state
from search.backend import Backend, FileLock, Health
from search.models import SearchDocument, SearchOutbox

log = logging.getLogger(__name__)

BATCH = 200
LOCK_TIMEOUT = 10.0
CATCH_UP_WAIT = 2.0  # a search waits at most this long for this process's own index changes
INLINE_REBUILD_MAX = 1000  # a missing index over fewer posts is rebuilt in-process
ROOT = Path(__file__).resolve().parent.parent


class Indexer:
    def __init__(self, app: Flask, backend: Backend):
        self.app = app
        self.backend = backend
        self._mutex = threading.Lock()
        self._done = threading.Condition(self._mutex)
        self._worker: Optional[threading.Thread] = None
        self._pending = False
        self._kicks = 0  # kicks so far; a pass of the worker covers every kick made before it began
        self._covered = 0  # ... the kicks covered by the last finished pass
        self._sweeper: Optional[threading.Thread] = None
        self._started = False
        self._checked = False
        self._child: Optional[subprocess.Popen] = None
        self.rebuild_lock = FileLock(Path(app.config["DATA_DIR"]) / "search" / "rebuild.lock")
        self.last_health: Optional[Health] = None
        self.suspect = False  # a search failed: check the index again

    # -- waking ---------------------------------------------------------------------

    def kick(self) -> None:
        """Drain soon, in a worker thread (a greenlet under gevent); never blocks the caller."""
        if not self.app.config.get("SEARCH_INDEXING", True):
            return
        with self._mutex:
            self._pending = True
            self._kicks += 1
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker = threading.Thread(target=self._work, name="search-indexer", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        with self.app.app_context():
            try:
                while True:
                    with self._mutex:
                        if not self._pending:
                            self._worker = None
                            self._done.notify_all()
                            return
                        self._pending = False
                        covers = self._kicks
                    try:
                        if not self._checked or self.suspect or self.backend.gone():
                            self.check()
                        self.drain()
                    except Exception as err:  # noqa: BLE001 - retried by the sweep
                        if outage.is_database_down(err):   # down or too busy: one line, the requests' 503s say the rest
                            log.warning("search indexing waits for the database (%s); the sweep will retry",
                                        outage.cause_of(err))
                        else:
                            log.exception("search indexing failed; the sweep will retry")
                        db.session.rollback()
                    with self._mutex:
                        self._covered = max(self._covered, covers)
                        self._done.notify_all()
            finally:
                db.session.remove()
                with self._mutex:
                    if self._worker is threading.current_thread():
                        self._worker = None
                    self._done.notify_all()

    def catch_up(self, timeout: float = CATCH_UP_WAIT) -> bool:
        """Wait (at most `timeout` seconds) until the changes this process committed
        before the call are applied to the index, or found impossible to apply now
        (another process holds the writer lock: the outbox keeps them). A search
        calls this first, so whoever just wrote a post finds it (read-your-writes),
        also right after start-up, when the first pass checks the index and rebuilds
        a missing one. Returns at once when nothing is pending."""
        deadline = time.monotonic() + timeout
        with self._mutex:
            target = self._kicks
            while self._covered < target:
                alive = self._worker is not None and self._worker.is_alive()
                left = deadline - time.monotonic()
                if not alive or left <= 0:
                    return False
                self._done.wait(min(left, 0.05))
            return True

    def idle(self) -> bool:
        with self._mutex:
            return not self._pending and (self._worker is None or not self._worker.is_alive())

    def start(self) -> None:
        """At the first request: check the index, drain leftovers, and (in a
        server, not under tests) sweep every SEARCH_SWEEP_SECONDS."""
        if self._started:
            return
        self._started = True
        self.backend.prepare()
        self.kick()
        every = float(self.app.config.get("SEARCH_SWEEP_SECONDS", 30))
        if every > 0 and not self.app.testing:
            self._sweeper = threading.Thread(target=self._sweep, args=(every,), name="search-sweep", daemon=True)
            self._sweeper.start()

    def _sweep(self, every: float) -> None:
        while True:
            time.sleep(every)
            self.kick()  # drains what others left; re-checks the index if a search failed or it is gone

    # -- state ------------------------------------------------------------------------

    def rebuilding(self) -> bool:
        if self._child is not None and self._child.poll() is None:
            return True
        return self.rebuild_lock.held_elsewhere()

    def check(self) -> Health:
        """Is the index usable? If not, rebuild it (small: here; large: in the background)."""
        self._checked = True
        self.suspect = False
        h = self.backend.health()
        self.last_health = h
        if h.ok or self.rebuilding():
            return h
        n = documents.count_indexable()
        db.session.rollback()
        log.warning("search index %s (%d posts to index)", h.reason, n)
        if n <= int(self.app.config.get("SEARCH_INLINE_REBUILD_MAX", INLINE_REBUILD_MAX)):
            rebuild(self.app, quiet=True)
            h = self.backend.health()
            self.last_health = h
        else:
            self.rebuild_in_background()
        return h

    def rebuild_in_background(self) -> None:
        """Start `flask search rebuild --background` for this app's database and data folder."""
        if self.rebuilding():
            return
        cfg = self.app.config
        env = dict(os.environ)
        env.update(COLLAB_DATA_DIR=cfg["DATA_DIR"], COLLAB_DATABASE_URL=cfg["DATABASE_URL"],
                   COLLAB_SEARCH_BACKEND=self.backend.name, COLLAB_SECRET_KEY=cfg["SECRET_KEY"])
        env.pop("FLASK_RUN_FROM_CLI", None)
        logdir = Path(cfg["DATA_DIR"]) / "search"
        logdir.mkdir(parents=True, exist_ok=True)
        with open(logdir / "rebuild.log", "ab") as out:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "search", "rebuild", "--background"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        log.warning("search index rebuild started in the background (pid %s)", self._child.pid)

    # -- draining -----------------------------------------------------------------------

    def drain(self, timeout: float = LOCK_TIMEOUT) -> int:
        """Apply every outbox row; returns how many rows were applied."""
        done = 0
        while True:
            if self.rebuilding():
                return done  # the rebuild drains the outbox when it is finished
            with self.backend.writing(timeout) as locked:
                if not locked:
                    log.info("search writer busy; outbox left for the next pass")
                    return done
                n = drain_batch(self.backend)
            if n < 0:
                self.suspect = True
                return done
            done += n
            if n == 0:
                return done


def drain_batch(backend: Backend) -> int:
    """One batch, under the writer lock. -1 when the index is not usable."""
    sess = db.session
    rows = sess.execute(select(SearchOutbox.id, SearchOutbox.post_id).order_by(SearchOutbox.id).limit(BATCH)).all()
    if not rows:
        sess.rollback()
        return 0
    docs, removed = documents.load({r.post_id for r in rows})
    if not backend.apply(docs, removed):
        sess.rollback()
        return -1
    if db.is_sqlite:
        db.begin_write()
    sess.execute(delete(SearchOutbox).where(SearchOutbox.id.in_([r.id for r in rows])))
    sess.commit()
    # the other half of the outbox's "search.queued" line, which names the request that wrote the rows
    logs.event("search.applied", routine=True, posts=sorted({r.post_id for r in rows})[:100], rows=len(rows))
    return len(rows)


def outbox_size() -> int:
    n = db.session.scalar(select(func.count(SearchOutbox.id))) or 0
    db.session.rollback()
    return n


@contextmanager
def _rebuild_guard(indexer: Indexer, wait: bool):
    got = indexer.rebuild_lock.acquire(3600 if wait else 0)
    try:
        yield got
    finally:
        if got:
            indexer.rebuild_lock.release()


def rebuild(app: Flask, *, progress=None, procs: int = 1, quiet: bool = False, background: bool = False) -> int:
    """Rebuild the index from the database, then apply the outbox. Returns the
    number of posts indexed, or -1 if another rebuild was running (background)."""
    st = state(app)
    backend, indexer = st.backend, st.indexer
    with _rebuild_guard(indexer, wait=not background) as got:
        if not got:
            return -1
        if background and backend.health().ok:
            return 0  # someone else fixed it meanwhile
        total = documents.count_indexable()
        db.session.rollback()
        if backend.name == "postgres":
            n = _rebuild_pg(backend, progress, procs)
        else:
            with backend.writing(600) as locked:
                if not locked:
                    raise RuntimeError("the search index writer lock is held by another process")
                ranges = documents.id_ranges(procs if total >= 2000 else 1)
                parts = [(lambda lo=lo, hi=hi: documents.prefetched(lambda: documents.iter_all(lo=lo, hi=hi)))
                         for lo, hi in ranges]
                n = backend.rebuild(parts, progress, child_init=_forked_child)
                while drain_batch(backend) > 0:
                    pass
        if not quiet:
            log.info("search index rebuilt: %d of %d posts", n, total)
        indexer.last_health = backend.health()
        return n


def _forked_child() -> None:
    """In a process forked to index: forget the parent's session and pooled
    connections (they belong to the parent) without closing them."""
    db.session.registry.clear()
    db.engine.dispose(close=False)


def _rebuild_pg(backend, progress, procs: int = 2) -> int:
    """PostgreSQL: each batch is read and written under the writer lock (shared
    between rebuild batches, exclusive for a drain), so it can never overwrite
    a newer change that a drain wrote in between. Two threads: while one waits
    for PostgreSQL to compute tsvectors, the other reads and prepares posts."""
    app = current_app._get_current_object()
    ranges = documents.id_ranges(max(1, procs))
    totals = [0] * len(ranges)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def part(i: int, lo: int, hi) -> None:
        with app.app_context():
            try:
                last = lo - 1
                while not errors:
                    with backend.writing(LOCK_TIMEOUT * 6, shared=True) as locked:
                        if not locked:
                            raise RuntimeError("the search writer lock is held too long by another process")
                        q = select(Post.id).where(Post.id > last)
                        if hi is not None:
                            q = q.where(Post.id < hi)
                        ids = list(db.session.scalars(q.order_by(Post.id).limit(1000)))
                        if not ids:
                            db.session.commit()
                            return
                        docs, removed = documents.load(ids)
                        backend.apply(docs, removed)
                        db.session.commit()
                    last = ids[-1]
                    totals[i] += len(docs)
                    if progress:
                        with lock:
                            progress(len(docs))
            except BaseException as err:
                errors.append(err)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=part, args=(i, lo, hi), daemon=True) for i, (lo, hi) in enumerate(ranges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    n = sum(totals)
    with backend.writing(LOCK_TIMEOUT * 6):  # documents of posts gone, removed or hidden meanwhile
        keep = select(Post.id).where(Post.id == SearchDocument.post_id, documents.indexable()).exists()
        db.session.execute(delete(SearchDocument).where(~keep))
        db.session.commit()
    while True:
        with backend.writing(LOCK_TIMEOUT) as locked:
            if not locked or drain_batch(backend) <= 0:
                break
    backend.mark_current()  # every row is now of this version's word analysis
    db.session.commit()
    db.session.execute(text("ANALYZE search_documents"))  # fresh statistics: the planner picks plans by them
    db.session.commit()
    return n
