"""The embedded backend: a Whoosh index in <data dir>/search/whoosh.

Layout: each full build goes into its own folder `index-<time>-<pid>`; the
file CURRENT names the live one and is replaced atomically, so a rebuild never
disturbs searches and a half-written build is never used.

Speed (Whoosh is pure Python, so the work per posting is what counts):
- one searcher per process, kept open and refreshed (opening costs ~100 ms);
- the rooms a caller may read become, per index segment, a bytearray of
  allowed documents, cached by (segment, rooms): the permission filter runs
  inside the engine (counts and ranking see only allowed documents) and costs
  one byte lookup per candidate; a search in a few rooms also adds the room
  terms to the query, so the engine skips straight to those rooms' postings;
- created times live in a column loaded once per segment; newest-first walks
  the newest documents first and stops as soon as nothing older can beat the
  20 it holds (no scoring, no sorting of every match);
- a prefix expands to at most PREFIX_CAP index terms (the most frequent ones);
- counts stop at COUNT_CAP allowed matches and are extrapolated from the
  share of the caller's allowed documents scanned so far ("about N"): the
  estimate depends only on documents the caller may read.
"""
from __future__ import annotations

import gc
import heapq
import json
import logging
import os
import shutil
import threading
import time
from array import array
from bisect import bisect_right
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Callable, Iterator, Optional

from whoosh import index as windex
from whoosh import query as wq
from whoosh.codec.whoosh3 import W3Codec
from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, STORED, TEXT, Schema
from whoosh.idsets import DocIdSet
from whoosh.index import TOC
from whoosh.reading import EmptyReader, MultiReader, SegmentReader
from whoosh.writing import SegmentWriter
from whoosh.searching import Searcher

from search import fastpath
from search.backend import Backend, FileLock, Found, Health, Hit, Progress, Request, fsync_tree
from search.documents import SNIPPET_ATTACHMENT_CHARS, Doc
from search.query import Or, Phrase, Prefix, Word
from search.text import CollabTokenizer, FastPositions

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6  # 6: `post`, the post's own text, beside `content` for posts with files
PREFIX_CAP = 12
COUNT_CAP = 1000
PHRASE_POOL = 200  # phrase matches are looked for newest first until this many are found, then ranked
FEW_ROOMS = 8
SEGMENT_DOCS = 80_000  # documents per segment a rebuilding process writes (bounds its memory, ~1 GB)
REFRESH_EVERY = 0.2  # seconds between checks for changes made by other processes
EPOCH = datetime(1970, 1, 1)


def to_us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def codec() -> W3Codec:
    """Posting blocks uncompressed: zlib cost more time (writing and reading) than the disk it saved.
    Writers are also made with compound=False: whoosh-reloaded opens a file inside a compound
    segment by copying it whole into a BytesIO, so opening a 100k-post segment took ~0.6 s (and
    its size in memory), which every index update paid."""
    return W3Codec(compression=0)


def _text_field():
    f = TEXT(analyzer=CollabTokenizer(), phrase=True)
    f.format = FastPositions(field_boost=1.0)
    return f


def make_schema() -> Schema:
    return Schema(
        post_id=ID(stored=True, unique=True),
        room=ID(),
        author=ID(),
        has_att=ID(),
        created=COLUMN(NumericColumn("q")),
        content=_text_field(),
        post=_text_field(),  # title and text without the attachments (posts with attachments only)
        title=_text_field(),
        meta=STORED(),
        body=STORED(),
        att=STORED(),
    )


def doc_fields(d: Doc) -> dict:
    us = to_us(d.created_at)
    f = {
        "post_id": str(d.post_id),
        "room": str(d.room_id),
        "created": us,
        "content": "\n".join(p for p in (d.title, d.body, d.attachments) if p),
        "meta": (d.thread_id, d.room_id, d.author_id, us),
    }
    if d.attachments:  # (the post text itself is not stored: snippets read it from the database)
        f["att"] = d.attachments[:SNIPPET_ATTACHMENT_CHARS]
        own = "\n".join(p for p in (d.title, d.body) if p)
        if own:  # what a caller who may not read the files searches (Request.text_rooms)
            f["post"] = own
    if d.author_id is not None:
        f["author"] = str(d.author_id)
    if d.has_attachment:
        f["has_att"] = "1"
    if d.title:
        f["title"] = d.title
    return f


class _Lengths:
    """Field lengths for the postings flush, read once per field instead of
    once per posting (Whoosh seeks and reads the length column per posting)."""

    def __init__(self, pdr):
        self.pdr = pdr
        self.n = pdr.doc_count_all()
        self.cache: dict[str, list[int]] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int:
        got = self.cache.get(fieldname)
        if got is None:
            dfl = self.pdr.doc_field_length
            got = self.cache[fieldname] = [dfl(d, fieldname, default) for d in range(self.n)]
        return got[docnum]


class DictPool:
    """A posting pool for one segment built in memory: postings grouped by
    term as they come (documents arrive in order, so each term's list is
    already sorted) and only the terms sorted at the end, instead of Whoosh's
    PostingPool, which sorts every posting tuple (and spills sorted runs to
    disk through pickle). Memory is bounded by starting a new segment every
    SEGMENT_DOCS documents."""

    def __init__(self, tempstore=None, segment=None, limitmb=0, **_kw):
        self.terms: dict[tuple, list] = {}
        self.fieldnames: set[str] = set()

    def add(self, item) -> None:
        fieldname, tbytes, docnum, weight, vbytes = item
        lst = self.terms.get((fieldname, tbytes))
        if lst is None:
            self.terms[(fieldname, tbytes)] = lst = []
            self.fieldnames.add(fieldname)
        lst.append((docnum, weight, vbytes))

    def iter_postings(self):
        terms = self.terms
        for key in sorted(terms):
            fieldname, tbytes = key
            for docnum, weight, vbytes in terms[key]:
                yield fieldname, tbytes, docnum, weight, vbytes

    def cleanup(self) -> None:
        self.terms = {}


class FastSegmentWriter(SegmentWriter):
    def _flush_segment(self):
        self.perdocwriter.close()
        pdr = self.per_document_reader() if self.codec.length_stats else None
        self.fieldwriter.add_postings(self.schema, _Lengths(pdr) if pdr else None, self.pool.iter_postings())
        self.fieldwriter.close()
        if pdr:
            pdr.close()


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


class WhooshBackend(Backend):
    name = "whoosh"

    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir) / "search" / "whoosh"
        self.lock = FileLock(self.root / "writer.lock")
        self._mutex = threading.RLock()
        self._ix = None
        self._ix_dir: Optional[Path] = None
        self._searcher = None
        self._pointer_stamp = None
        self._checked = 0.0
        self._writes = 0
        self._seen_writes = 0
        self._allowed_cache: "OrderedDict[tuple, bytearray]" = OrderedDict()
        self._created_cache: dict[str, tuple] = {}
        self._readers: dict[tuple, object] = {}
        self._generation = None
        self._postings = fastpath.PostingsCache()
        self._norms: dict[tuple, list] = {}
        self._allowed_sets: "OrderedDict[tuple, frozenset]" = OrderedDict()
        self._prefixes: "OrderedDict[tuple, dict]" = OrderedDict()  # (segment, field, prefix) -> {term: df}
        self.fast = True  # set operations over decoded postings (search.fastpath); False: Whoosh matchers

    # -- where the live index is --------------------------------------------------

    @property
    def pointer(self) -> Path:
        return self.root / "CURRENT"

    def current_dir(self) -> Optional[Path]:
        try:
            name = self.pointer.read_text().strip()
        except OSError:
            return None
        d = self.root / name
        return d if name and d.is_dir() else None

    def _stamp(self):
        try:
            st = self.pointer.stat()
            return (st.st_ino, st.st_mtime_ns)
        except OSError:
            return None

    def _open_index(self, d: Path):
        ix = windex.open_dir(str(d))
        marker = json.loads((d / "collab.json").read_text())
        if marker.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"index schema {marker.get('schema')} is not {SCHEMA_VERSION}")
        return ix

    # -- reading --------------------------------------------------------------------

    def _close_searcher(self) -> None:
        for r in self._readers.values():
            try:
                r.close()
            except Exception:
                pass
        self._readers = {}
        self._searcher = None
        self._ix = None
        self._ix_dir = None
        self._generation = None

    def searcher(self):
        """The process's long-lived searcher, brought up to date when the index
        changed (call under _mutex). Segment readers are kept and reused while
        their segment and its deletions are unchanged: opening them is what is
        slow. (whoosh-reloaded's own Searcher.refresh() reuses readers of
        merged-away segments and misses new deletions, so it is not used.)"""
        now = time.monotonic()
        if self._searcher is not None and self._writes == self._seen_writes and now - self._checked < REFRESH_EVERY:
            return self._searcher
        stamp = self._stamp()
        if self._ix is None or stamp != self._pointer_stamp:
            self._close_searcher()
            d = self.current_dir()
            self._pointer_stamp = stamp
            if d is None:
                return None
            self._ix = self._open_index(d)
            self._ix_dir = d
            self._created_cache.clear()
            self._allowed_cache.clear()
            self._allowed_sets.clear()
            self._norms.clear()
            self._postings.clear()
            self._prefixes.clear()
        self._checked = now
        self._seen_writes = self._writes
        if self._searcher is not None and self._ix.latest_generation() == self._generation:
            return self._searcher
        toc = self._ix._read_toc()
        fresh = {}
        readers = []
        for seg in toc.segments:
            key = (seg.segment_id(), seg.deleted_count())
            r = self._readers.get(key) or SegmentReader(self._ix.storage, toc.schema, seg,
                                                          generation=toc.generation)
            fresh[key] = r
            readers.append(r)
        for key, r in self._readers.items():
            if key not in fresh:
                r.close()
        self._readers = fresh
        live = {segid for segid, _deleted in fresh}
        for cache in (self._created_cache, self._norms, self._prefixes):  # forget merged-away segments
            for key in [k for k in cache if (k if isinstance(k, str) else k[0]) not in live]:
                del cache[key]
        if not readers:
            reader = EmptyReader(toc.schema)
        elif len(readers) == 1:
            reader = readers[0]
        else:
            reader = MultiReader(readers, generation=toc.generation)
        self._searcher = Searcher(reader, fromindex=self._ix, closereader=False)
        self._generation = toc.generation
        return self._searcher

    def _created(self, reader, segid: str):
        got = self._created_cache.get(segid)
        if got is None:
            created = array("q", reader.column_reader("created", translate=False))
            pmax = array("q", [0]) + array("q", accumulate(created, max)) if len(created) else array("q", [0])
            got = (created, pmax, pmax[-1])
            self._created_cache[segid] = got
        return got

    def _allowed(self, reader, segid: str, rooms: tuple) -> bytearray:
        n = reader.doc_count_all()
        key = (segid, n - reader.doc_count(), rooms)
        bm = self._allowed_cache.get(key)
        if bm is not None:
            self._allowed_cache.move_to_end(key)
            return bm
        wanted = {str(r) for r in rooms}
        present = {t: reader.doc_frequency("room", t) for t in reader.field_terms("room")}
        yes = sum(df for t, df in present.items() if t in wanted)
        if yes * 2 <= sum(present.values()):
            bm = bytearray(n)
            for t in present:
                if t in wanted:
                    for d in reader.postings("room", t).all_ids():
                        bm[d] = 1
        else:
            bm = bytearray(b"\x01") * n
            for t in present:
                if t not in wanted:
                    for d in reader.postings("room", t).all_ids():
                        bm[d] = 0
            if reader.has_deletions():
                for d in reader.deleted_docs_set:
                    bm[d] = 0
        self._allowed_cache[key] = bm
        while len(self._allowed_cache) > 128:
            self._allowed_cache.popitem(last=False)
        return bm

    def _leaves(self, s, rooms: list[int], part: Optional[tuple] = None) -> list[Leaf]:
        """Segments with the documents allowed; `part` ((rooms, text_rooms), index into
        _access_sets): one of the document sets of a caller with text-only rooms."""
        key = tuple(sorted(set(rooms)))
        out = []
        for sub, offset in s.leaf_searchers():
            r = sub.reader()
            seg = r.segment() if hasattr(r, "segment") else None
            if seg is None or not r.doc_count_all():
                continue
            segid = seg.segment_id()
            created, pmax, cmax = self._created(r, segid)
            if part is None:
                allowed = self._allowed(r, segid, key)
            else:
                allowed = bytearray(r.doc_count_all())
                for d in self._access_sets(r, segid, *part[0])[part[1]][1]:
                    allowed[d] = 1
            out.append(Leaf(sub, offset, r.doc_count_all(), allowed, created, pmax, cmax))
        return out

    # -- queries ----------------------------------------------------------------------

    def _node(self, n, field: str, reader):
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
            return wq.Or([self._node(c, field, reader) for c in n.children])
        raise TypeError(n)

    def compile(self, req: Request, reader, words: str = "content") -> tuple[object, tuple]:
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
                parts.append(self._node(n, field, reader))
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
            main = wq.AndNot(main, wq.Or([self._node(n, words, reader) for n in q.must_not]))
        return main.normalize(), tuple(phrases)

    def search(self, req: Request) -> Found:
        with self._mutex:
            s = self.searcher()
            if s is None:
                return Found([], 0)
            if self.fast:
                try:
                    got = self._fast_search(s, req)
                except (AttributeError, TypeError):  # Whoosh internals not as expected: use its matchers
                    log.exception("search fast path failed; using Whoosh matchers from now on")
                    self.fast = False
                else:
                    if got is not None:
                        return got
            need = req.offset + req.limit
            if not req.text_rooms:
                ranked, total, estimated = self._slow(s, req, None, "content")
            else:  # the caller's two sets of documents (see _access_sets), each searched in its fields
                parts = (tuple(sorted(set(req.rooms))), tuple(sorted(set(req.text_rooms))))
                a = self._slow(s, req, (parts, 0), "content")
                b = self._slow(s, req, (parts, 1), "post")
                ranked = sorted(a[0] + b[0], reverse=True)[:need]
                total, estimated = a[1] + b[1], a[2] or b[2]
            return Found(self._hits(s, ranked[req.offset:need]), total, estimated)

    def _slow(self, s, req: Request, part: Optional[tuple], words: str) -> tuple[list, int, bool]:
        """Whoosh's own matchers (the fallback): ([(score, global docnum)] best first, total, estimated)."""
        q, phrases = self.compile(req, s.reader(), words)
        if q is wq.NullQuery or isinstance(q, wq.NullQuery.__class__):
            return [], 0, False
        leaves = self._leaves(s, list(req.rooms) + list(req.text_rooms), part)
        lo = to_us(req.query.after) if req.query.after else None
        hi = to_us(req.query.before) if req.query.before else None
        filt = DocFilter(leaves, lo, hi, phrases)
        need = req.offset + req.limit
        must = req.query.must
        if req.sort == "newest" or not must or all(isinstance(n, Prefix) for n in must):
            # (word starts alone: every match is as good as the next, so the newest come first)
            ranked = self._newest(q, s, leaves, filt, need)
        elif phrases:
            return self._recent_phrases(q, leaves, filt, need)
        else:
            res = s.search(q, limit=need, filter=filt, terms=False)
            ranked = [(hit.score, hit.docnum) for hit in res]
        total, estimated = self._count(q, s, leaves, DocFilter(leaves, lo, hi, phrases), len(ranked), need)
        return ranked, total, estimated

    # -- the fast path (search.fastpath) -------------------------------------------------

    def _expand(self, reader, field: str, n: Prefix) -> list[str]:
        """The PREFIX_CAP most frequent index terms starting with the prefixes. Each segment's
        terms and frequencies for a prefix are read once and kept (a segment never changes;
        a short prefix can start a thousand terms, and looking up each one's frequency through
        every segment took 30 ms)."""
        found: dict[str, int] = {}
        for r, _offset in reader.leaf_readers():
            seg = r.segment() if hasattr(r, "segment") else None
            for p in n.prefixes:
                key = (seg.segment_id() if seg is not None else id(r), field, p)
                got = self._prefixes.get(key) if seg is not None else None
                if got is None:
                    got = {}
                    for t in r.expand_prefix(field, p):
                        t = t.decode("utf-8") if isinstance(t, bytes) else t
                        got[t] = r.doc_frequency(field, t)
                    if seg is not None:
                        self._prefixes[key] = got
                        while len(self._prefixes) > 2000:
                            self._prefixes.popitem(last=False)
                for t, df in got.items():
                    found[t] = found.get(t, 0) + df
        return sorted(found, key=found.get, reverse=True)[:PREFIX_CAP]

    def _fp_node(self, n, field: str, reader):
        if isinstance(n, (Word, Phrase)):
            if len(n.terms) == 1:
                return fastpath.Terms(field, [n.terms[0]])
            return fastpath.PhraseQ(field, list(n.terms))
        if isinstance(n, Prefix):
            return fastpath.Terms(field, self._expand(reader, field, n))
        if isinstance(n, Or):
            kids = [self._fp_node(c, field, reader) for c in n.children]
            if all(isinstance(k, fastpath.Terms) for k in kids):
                return fastpath.Terms(field, [t for k in kids for t in k.terms])
            return fastpath.AnyOf(kids)
        raise TypeError(n)

    def plan(self, req: Request, reader) -> Optional[fastpath.Plan]:
        """The query for the fast path; None when nothing can match."""
        q = req.query
        field_ = "title" if q.in_title else "content"
        plan = fastpath.Plan()
        plan.must = [self._fp_node(n, field_, reader) for n in q.must]
        plan.must_not = [self._fp_node(n, "content", reader) for n in q.must_not]
        if any(isinstance(n, fastpath.Terms) and not n.terms for n in plan.must):
            return None  # a word start that starts no word
        plan.must_not = [n for n in plan.must_not if not (isinstance(n, fastpath.Terms) and not n.terms)]
        if req.authors is not None:
            if not req.authors:
                return None
            plan.filters.append(fastpath.Terms("author", [str(a) for a in req.authors]))
        if q.has_attachment:
            plan.filters.append(fastpath.Terms("has_att", ["1"]))
        plan.lo = to_us(q.after) if q.after else None
        plan.hi = to_us(q.before) if q.before else None
        plan.everything = not plan.must
        return plan

    @staticmethod
    def _avg_length(reader, field_: str) -> float:
        """The whole index's average field length, to 3 significant digits. BM25
        normalises by it; taking each segment's own average instead made the same
        post score differently depending on which segment it landed in (which
        depends on how index updates happened to be batched)."""
        avg = max(reader.field_length(field_) / max(reader.doc_count(), 1), 1.0)
        return float(f"{avg:.3g}")

    def _norms_for(self, reader, segid: str, field_: str, avg: float) -> list:
        key = (segid, field_)
        got = self._norms.get(key)
        if got is not None and got[0] == avg:
            return got[1]
        n = reader.doc_count_all()
        try:
            from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
            from whoosh.util.numeric import byte_to_length

            col = reader._perdoc._cached_reader(_lenfield(field_), LENGTHS_COLUMN)
            lengths = [byte_to_length(b) for b in col] if col is not None else [0] * n
        except AttributeError:
            lengths = [reader.doc_field_length(d, field_, 0) for d in range(n)]
        got = [fastpath.K1 * ((1 - fastpath.B) + fastpath.B * dl / avg) for dl in lengths]
        self._norms[key] = (avg, got)
        return got

    def _ties(self, segid: str, created) -> list:
        """Per document of a segment: fastpath.TIE × its rank by created time (ties by number)."""
        key = (segid, "ties")
        got = self._norms.get(key)
        if got is None:
            got = [0.0] * len(created)
            for rank, d in enumerate(sorted(range(len(created)), key=created.__getitem__)):
                got[d] = rank * fastpath.TIE
            self._norms[key] = got
        return got

    def _allowed_set(self, reader, segid: str, rooms: tuple) -> frozenset:
        n = reader.doc_count_all()
        key = (segid, n - reader.doc_count(), rooms)
        got = self._allowed_sets.get(key)
        if got is not None:
            self._allowed_sets.move_to_end(key)
            return got
        wanted = {str(r) for r in rooms}
        present = {t: reader.doc_frequency("room", t) for t in reader.field_terms("room")}
        yes = sum(df for t, df in present.items() if t in wanted)

        def docs(terms):
            return [self._postings.get(reader, segid, "room", t).idset for t in terms]

        if yes * 2 <= sum(present.values()):
            got = frozenset().union(*docs([t for t in present if t in wanted]))
        else:
            got = frozenset(range(n)).difference(*docs([t for t in present if t not in wanted]))
        if reader.has_deletions():
            got = got - frozenset(reader.deleted_docs_set)
        self._allowed_sets[key] = got
        while len(self._allowed_sets) > 48:  # (allowed, sorted and denied sets of a few room sets × segments)
            self._allowed_sets.popitem(last=False)
        return got

    def _access_sets(self, reader, segid: str, rooms: tuple, text_rooms: tuple) -> list[tuple]:
        """[(cache key, allowed documents, fields read instead of the plan's)] of one segment for a
        caller: everything in `rooms`; in `text_rooms` (whose attachment text the caller may not
        read, Request.text_rooms) a post without files as it is, and a post with files only by its
        own text (the `post` field): a word found only in its files finds nothing."""
        if not text_rooms:
            return [(rooms, self._allowed_set(reader, segid, rooms), {})]
        dels = reader.doc_count_all() - reader.doc_count()
        main_key, text_key = ("main", rooms, text_rooms), ("text", rooms, text_rooms)
        main = self._allowed_sets.get((main_key, segid, dels))
        text = self._allowed_sets.get((text_key, segid, dels))
        if main is None or text is None:
            limited = self._allowed_set(reader, segid, text_rooms)
            files = self._postings.get(reader, segid, "has_att", "1").idset
            main = self._allowed_set(reader, segid, rooms) | (limited - files)
            text = limited & files
            self._allowed_sets[(main_key, segid, dels)] = main
            self._allowed_sets[(text_key, segid, dels)] = text
        return [(main_key, main, {}), (text_key, text, {"content": "post"})]

    def _denied(self, reader, segid: str, rooms: tuple, allowed: frozenset) -> frozenset:
        """The segment's documents not in `allowed` (deleted documents included)."""
        key = ("denied", segid, reader.doc_count_all() - reader.doc_count(), rooms)
        got = self._allowed_sets.get(key)
        if got is None:
            got = self._allowed_sets[key] = frozenset(range(reader.doc_count_all())).difference(allowed)
        return got

    def _sorted_allowed(self, reader, segid: str, rooms: tuple, allowed: frozenset) -> list:
        key = ("sorted", segid, reader.doc_count_all() - reader.doc_count(), rooms)
        got = self._allowed_sets.get(key)
        if got is None:
            got = self._allowed_sets[key] = sorted(allowed)
        return got

    def _fast_search(self, s, req: Request) -> Optional[Found]:
        reader = s.reader()
        plan = self.plan(req, reader)
        if plan is None:
            return Found([], 0)
        rooms = tuple(sorted(set(req.rooms)))
        text_rooms = tuple(sorted(set(req.text_rooms)))
        avgs: dict[str, float] = {}

        def avg(f: str) -> float:
            if f not in avgs:
                avgs[f] = self._avg_length(reader, f)
            return avgs[f]

        views = []
        for sub, offset in s.leaf_searchers():
            r = sub.reader()
            seg = r.segment() if hasattr(r, "segment") else None
            if seg is None or not r.doc_count_all():
                continue
            segid = seg.segment_id()
            created, pmax, _cmax = self._created(r, segid)
            # One view of the segment per set of documents the caller may search, with the fields it reads.
            for key, allowed, fields in self._access_sets(r, segid, rooms, text_rooms):
                views.append(fastpath.LeafView(
                    reader=r, segid=segid, offset=offset, allowed=allowed, created=created, pmax=pmax,
                    allowed_sorted=lambda r=r, segid=segid, key=key, allowed=allowed:
                        self._sorted_allowed(r, segid, key, allowed),
                    norms=lambda f, r=r, segid=segid: self._norms_for(r, segid, f, avg(f)),
                    ties=lambda segid=segid, created=created: self._ties(segid, created),
                    denied=lambda r=r, segid=segid, key=key, allowed=allowed: self._denied(r, segid, key, allowed),
                    fields=fields))
        must = req.query.must
        newest = req.sort == "newest" or not must or all(isinstance(n, Prefix) for n in must)
        engine = fastpath.Engine(self._postings, s.idf)
        need = req.offset + req.limit
        ranked, total, estimated = engine.run(views, plan, need, newest)
        return Found(self._hits(s, ranked[req.offset:need]), total, estimated)

    @staticmethod
    def _hits(s, ranked) -> list[Hit]:
        hits = []
        for score, g in ranked:
            f = s.stored_fields(g)
            thread_id, room_id, author_id, us = f["meta"]
            hits.append(Hit(int(f["post_id"]), thread_id, room_id, author_id, from_us(us), float(score),
                            None, f.get("att", "")))
        return hits

    def _recent_phrases(self, q, leaves: list[Leaf], filt: DocFilter, need: int):
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
        total_allowed = sum(lf.n_allowed for lf in leaves)
        for leaf in sorted(leaves, key=lambda lf: lf.cmax, reverse=True):
            r = leaf.searcher.reader()
            avg = max(r.field_length("content") / max(r.doc_count(), 1), 1.0)
            hi, width = leaf.n, 512
            while hi > 0 and len(found) < want:
                lo = max(0, hi - width)
                m = q.matcher(leaf.searcher, self._context(leaf.searcher))
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

    def _context(self, s):
        return s.context(needs_current=False, weighting=None)

    def _newest(self, q, s, leaves: list[Leaf], filt: DocFilter, need: int) -> list[tuple[float, int]]:
        """Top `need` matches by created time, walking each segment from its end
        in growing windows; stops when no older document could still make the list."""
        heap: list[tuple[int, int]] = []  # (created, global docnum), min-heap of the best `need`
        for leaf in sorted(leaves, key=lambda lf: lf.cmax, reverse=True):
            if len(heap) >= need and heap[0][0] >= leaf.cmax:
                break
            created, ok = leaf.created, filt.ok
            hi, width = leaf.n, 256
            while hi > 0:
                lo = max(0, hi - width)
                m = q.matcher(leaf.searcher, self._context(leaf.searcher))
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

    def _count(self, q, s, leaves: list[Leaf], filt: DocFilter, found: int, need: int) -> tuple[int, bool]:
        """Matches the caller may see: exact up to COUNT_CAP, then extrapolated from
        the share of the caller's own allowed documents scanned so far."""
        if found < need:
            return found, False  # every allowed match was collected
        dated = filt.lo is not None or filt.hi is not None
        check = dated or bool(filt.phrases)
        total_allowed = sum(lf.n_allowed for lf in leaves)
        seen_allowed = 0
        count = 0
        ok = filt.ok
        for leaf in leaves:
            m = q.matcher(leaf.searcher, self._context(leaf.searcher))
            allowed = leaf.allowed
            for d in m.all_ids():
                if allowed[d] and (not check or ok(leaf, d)):
                    count += 1
                    if count >= COUNT_CAP and not dated:
                        scanned = seen_allowed + allowed.count(1, 0, d + 1)
                        return max(count, round(count * total_allowed / max(scanned, 1))), True
            seen_allowed += leaf.n_allowed
        return count, False

    def allowed_counts(self, words: list[str], rooms: list[int], cap: int = 50,
                       text_rooms: list[int] = ()) -> dict[str, int]:
        from search.text import term_of

        out: dict[str, int] = {}
        with self._mutex:
            s = self.searcher()
            if s is None:
                return {w: 0 for w in words}
            reader = s.reader()
            key, text_key = tuple(sorted(set(rooms))), tuple(sorted(set(text_rooms)))
            segments = None
            for w in words:
                t = term_of(w)
                if t is None or reader.doc_frequency("content", t) == 0:
                    out[w] = 0
                    continue
                if segments is None:
                    segments = [(r, seg.segment_id()) for r, _o in reader.leaf_readers()
                                if (seg := (r.segment() if hasattr(r, "segment") else None)) is not None]
                c = 0
                for r, segid in segments:
                    for _k, allowed, fields in self._access_sets(r, segid, key, text_key):
                        f = fields.get("content", "content")
                        if (f, t) in r:
                            c += len(self._postings.get(r, segid, f, t).idset & allowed)
                    if c >= cap:
                        break
                out[w] = min(c, cap)
        return out

    # -- writing ------------------------------------------------------------------

    @contextmanager
    def writing(self, timeout: float):
        got = self.lock.acquire(timeout)
        try:
            yield got
        finally:
            if got:
                self.lock.release()

    def apply(self, docs: list[Doc], remove_ids: list[int]) -> bool:
        """Write changes into the live index. False when there is no usable index
        (the changes stay in the outbox for the rebuild)."""
        d = self.current_dir()
        if d is None:
            return False
        ix = self._open_index(d)
        start = time.time()
        w = ix.writer(timeout=5.0, codec=codec(), compound=False)
        try:
            for pid in remove_ids:
                w.delete_by_term("post_id", str(pid))
            for doc in docs:
                w.update_document(**doc_fields(doc))
        except BaseException:
            w.cancel()
            raise
        w.commit()
        fsync_tree(d, start - 2)
        self._writes += 1
        return True

    def rebuild(self, parts: list[Callable[[], Iterator[list[Doc]]]], progress: Progress = None,
                child_init: Optional[Callable[[], None]] = None) -> int:
        """Build a complete new index beside the live one, then switch to it.

        Each part (a source of document batches, e.g. a range of post ids) is
        indexed into its own segment; with several parts, by that many forked
        processes at once (each reads its own posts), and the segments are
        listed together in one table of contents: no merge pass."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"index-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}"
        d = self.root / name
        d.mkdir()
        try:
            ix = windex.create_in(str(d), make_schema())
            if len(parts) == 1:
                segments, n = self._build_part(ix, parts[0], progress)
            else:
                segments, n = self._build_parallel(d, parts, progress, child_init)
            TOC(ix.schema, segments, ix.latest_generation() + 1).write(ix.storage, ix.indexname)
            (d / "collab.json").write_text(json.dumps({"schema": SCHEMA_VERSION, "documents": n,
                                                       "built": time.time()}))
            fsync_tree(d)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        tmp = self.root / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(name)
        fd = os.open(tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, self.pointer)
        fsync_tree(self.root, time.time() + 3600)  # just the folder entry
        for old in self.root.iterdir():
            if old.is_dir() and old.name.startswith("index-") and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self._writes += 1
        return n

    @staticmethod
    def _build_part(ix, part, progress, counter=None) -> tuple[list, int]:
        def writer():
            w = FastSegmentWriter(ix, _lk=False, codec=codec(), compound=False)
            w.pool = DictPool()  # (SegmentWriter ignores its poolclass argument)
            return w

        w = writer()
        n = in_segment = 0
        segments = []
        gc_was = gc.isenabled()
        gc.disable()  # millions of small tuples and no cycles: the collector would only cost time
        try:
            for batch in part():
                for doc in batch:
                    w.add_document(**doc_fields(doc))
                n += len(batch)
                in_segment += len(batch)
                if in_segment >= SEGMENT_DOCS:
                    segments.append(w._finalize_segment())
                    w.pool.cleanup()
                    w = writer()
                    in_segment = 0
                if progress:
                    progress(len(batch))
                if counter is not None:
                    with counter.get_lock():
                        counter.value += len(batch)
            if in_segment:
                segments.append(w._finalize_segment())
                w.pool.cleanup()
        finally:
            if gc_was:
                gc.enable()
            if counter is None:  # forked writers share the temp folder: the parent removes it
                w._tempstorage.destroy()
        return segments, n

    def _build_parallel(self, d: Path, parts, progress, child_init) -> tuple[list, int]:
        import multiprocessing as mp
        import pickle

        ctx = mp.get_context("fork")
        counter = ctx.Value("q", 0)
        results = ctx.Queue()

        def child(i: int, part) -> None:
            try:
                if child_init:
                    child_init()
                segments, n = self._build_part(windex.open_dir(str(d)), part, None, counter)
                results.put((i, pickle.dumps(segments), n, None))
            except BaseException as err:  # report, never hang the parent
                results.put((i, None, 0, f"{type(err).__name__}: {err}"))

        kids = [ctx.Process(target=child, args=(i, part), daemon=True) for i, part in enumerate(parts)]
        for k in kids:
            k.start()
        done: dict[int, tuple] = {}
        seen = 0
        try:
            while len(done) < len(kids):
                try:
                    i, segs, n, err = results.get(timeout=0.5)
                    done[i] = (segs, n, err)
                except Exception:
                    if any(k.exitcode not in (None, 0) for k in kids):
                        raise RuntimeError("an indexing process died") from None
                if progress:
                    now = counter.value
                    if now > seen:
                        progress(now - seen)
                        seen = now
        finally:
            for k in kids:
                k.join(timeout=5)
                if k.is_alive():
                    k.kill()
            for tmp in d.glob("*.tmp"):
                shutil.rmtree(tmp, ignore_errors=True)
        errors = [e for _s, _n, e in done.values() if e]
        if errors:
            raise RuntimeError("indexing failed: " + "; ".join(errors))
        segments = [seg for i in sorted(done) for seg in pickle.loads(done[i][0])]
        return segments, sum(n for _s, n, _e in done.values())

    def health(self) -> Health:
        d = self.current_dir()
        if d is None:
            return Health(False, "missing")
        try:
            ix = self._open_index(d)
            with ix.searcher() as s:
                n = s.doc_count()
                for sub, _off in s.leaf_searchers():
                    r = sub.reader()
                    if r.doc_count_all():
                        r.stored_fields(r.doc_count_all() - 1)
                        list(r.column_reader("created", translate=False))[:1]
                    for _t in r.field_terms("room"):
                        break
            return Health(True, "ok", n)
        except Exception as err:
            return Health(False, f"broken ({type(err).__name__}: {err})")

    def documents(self) -> int:
        with self._mutex:
            s = self.searcher()
            return s.doc_count() if s is not None else 0

    def gone(self) -> bool:
        """Cheap: has the live index folder disappeared?"""
        return self.current_dir() is None

    def close(self) -> None:
        with self._mutex:
            self._close_searcher()
