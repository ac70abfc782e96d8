"""Queries on the Whoosh index through Whoosh's own matchers: the fallback.

Used when the fast path (search.whoosh_query, search.fastpath) fails or is
turned off; it finds the same posts, more slowly. Speed all the same:
- the caller's allowed documents of each segment are a bytearray (the bits
  of search.whoosh_segments.Allowed): the permission filter runs inside the
  engine and costs one byte lookup per candidate; a search in a few rooms
  also adds the room terms to the query, so the engine skips straight to
  those rooms' postings;
- newest-first walks the newest documents first and stops as soon as nothing
  older can beat the ones it holds (no scoring, no sorting of every match);
- counts stop at COUNT_CAP allowed matches and are extrapolated from the
  share of the caller's allowed documents scanned so far ("about N"): the
  estimate depends only on documents the caller may read.
"""
from __future__ import annotations

import heapq
from bisect import bisect_right
from typing import Optional

from whoosh import query as wq
from whoosh.idsets import DocIdSet

from search.backend import Request
from search.query import Or, Phrase, Prefix, Word
from search.whoosh_index import to_us
from search.whoosh_segments import PREFIX_CAP, SegmentCache, segment_id

COUNT_CAP = 1000
PHRASE_POOL = 200  # phrase matches are looked for newest first until this many are found, then ranked
FEW_ROOMS = 8


class Leaf:
    """One index segment as the search loops need it."""

    __slots__ = ("searcher", "offset", "n", "allowed", "created", "pmax", "cmax", "n_allowed")

    def __init__(self, searcher, offset, n, allowed, created, pmax, cmax):
        self.searcher, self.offset, self.n = searcher, offset, n
        self.allowed, self.created, self.pmax, self.cmax = allowed, created, pmax, cmax
        self.n_allowed = allowed.count(1)


class DocFilter(DocIdSet):
    """Global document numbers the caller may see (rooms, the date range) that
    also hold each required phrase. Phrases are checked here, on the few
    candidates the engine proposes (their words all match), by reading the
    words' positions with one matcher per word that only moves forward."""

    def __init__(self, leaves: list[Leaf], lo: Optional[int], hi: Optional[int],
                 phrases: tuple[tuple[str, tuple[str, ...]], ...] = ()):
        self.leaves, self.lo, self.hi, self.phrases = leaves, lo, hi, phrases
        self.starts = [lf.offset for lf in leaves]
        self._matchers: dict[tuple[int, int], list] = {}
        self.tf = 0  # occurrences of the phrases in the document last accepted

    def ok(self, leaf: Leaf, d: int) -> bool:
        if not leaf.allowed[d]:
            return False
        if self.lo is not None or self.hi is not None:
            c = leaf.created[d]
            if (self.lo is not None and c < self.lo) or (self.hi is not None and c >= self.hi):
                return False
        if self.phrases:
            self.tf = 0
            for i, ph in enumerate(self.phrases):
                if not self._phrase_at(leaf, i, ph, d):
                    return False
        return True

    def _phrase_at(self, leaf: Leaf, i: int, ph: tuple[str, tuple[str, ...]], d: int) -> bool:
        field, words = ph
        key = (leaf.offset, i)
        ms = self._matchers.get(key)
        if ms is None or any(m.is_active() and m.id() > d for m in ms):  # first use, or moving back
            r = leaf.searcher.reader()
            if any((field, w) not in r for w in words):
                self._matchers[key] = []
                return False
            ms = self._matchers[key] = [r.postings(field, w) for w in words]
        if not ms:
            return False
        starts = None
        for k, m in enumerate(ms):
            if not m.is_active():
                return False
            if m.id() < d:
                m.skip_to(d)
                if not m.is_active():
                    return False
            if m.id() != d:
                return False
            pos = m.value_as("positions")
            here = {p - k for p in pos}
            starts = here if starts is None else starts & here
            if not starts:
                return False
        self.tf += len(starts)
        return True

    def __contains__(self, g: int) -> bool:
        i = bisect_right(self.starts, g) - 1
        leaf = self.leaves[i]
        return self.ok(leaf, g - leaf.offset)

    def __len__(self) -> int:
        return sum(lf.n_allowed for lf in self.leaves)

    def __iter__(self):
        for lf in self.leaves:
            for d in range(lf.n):
                if self.ok(lf, d):
                    yield lf.offset + d


def leaves(s, segments: SegmentCache, rooms: tuple, text_rooms: tuple, part: Optional[int]) -> list[Leaf]:
    """Segments with the documents allowed; `part` (an index into SegmentCache.access_sets):
    one of the two document sets of a caller with text-only rooms (None: all of `rooms`)."""
    out = []
    for sub, offset in s.leaf_searchers():
        r = sub.reader()
        segid = segment_id(r)
        if segid is None or not r.doc_count_all():
            continue
        created, pmax, cmax = segments.created(r, segid)
        if part is None:
            allowed = segments.allowed(r, segid, rooms)
        else:
            allowed = segments.access_sets(r, segid, rooms, text_rooms)[part][0]
        out.append(Leaf(sub, offset, r.doc_count_all(), allowed.bits, created, pmax, cmax))
    return out


def _node(n, field: str, reader):
    if isinstance(n, (Word, Phrase)):
        if len(n.terms) == 1:
            return wq.Term(field, n.terms[0])
        return wq.Phrase(field, n.terms)
    if isinstance(n, Prefix):
        found: dict[str, int] = {}
        for p in n.prefixes:
            for t in reader.expand_prefix(field, p):
                t = t.decode("utf-8") if isinstance(t, bytes) else t
                if t not in found:
                    found[t] = reader.doc_frequency(field, t)
        top = sorted(found, key=found.get, reverse=True)[:PREFIX_CAP]
        if not top:
            return wq.NullQuery
        return wq.Term(field, top[0]) if len(top) == 1 else wq.Or([wq.Term(field, t) for t in top])
    if isinstance(n, Or):
        return wq.Or([_node(c, field, reader) for c in n.children])
    raise TypeError(n)


def compile_query(req: Request, reader, words: str = "content") -> tuple[object, tuple]:
    """The Whoosh query, and the phrases the filter must check. A phrase
    that must match becomes an AND of its words (fast to intersect, scored
    by them) plus a positions check on the candidates; phrases inside OR or
    after - stay Whoosh Phrase queries. `words`: the field searched for words
    ("post": the post's own text, without its attachments)."""
    q = req.query
    field = "title" if q.in_title else words
    parts = []
    phrases = []
    for n in q.must:
        if isinstance(n, (Word, Phrase)) and len(n.terms) > 1:
            parts.extend(wq.Term(field, t) for t in dict.fromkeys(n.terms))
            phrases.append((field, tuple(n.terms)))
        else:
            parts.append(_node(n, field, reader))
    if any(p is wq.NullQuery for p in parts):
        return wq.NullQuery, ()  # a word start that starts no word (And would drop it and match all)
    if req.authors is not None:
        parts.append(wq.Or([wq.Term("author", str(a)) for a in req.authors]) if req.authors else wq.NullQuery)
    if q.has_attachment:
        parts.append(wq.Term("has_att", "1"))
    rooms = list(req.rooms) + list(req.text_rooms)
    if len(rooms) <= FEW_ROOMS:
        parts.append(wq.Or([wq.Term("room", str(r)) for r in rooms]))
    if not parts:
        parts.append(wq.Every())  # (never inside an And: Whoosh would let it swallow the others)
    main = parts[0] if len(parts) == 1 else wq.And(parts)
    if q.must_not:
        main = wq.AndNot(main, wq.Or([_node(n, words, reader) for n in q.must_not]))
    return main.normalize(), tuple(phrases)


def search(s, req: Request, segments: SegmentCache) -> tuple[list, int, bool]:
    """([(score, global docnum)] best first, total, estimated)."""
    need = req.offset + req.limit
    rooms = tuple(sorted(set(req.rooms)))
    if not req.text_rooms:
        return _search(s, req, leaves(s, segments, rooms, (), None), "content")
    # the caller's two sets of documents (see SegmentCache.access_sets), each searched in its fields
    text_rooms = tuple(sorted(set(req.text_rooms)))
    a = _search(s, req, leaves(s, segments, rooms, text_rooms, 0), "content")
    b = _search(s, req, leaves(s, segments, rooms, text_rooms, 1), "post")
    ranked = sorted(a[0] + b[0], reverse=True)[:need]
    return ranked, a[1] + b[1], a[2] or b[2]


def _search(s, req: Request, lvs: list[Leaf], words: str) -> tuple[list, int, bool]:
    q, phrases = compile_query(req, s.reader(), words)
    if q is wq.NullQuery or isinstance(q, wq.NullQuery.__class__):
        return [], 0, False
    lo = to_us(req.query.after) if req.query.after else None
    hi = to_us(req.query.before) if req.query.before else None
    filt = DocFilter(lvs, lo, hi, phrases)
    need = req.offset + req.limit
    must = req.query.must
    if req.sort == "newest" or not must or all(isinstance(n, Prefix) for n in must):
        # (word starts alone: every match is as good as the next, so the newest come first)
        ranked = _newest(q, lvs, filt, need)
    elif phrases:
        return _recent_phrases(q, lvs, filt, need)
    else:
        res = s.search(q, limit=need, filter=filt, terms=False)
        ranked = [(hit.score, hit.docnum) for hit in res]
    total, estimated = _count(q, lvs, DocFilter(lvs, lo, hi, phrases), len(ranked), need)
    return ranked, total, estimated


def _context(s):
    return s.context(needs_current=False, weighting=None)


def _recent_phrases(q, lvs: list[Leaf], filt: DocFilter, need: int):
    """Phrases: when their words are common they are together in most posts,
    and checking word positions in all of those is too slow in Python. So
    walk from the newest posts back, keep the first PHRASE_POOL (at least
    `need`) that hold the phrases, and rank those by a BM25 weight of the
    phrase occurrences. A rare phrase is walked to the end (its words'
    postings are short): the count is then exact; otherwise it is
    extrapolated from the share of the caller's allowed posts walked."""
    want = max(need, PHRASE_POOL)
    found: list[tuple[float, int, int]] = []  # (score, created, global docnum)
    walked_allowed = 0
    complete = True
    total_allowed = sum(lf.n_allowed for lf in lvs)
    for leaf in sorted(lvs, key=lambda lf: lf.cmax, reverse=True):
        r = leaf.searcher.reader()
        avg = max(r.field_length("content") / max(r.doc_count(), 1), 1.0)
        hi, width = leaf.n, 512
        while hi > 0 and len(found) < want:
            lo = max(0, hi - width)
            m = q.matcher(leaf.searcher, _context(leaf.searcher))
            if lo and m.is_active():
                m.skip_to(lo)
            while m.is_active() and m.id() < hi:
                d = m.id()
                if filt.ok(leaf, d):
                    tf = filt.tf
                    dl = r.doc_field_length(d, "content", 1) or 1
                    found.append((tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avg)), leaf.created[d],
                                  leaf.offset + d))
                m.next()
            walked_allowed += leaf.allowed.count(1, lo, hi)
            hi, width = lo, width * 4
        if hi > 0:
            complete = False
            break
    found.sort(reverse=True)
    ranked = [(score, g) for score, _c, g in found]
    if complete:
        return ranked, len(found), False
    return ranked, max(len(found), round(len(found) * total_allowed / max(walked_allowed, 1))), True


def _newest(q, lvs: list[Leaf], filt: DocFilter, need: int) -> list[tuple[float, int]]:
    """Top `need` matches by created time, walking each segment from its end
    in growing windows; stops when no older document could still make the list."""
    heap: list[tuple[int, int]] = []  # (created, global docnum), min-heap of the best `need`
    for leaf in sorted(lvs, key=lambda lf: lf.cmax, reverse=True):
        if len(heap) >= need and heap[0][0] >= leaf.cmax:
            break
        created, ok = leaf.created, filt.ok
        hi, width = leaf.n, 256
        while hi > 0:
            lo = max(0, hi - width)
            m = q.matcher(leaf.searcher, _context(leaf.searcher))
            if lo and m.is_active():
                m.skip_to(lo)
            while m.is_active():
                d = m.id()
                if d >= hi:
                    break
                if ok(leaf, d):
                    item = (created[d], leaf.offset + d)
                    if len(heap) < need:
                        heapq.heappush(heap, item)
                    elif item > heap[0]:
                        heapq.heapreplace(heap, item)
                m.next()
            hi, width = lo, width * 4
            if len(heap) >= need and heap[0][0] >= leaf.pmax[lo]:
                break
    return [(float(c), g) for c, g in sorted(heap, reverse=True)]


def _count(q, lvs: list[Leaf], filt: DocFilter, found: int, need: int) -> tuple[int, bool]:
    """Matches the caller may see: exact up to COUNT_CAP, then extrapolated from
    the share of the caller's own allowed documents scanned so far."""
    if found < need:
        return found, False  # every allowed match was collected
    dated = filt.lo is not None or filt.hi is not None
    check = dated or bool(filt.phrases)
    total_allowed = sum(lf.n_allowed for lf in lvs)
    seen_allowed = 0
    count = 0
    ok = filt.ok
    for leaf in lvs:
        m = q.matcher(leaf.searcher, _context(leaf.searcher))
        allowed = leaf.allowed
        for d in m.all_ids():
            if allowed[d] and (not check or ok(leaf, d)):
                count += 1
                if count >= COUNT_CAP and not dated:
                    scanned = seen_allowed + allowed.count(1, 0, d + 1)
                    return max(count, round(count * total_allowed / max(scanned, 1))), True
        seen_allowed += leaf.n_allowed
    return count, False
