"""Warming the Whoosh backend's caches when a process opens a build of the index.

A query's first run pays for decoding its words' posting lists (and making the
set and map the fast path intersects and scores with); for a common word at
100k posts that is most of its cost, so the first person to search a common
word after a start or a rebuild waited several times longer than the next.
Here, in a background thread of the process, the most frequent words of the
new build (whole words: every segment of each) are decoded into the backend's
posting cache (search.whoosh_postings) up to a budget of postings below the
cache's own limit, frequent first: common words are the ones most costly cold.
Words in more than half the posts come last, in a quarter of the budget: nobody
picks posts out with them, but phrases are made of them. Rare words stay cheap
to decode on demand. Before the words, each segment's structures every ranked
query needs (created times, tie ranks, length norms, room postings) are made.
A server process opens its build and starts this at its first request of any
kind (WhooshBackend.prepare), not at its first search.

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

from search.whoosh_query import avg_length
from search.whoosh_segments import segment_id

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 2_000_000  # postings (~110 bytes each decoded; the cache keeps up to whoosh_postings.CACHE_POSTINGS)
FIELD = "content"
MAX_SHARE = 0.5     # words in more than this share of the posts are warmed last (see Warmer._plan)
PHRASE_SHARE = 0.25  # ... in at most this share of the budget (what the others leave)


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
        """Once the searcher is open (a search, or the backend's prepare() at the first request): warm a build
        not warmed yet (called under the mutex)."""
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
            if plan and not self._prime(ix, {segid: r for r, segid, _t in plan}):
                return
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

    def _prime(self, ix, leaves: dict) -> bool:
        """What every ranked query needs of each segment before its words, made once: created times and
        their tie-break ranks, BM25 length norms, and which documents are in which room (a caller's allowed
        set is made from those). Left to the first search, they cost it ~100 ms at 100k posts. False when
        a newer build (or closing the backend) made this one moot."""
        segs = self.backend.segments
        with self.backend._mutex:
            s = segs.searcher()
            if segs._ix is not ix or s is None:
                return False
            avg = avg_length(s.reader(), FIELD)
        for segid, reader in leaves.items():
            with self.backend._mutex:
                if segs._ix is not ix:
                    return False
                rooms = list(reader.field_terms("room"))
            steps = [lambda: segs.ties(segid, segs.created(reader, segid)[0]),
                     lambda: segs.norms(reader, segid, FIELD, avg),
                     *[lambda t=t: segs.postings.get(reader, segid, "room", t).idset for t in rooms]]
            for step in steps:
                with self.backend._mutex:
                    if segs._ix is not ix:
                        return False
                    step()
                time.sleep(0)
        return True

    def _plan(self, stamp) -> tuple[object, list[tuple]]:
        """The index open now, and (reader, segment id, term) of the words to decode, up to the budget.

        Whole words, in every segment that has them: a word decoded in the largest segment only still
        costs its first search the others. Most frequent first, in two tiers. First the words in at most
        half the posts (MAX_SHARE), up to all but PHRASE_SHARE of the budget: these are the words people
        pick posts out with. Then, in what is left, the words in more than half ("would", "there": Whoosh
        stops only a short list): nobody searches for them alone, but a phrase ("stop and search") needs
        the documents of each of its words, and at 100k posts five of them would take the whole budget
        from the words people do search."""
        with self.backend._mutex:
            s = self.backend.segments.searcher()
            ix = self.backend.segments._ix
            if s is None or self.backend.segments._pointer_stamp != stamp:
                return ix, []
            leaves = [(r, segid) for r, _o in s.reader().leaf_readers() if (segid := segment_id(r)) is not None]
            docs = sum(r.doc_count_all() for r, _segid in leaves)
        per_leaf: dict[str, list[tuple[int, int]]] = {}   # term -> [(leaf, doc frequency there)]
        for i, (r, _segid) in enumerate(leaves):
            with self.backend._mutex:
                items = [(ti.doc_frequency(), t.decode("utf-8") if isinstance(t, bytes) else t)
                         for t, ti in r.iter_field(FIELD)]
            for df, term in heapq.nlargest(20_000, items):
                per_leaf.setdefault(term, []).append((i, df))
            time.sleep(0)
        words = sorted(((sum(df for _i, df in where), term) for term, where in per_leaf.items()), reverse=True)
        plan, total = [], 0
        for tier, limit in ((0, int(self.budget * (1 - PHRASE_SHARE))), (1, self.budget)):
            for df, term in words:
                if (df > MAX_SHARE * docs) != tier or total + df > limit:
                    continue
                total += df
                plan.extend((leaves[i][0], leaves[i][1], term) for i, _df in per_leaf[term])
        return ix, plan
