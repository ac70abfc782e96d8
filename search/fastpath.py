"""Query evaluation over a Whoosh index with set operations instead of
Whoosh's matcher trees.

Whoosh is pure Python: its matchers cost several microseconds per posting
(next(), id(), score() each a method call, the field length read per posting).
Here each term's posting list of one segment is decoded once, block by block,
into document numbers and term frequencies (search.whoosh_postings, kept in a
bounded LRU, so the words people search for stay decoded), and a query becomes
C-speed set operations: AND = intersection, OR = union, -word = difference,
and the caller's allowed documents (rooms, deleted documents excluded) are one
more intersection, so counts are exact and nothing the caller may not read
is ever a candidate. Only the surviving candidates are scored in Python
(BM25, as Whoosh's BM25F with B=0.75, K1=1.2), or ordered by created time,
which needs no Python at all (heapq with the column's __getitem__ as key).

Phrases: the candidates are the documents holding all the words; up to
VERIFY_ALL of them are all confirmed (positions read in document order, so
each posting block is decoded once) and the count is exact. Beyond that (a
phrase of common words) candidates are confirmed from the newest down until
enough hold the phrase (PHRASE_POOL for relevance, which is then ranked
among them), and the count is extrapolated from the share confirmed (all
of them posts the caller may read, so the estimate reveals nothing about
other rooms).

Supported: words, phrases, word starts (already expanded to terms), OR of
those, exclusions, author/has:attachment/room terms, a created-time range.
Posting lists are decoded by search.whoosh_postings.
"""
from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import repeat
from operator import add, mul, truediv
from typing import Callable, Optional

from search.whoosh_postings import BlockPositions, Postings, PostingsCache

K1 = 1.2
B = 0.75
VERIFY_ALL = 800  # phrase candidates checked one by one for an exact count
PHRASE_POOL = 200  # ... and the best are chosen among this many newest confirmed matches
ESTIMATE_FROM = 300  # a word start's count is extrapolated from at least this many matches
TIE = 1e-12  # per rank by created time: breaks ties between equal scores, newest first (< 1e-6 in all)


# -- the query, as the fast path sees it -----------------------------------------------

@dataclass
class Terms:
    """Documents with any of these terms (one word, or a word start's expansions)."""
    field: str
    terms: list[str]


@dataclass
class PhraseQ:
    field: str
    terms: list[str]


@dataclass
class AnyOf:
    children: list


@dataclass
class Plan:
    must: list = field(default_factory=list)  # Terms | PhraseQ | AnyOf
    must_not: list = field(default_factory=list)
    filters: list[Terms] = field(default_factory=list)  # author, has_att, room: unscored
    lo: Optional[int] = None
    hi: Optional[int] = None
    everything: bool = False  # no words: every allowed document


@dataclass
class LeafView:
    """What the engine needs of one segment (made by search.whoosh_query.search)."""
    reader: object
    segid: str
    offset: int
    allowed: frozenset
    created: object  # array of created times by document number
    pmax: object  # pmax[d]: the newest created time among documents before d
    allowed_sorted: Callable[[], list]  # the allowed documents in order (made on first use)
    norms: Callable[[str], list]  # field -> per-document BM25 length norm
    ties: Callable[[], list]  # per document: TIE × its rank by created time in the segment
    denied: Optional[Callable[[], frozenset]] = None  # the other documents (deleted ones included)
    # Fields read instead of the plan's ones for this view: {"content": "post"} searches a post's own text
    # only (not its attachments') in the rooms whose attachment text the caller may not read.
    fields: dict = field(default_factory=dict)

    def f(self, name: str) -> str:
        return self.fields.get(name, name) if self.fields else name


class Engine:
    def __init__(self, cache: PostingsCache, idf: Callable[[str, str], float]):
        self.cache = cache
        self.idf = idf

    def _p(self, lv: LeafView, field_: str, term: str) -> Postings:
        return self.cache.get(lv.reader, lv.segid, lv.f(field_), term)

    def _docs(self, lv: LeafView, node) -> frozenset | set:
        """Documents that may match `node` (phrases: all their words)."""
        if isinstance(node, Terms):
            sets = [self._p(lv, node.field, t).idset for t in node.terms]
            return sets[0] if len(sets) == 1 else frozenset().union(*sets)
        if isinstance(node, PhraseQ):
            sets = sorted((self._p(lv, node.field, t).idset for t in set(node.terms)), key=len)
            return sets[0].intersection(*sets[1:]) if sets else frozenset()
        if isinstance(node, AnyOf):
            return frozenset().union(*(self._docs(lv, c) for c in node.children))
        raise TypeError(node)

    def _phrase_tf(self, lv: LeafView, ph: PhraseQ, d: int) -> int:
        starts = None
        for k, t in enumerate(ph.terms):
            here = {p - k for p in self.cache.positions(lv.reader, lv.segid, lv.f(ph.field), t).positions(d)}
            starts = here if starts is None else starts & here
            if not starts:
                return 0
        return len(starts or ())

    def _phrase_test(self, lv: LeafView, ph: PhraseQ) -> Callable[[int], bool]:
        """A fast test "does document d hold the phrase" (its words' postings fetched once)."""
        plist = [self.cache.positions(lv.reader, lv.segid, lv.f(ph.field), t) for t in ph.terms]
        if len(plist) == 2:
            a, b = plist

            def two(d: int) -> bool:
                second = set(b.positions(d))
                return any(p + 1 in second for p in a.positions(d))

            return two
        return lambda d: self._phrase_tf(lv, ph, d) > 0

    def _descending(self, lv: LeafView, checks: list, cands):
        """The candidates from the highest document number down, without sorting them:
        walk the shortest posting list of a phrase word backwards."""
        ph = next((n for n in checks if isinstance(n, PhraseQ)), None)
        if ph is None:
            return sorted(cands, reverse=True)
        ids = min((self._p(lv, ph.field, t).ids for t in set(ph.terms)), key=len)
        return (d for d in reversed(ids) if d in cands)

    def _checker(self, lv: LeafView, checks: list) -> Callable[[int], bool]:
        tests = [self._phrase_test(lv, n) if isinstance(n, PhraseQ) else (lambda d, n=n: self._has(lv, n, d))
                 for n in checks]
        if len(tests) == 1:
            return tests[0]
        return lambda d: all(t(d) for t in tests)

    def _has(self, lv: LeafView, node, d: int) -> bool:
        """Does `d` (already among the node's candidates) really match it?"""
        if isinstance(node, PhraseQ):
            return self._phrase_tf(lv, node, d) > 0
        if isinstance(node, AnyOf):
            return any(self._has_any(lv, c, d) for c in node.children)
        return True

    def _has_any(self, lv: LeafView, node, d: int) -> bool:
        if isinstance(node, Terms):
            return any(d in self._p(lv, node.field, t).idset for t in node.terms)
        if isinstance(node, PhraseQ):
            return d in self._docs(lv, node) and self._phrase_tf(lv, node, d) > 0
        return any(self._has_any(lv, c, d) for c in node.children)

    def candidates(self, lv: LeafView, plan: Plan) -> set | frozenset:
        # Smallest set first, the allowed documents among the others (usually last: words together
        # are rarer than the rooms a caller may read, and each intersection walks the smaller side).
        parts = [self._docs(lv, n) for n in plan.must] + [self._docs(lv, f) for f in plan.filters]
        sets = sorted(parts + [lv.allowed], key=len)
        cands: frozenset | set = sets[0]
        for s in sets[1:]:
            if not cands:
                return cands
            cands = cands.intersection(s)
        for n in plan.must_not:
            if isinstance(n, Terms):
                cands = cands - self._docs(lv, n)
            else:
                maybe = cands & self._docs(lv, n)
                cands = cands - {d for d in maybe if self._has_any(lv, n, d)}
        if plan.lo is not None or plan.hi is not None:
            lo = plan.lo if plan.lo is not None else -2**63
            hi = plan.hi if plan.hi is not None else 2**63 - 1
            created = lv.created
            cands = {d for d in cands if lo <= created[d] < hi}
        return cands

    def scores(self, lv: LeafView, plan: Plan, docs: list) -> list[float]:
        """scorer(lv, plan)(d) for each of `docs`, with the same float operations in the same order,
        but looped in C (map over operator functions): scoring one candidate in Python was most of
        the time of a two-word AND."""
        parts = self._parts(lv, plan)
        tie = list(map(lv.ties().__getitem__, docs))
        if len(parts) == 1:
            tfs, w, norm = parts[0]
            tf = list(map(tfs.get, docs, repeat(0)))
            return list(map(add, map(truediv, map(mul, repeat(w), tf), map(add, tf, map(norm.__getitem__, docs))),
                            tie))
        out = tie
        for tfs, w, norm in parts:
            tf = list(map(tfs.get, docs, repeat(0)))  # (absent: adds w·0/norm = 0.0, as skipping it)
            out = list(map(add, out, map(truediv, map(mul, repeat(w), tf), map(add, tf, map(norm.__getitem__, docs)))))
        return out

    def top_scored(self, lv: LeafView, plan: Plan, cands, need: int) -> list[int]:
        """heapq.nlargest(need, cands, key=scorer(lv, plan)), scores computed by `scores`."""
        docs = list(cands)
        sc = self.scores(lv, plan, docs)
        return [docs[i] for i in heapq.nlargest(need, range(len(docs)), key=sc.__getitem__)]

    def _parts(self, lv: LeafView, plan: Plan) -> list:
        parts = []

        def add_(node) -> None:
            if isinstance(node, (Terms, PhraseQ)):
                f = lv.f(node.field)
                norm = lv.norms(f)
                for t in dict.fromkeys(node.terms):
                    parts.append((self._p(lv, node.field, t).tf, self.idf(f, t) * (K1 + 1), norm))
            else:
                for c in node.children:
                    add_(c)

        for n in plan.must:
            add_(n)
        return parts

    def scorer(self, lv: LeafView, plan: Plan) -> Callable[[int], float]:
        """BM25 summed over the query's words (phrase words, word-start expansions included)."""
        parts = self._parts(lv, plan)
        # Equal scores (common: lengths are stored as one byte) go to the newest post: a tiny
        # amount growing with the post's rank by created time in its segment is added, so the
        # choice among ties never depends on the order a set happens to iterate in (nor on
        # document numbers: a merge puts old posts after new ones).
        tie = lv.ties()
        if len(parts) == 1:
            tf1, w1, norm1 = parts[0]
            return lambda d: w1 * (tf := tf1[d]) / (tf + norm1[d]) + tie[d]

        def score(d: int) -> float:
            s = tie[d]
            for tfs, w, norm in parts:
                tf = tfs.get(d)
                if tf:
                    s += w * tf / (tf + norm[d])
            return s

        return score

    def _newest_walk(self, lv: LeafView, node: Terms, need: int) -> tuple[list[int], int]:
        """The `need` newest allowed documents with the word, and how many there are.
        Document numbers follow creation order except where posts were edited later,
        so keep the newest `need` seen and stop once even the newest document below
        the current position (pmax) could not displace the oldest of them."""
        postings = self._p(lv, node.field, node.terms[0])
        ids = postings.ids
        allowed, created, pmax = lv.allowed, lv.created, lv.pmax
        heap: list[tuple[int, int]] = []
        for i in range(len(ids) - 1, -1, -1):
            d = ids[i]
            if d in allowed:
                item = (created[d], d)
                if len(heap) < need:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
            if len(heap) >= need and heap[0][0] >= pmax[d]:
                break
        return [d for _c, d in sorted(heap, reverse=True)], self.count_allowed(lv, postings.idset)

    @staticmethod
    def count_allowed(lv: LeafView, docs: frozenset) -> int:
        """len(docs & lv.allowed), from the smaller of the allowed and the denied documents: an
        intersection's cost grows with what it keeps, and most callers may read most rooms."""
        allowed = lv.allowed
        if lv.denied is not None and len(docs) > 64:
            denied = lv.denied()
            if len(denied) < len(allowed):
                return len(docs) - len(docs & denied)
        return len(docs & allowed)

    def _newest_walk_many(self, lv: LeafView, node: Terms, need: int) -> tuple[list[int], int, bool]:
        """As _newest_walk for documents with any of several words (a word start):
        their union can be large, so the count is extrapolated unless the walk
        reaches the start: matches walked × allowed documents ÷ allowed documents
        walked (only the caller's documents enter it)."""
        tails = []
        for t in node.terms:
            r = self.cache.positions(lv.reader, lv.segid, lv.f(node.field), t)
            tails.append(r.ids_desc() if isinstance(r, BlockPositions) else reversed(r.ids))
        allowed, created, pmax = lv.allowed, lv.created, lv.pmax
        heap: list[tuple[int, int]] = []
        hits = 0
        last = -1
        stop = None
        for d in heapq.merge(*tails, reverse=True):
            if d == last:
                continue
            last = d
            if d in allowed:
                hits += 1
                item = (created[d], d)
                if len(heap) < need:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
            if hits >= ESTIMATE_FROM and len(heap) >= need and heap[0][0] >= pmax[d]:
                stop = d
                break
        best = [d for _c, d in sorted(heap, reverse=True)]
        if stop is None:
            return best, hits, False
        walked = len(allowed) - bisect_left(lv.allowed_sorted(), stop)
        return best, max(hits, round(hits * len(allowed) / max(walked, 1))), True

    def run(self, leaves: list[LeafView], plan: Plan, need: int, newest: bool) -> tuple[list, int, bool]:
        """([(key, global docnum)] best first, total, estimated)."""
        checks = [n for n in plan.must if isinstance(n, PhraseQ) or
                  (isinstance(n, AnyOf) and any(not isinstance(c, Terms) for c in n.children))]
        found: list[tuple[float, int]] = []
        total = 0
        estimated = False
        single = (newest and not checks and not plan.filters and not plan.must_not and plan.lo is None
                  and plan.hi is None and len(plan.must) == 1 and isinstance(plan.must[0], Terms))
        for lv in leaves:
            created = lv.created
            if single and len(plan.must[0].terms) == 1:  # newest first, one word: walk back, stop early
                best, n = self._newest_walk(lv, plan.must[0], need)
                total += n
                found.extend((float(created[d]), created[d], lv.offset + d) for d in best)
                continue
            if single:  # a word start (many words): the same walk over their merged postings
                best, n, est = self._newest_walk_many(lv, plan.must[0], need)
                total += n
                estimated = estimated or est
                found.extend((float(created[d]), created[d], lv.offset + d) for d in best)
                continue
            cands = lv.allowed if plan.everything and not plan.filters and plan.lo is None and plan.hi is None \
                and not plan.must_not else self.candidates(lv, plan)
            if not cands:
                continue
            key = lv.created.__getitem__ if (newest or plan.everything) else self.scorer(lv, plan)
            if not checks:
                total += len(cands)
                if newest or plan.everything:
                    best = heapq.nlargest(need, cands, key=key)
                else:
                    best = self.top_scored(lv, plan, cands, need)
            else:
                ok = self._checker(lv, checks)
                if len(cands) <= VERIFY_ALL:
                    # Few candidates: confirm all of them in document order (each posting block
                    # of the phrase words is then decoded once), for an exact count.
                    confirmed = [d for d in sorted(cands) if ok(d)]
                    total += len(confirmed)
                    best = heapq.nlargest(need, confirmed, key=key)
                else:
                    # Many candidates (common words): confirm from the newest down (in document
                    # order again), until `need` (newest first) or PHRASE_POOL (relevance: the best
                    # are ranked among those) hold the phrase and at least ESTIMATE_FROM were
                    # looked at; the count is extrapolated from the share confirmed. (Confirming
                    # a spread sample decoded a block per candidate: 150 ms a phrase at 100k posts.)
                    want = need if newest else max(need, PHRASE_POOL)
                    pool = []
                    walked = 0
                    order = sorted(cands, key=key, reverse=True) if newest else self._descending(lv, checks, cands)
                    for d in order:
                        walked += 1
                        if ok(d):
                            pool.append(d)
                        if len(pool) >= want and walked >= ESTIMATE_FROM:
                            break
                    else:
                        walked = 0  # every candidate was looked at: the count is exact
                    best = heapq.nlargest(need, pool, key=key)
                    if walked:
                        total += max(len(pool), round(len(pool) * len(cands) / walked))
                        estimated = True
                    else:
                        total += len(pool)
            if newest or plan.everything:
                found.extend((float(created[d]), created[d], lv.offset + d) for d in best)
            else:  # (the score without its tie-breaker, to 9 places; then the newest first)
                tie = lv.ties()
                found.extend((round(key(d) - tie[d], 9), created[d], lv.offset + d) for d in best)
        found.sort(reverse=True)
        return [(score, g) for score, _c, g in found[:need]], total, estimated
