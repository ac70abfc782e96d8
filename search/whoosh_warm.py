"""Warming the Whoosh backend's caches when a process opens a build of the index.

A query's first run pays for decoding its words' posting lists (and making the
set and map the fast path intersects and scores with); for a common word at
100k posts that is most of its cost, so the first person to search a common
word after a start or a rebuild waited several times longer than the next.
Here, in a background thread of the process, the most frequent terms of the
new build are decoded into the backend's posting cache (search.whoosh_postings)
up to a budget of postings below the cache's own limit, frequent first: the
words people search most are the ones most costly cold. Rare words stay cheap
to decode on demand.

Each term is decoded under the backend's mutex and the mutex is let go between
terms (with a yield to other greenlets under gevent), so searches are never
held up by more than one term's decoding. A newer build, or closing the
backend, ends a warm-up early.
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Optional

from search.whoosh_segments import segment_id

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 1_500_000  # postings (the cache keeps up to whoosh_postings.CACHE_POSTINGS)
FIELD = "content"


class Warmer:
    def __init__(self, backend, budget: int = DEFAULT_BUDGET):
        self.backend = backend
        self.budget = budget
        self._stamp = None  # the build last warmed (or being warmed)
        self._thread: Optional[threading.Thread] = None
        self.done = threading.Event()
        self.terms = 0
        self.postings = 0
        self.seconds = 0.0

    def maybe_start(self, stamp) -> None:
        """After a search opened the searcher: warm a build not warmed yet (called under the mutex)."""
        if self.budget <= 0 or stamp is None or stamp == self._stamp:
            return
        self._stamp = stamp
        self.done.clear()
        self._thread = threading.Thread(target=self._run, args=(stamp,), name="search-warm", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)

    def forget(self) -> None:
        """The caches were dropped (the backend closed): the next search warms again."""
        self._stamp = None

    def _run(self, stamp) -> None:
        t0 = time.monotonic()
        try:
            self.terms = self.postings = 0
            ix, plan = self._plan(stamp)
            for reader, segid, term in plan:
                with self.backend._mutex:
                    if self.backend.segments._ix is not ix:
                        return  # a newer build, or the backend closed: its own warm-up follows
                    p = self.backend.segments.postings.get(reader, segid, FIELD, term)
                    p.idset, p.tf  # noqa: B018  (made now, not by the first search of the word)
                self.terms += 1
                self.postings += len(p.ids)
                time.sleep(0)
        except Exception:  # a warm-up is an optimisation: never more than a log line
            log.exception("search cache warm-up stopped")
        finally:
            self.seconds = time.monotonic() - t0
            self.done.set()
            log.info("search caches warmed: %d terms, %d postings in %.1f s", self.terms, self.postings,
                     self.seconds)

    def _plan(self, stamp) -> tuple[object, list[tuple]]:
        """The index open now, and (reader, segment id, term) of the most frequent terms of its
        segments, up to the budget."""
        with self.backend._mutex:
            s = self.backend.segments.searcher()
            ix = self.backend.segments._ix
            if s is None or self.backend.segments._pointer_stamp != stamp:
                return ix, []
            leaves = [(r, segid) for r, _o in s.reader().leaf_readers() if (segid := segment_id(r)) is not None]
        found: list[tuple[int, int, str]] = []  # (doc frequency, leaf, term)
        for i, (r, _segid) in enumerate(leaves):
            with self.backend._mutex:
                items = [(ti.doc_frequency(), i, t.decode("utf-8") if isinstance(t, bytes) else t)
                         for t, ti in r.iter_field(FIELD)]
            found.extend(heapq.nlargest(20_000, items))
            time.sleep(0)
        plan, total = [], 0
        for df, i, term in sorted(found, reverse=True):
            if total + df > self.budget:
                continue
            total += df
            plan.append((leaves[i][0], leaves[i][1], term))
        return ix, plan
