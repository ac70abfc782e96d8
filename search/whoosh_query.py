"""Queries on the Whoosh index by set operations (search.fastpath): the usual way.

A request becomes a fastpath.Plan (word starts expanded to their most frequent
terms), and each index segment becomes one fastpath.LeafView per set of
documents the caller may search (search.whoosh_segments.SegmentCache
.access_sets: the permission filter is one more intersection inside the
engine, so counts and ranking see only allowed documents). When this path
fails, the backend answers through Whoosh's own matchers
(search.whoosh_matchers) and records the failure.
"""
from __future__ import annotations

from typing import Optional

from search import fastpath
from search.backend import Found, Hit, Request
from search.query import Or, Phrase, Prefix, Word
from search.whoosh_index import from_us, to_us
from search.whoosh_segments import SegmentCache, segment_id


def _node(n, field: str, reader, segments: SegmentCache):
    if isinstance(n, (Word, Phrase)):
        if len(n.terms) == 1:
            return fastpath.Terms(field, [n.terms[0]])
        return fastpath.PhraseQ(field, list(n.terms))
    if isinstance(n, Prefix):
        return fastpath.Terms(field, segments.expand(reader, field, n.prefixes))
    if isinstance(n, Or):
        kids = [_node(c, field, reader, segments) for c in n.children]
        if all(isinstance(k, fastpath.Terms) for k in kids):
            return fastpath.Terms(field, [t for k in kids for t in k.terms])
        return fastpath.AnyOf(kids)
    raise TypeError(f"the fast path has no plan for a {type(n).__name__} query node")


def plan(req: Request, reader, segments: SegmentCache) -> Optional[fastpath.Plan]:
    """The query for the fast path; None when nothing can match."""
    q = req.query
    field_ = "title" if q.in_title else "content"
    p = fastpath.Plan()
    p.must = [_node(n, field_, reader, segments) for n in q.must]
    p.must_not = [_node(n, "content", reader, segments) for n in q.must_not]
    if any(isinstance(n, fastpath.Terms) and not n.terms for n in p.must):
        return None  # a word start that starts no word
    p.must_not = [n for n in p.must_not if not (isinstance(n, fastpath.Terms) and not n.terms)]
    if req.authors is not None:
        if not req.authors:
            return None
        p.filters.append(fastpath.Terms("author", [str(a) for a in req.authors]))
    if q.has_attachment:
        p.filters.append(fastpath.Terms("has_att", ["1"]))
    p.lo = to_us(q.after) if q.after else None
    p.hi = to_us(q.before) if q.before else None
    p.everything = not p.must
    return p


def avg_length(reader, field_: str) -> float:
    """The whole index's average field length, to 3 significant digits. BM25
    normalises by it; taking each segment's own average instead made the same
    post score differently depending on which segment it landed in (which
    depends on how index updates happened to be batched)."""
    avg = max(reader.field_length(field_) / max(reader.doc_count(), 1), 1.0)
    return float(f"{avg:.3g}")


def hits(s, ranked) -> list[Hit]:
    """[(score, global docnum)] as Hits, from the stored fields."""
    out = []
    for score, g in ranked:
        f = s.stored_fields(g)
        thread_id, room_id, author_id, us = f["meta"]
        out.append(Hit(int(f["post_id"]), thread_id, room_id, author_id, from_us(us), float(score),
                       None, f.get("att", "")))
    return out


def search(s, req: Request, segments: SegmentCache) -> Found:
    reader = s.reader()
    p = plan(req, reader, segments)
    if p is None:
        return Found([], 0)
    rooms = tuple(sorted(set(req.rooms)))
    text_rooms = tuple(sorted(set(req.text_rooms)))
    avgs: dict[str, float] = {}

    def avg(f: str) -> float:
        if f not in avgs:
            avgs[f] = avg_length(reader, f)
        return avgs[f]

    views = []
    for sub, offset in s.leaf_searchers():
        r = sub.reader()
        segid = segment_id(r)
        if segid is None or not r.doc_count_all():
            continue
        created, pmax, _cmax = segments.created(r, segid)
        # One view of the segment per set of documents the caller may search, with the fields it reads.
        for allowed, fields in segments.access_sets(r, segid, rooms, text_rooms):
            views.append(fastpath.LeafView(
                reader=r, segid=segid, offset=offset, allowed=allowed.docs, created=created, pmax=pmax,
                allowed_sorted=allowed.sorted,
                norms=lambda f, r=r, segid=segid: segments.norms(r, segid, f, avg(f)),
                ties=lambda segid=segid, created=created: segments.ties(segid, created),
                denied=allowed.denied,
                fields=fields))
    must = req.query.must
    newest = req.sort == "newest" or not must or all(isinstance(n, Prefix) for n in must)
    engine = fastpath.Engine(segments.postings, s.idf)
    need = req.offset + req.limit
    ranked, total, estimated = engine.run(views, p, need, newest)
    return Found(hits(s, ranked[req.offset:need]), total, estimated)


def allowed_counts(s, segments: SegmentCache, words: list[str], rooms: list[int], cap: int,
                   text_rooms: list[int]) -> dict[str, int]:
    """Backend.allowed_counts (for "did you mean"): per index term, the allowed documents holding it, up to `cap`."""
    out: dict[str, int] = {}
    reader = s.reader()
    key, text_key = tuple(sorted(set(rooms))), tuple(sorted(set(text_rooms)))
    leaves = None
    for w in words:
        t = w
        if not t or reader.doc_frequency("content", t) == 0:
            out[w] = 0
            continue
        if leaves is None:
            leaves = [(r, segid) for r, _o in reader.leaf_readers() if (segid := segment_id(r)) is not None]
        c = 0
        for r, segid in leaves:
            for allowed, fields in segments.access_sets(r, segid, key, text_key):
                f = fields.get("content", "content")
                if (f, t) in r:
                    c += len(segments.postings.get(r, segid, f, t).idset & allowed.docs)
            if c >= cap:
                break
        out[w] = min(c, cap)
    return out
