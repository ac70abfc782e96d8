"""The process's long-lived Whoosh searcher and what is worked out once per index segment.

Opening a searcher costs ~100 ms, so one is kept open and refreshed. A
segment never changes once written (only its deletions do), so what the
searches derive from it is kept, keyed by the segment's id (and its count of
deleted documents where deletions matter), and forgotten when the segment is
merged away or the live build is replaced:

- created times (a column) and their running maximum;
- the documents a caller may see (`Allowed`), per set of rooms: THE one
  cache of allowed documents. The fast path intersects its frozenset; the
  matcher fallback tests its bytearray (one byte per candidate); both are
  views of the same entry, made on first use. Its room postings are read
  through the fast path's decoder (quick), or through Whoosh's public
  matchers while the fast path is off (`decoded` False), so the fallback
  never depends on what may have broken the fast path;
- BM25 length norms and created-time tie-breakers per document;
- a prefix's terms and frequencies;
- decoded posting lists (search.whoosh_postings.PostingsCache).

All of it is used under the backend's mutex.
"""
from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from itertools import accumulate
from pathlib import Path
from typing import Callable, Optional

from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.reading import EmptyReader, MultiReader, SegmentReader
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

from search import fastpath
from search.whoosh_index import current_dir, open_index, pointer_stamp
from search.whoosh_postings import PostingsCache

REFRESH_EVERY = 0.2  # seconds between checks for changes made by other processes
PREFIX_CAP = 12  # a word start expands to at most this many index terms (the most frequent)
ALLOWED_ENTRIES = 48  # (room sets × segments; a few callers' worth)


class Allowed:
    """The documents of one segment a caller may see (never deleted ones), in the
    forms the searches use, each made from `docs` on first use."""

    __slots__ = ("docs", "n", "_bits", "_sorted", "_denied")

    def __init__(self, docs: frozenset, n: int):
        self.docs, self.n = docs, n
        self._bits: Optional[bytearray] = None
        self._sorted: Optional[list] = None
        self._denied: Optional[frozenset] = None

    @property
    def bits(self) -> bytearray:
        """bits[d] == 1 when allowed (the matcher fallback: a byte lookup per candidate)."""
        if self._bits is None:
            bm = bytearray(self.n)
            for d in self.docs:
                bm[d] = 1
            self._bits = bm
        return self._bits

    def sorted(self) -> list:
        if self._sorted is None:
            self._sorted = sorted(self.docs)
        return self._sorted

    def denied(self) -> frozenset:
        """The segment's other documents (deleted ones included)."""
        if self._denied is None:
            self._denied = frozenset(range(self.n)).difference(self.docs)
        return self._denied


def segment_id(reader) -> Optional[str]:
    """The id of a reader's segment; None for readers that are not one segment's."""
    seg = reader.segment() if hasattr(reader, "segment") else None
    return seg.segment_id() if seg is not None else None


class SegmentCache:
    def __init__(self, root: Path, writes: Callable[[], int]):
        self.root = root
        self.writes = writes  # changes this process wrote: look for them without waiting
        self._ix = None
        self._searcher = None
        self._pointer_stamp = None
        self._checked = 0.0
        self._seen_writes = 0
        self._readers: dict[tuple, object] = {}
        self._generation = None
        self._created: dict[str, tuple] = {}
        self._allowed: "OrderedDict[tuple, Allowed]" = OrderedDict()
        self._norms: dict[tuple, object] = {}
        self._prefixes: "OrderedDict[tuple, dict]" = OrderedDict()  # (segment, field, prefix) -> {term: df}
        self.postings = PostingsCache()
        self.decoded = True  # False: read postings through Whoosh's public matchers only (fast path off)

    # -- the searcher ---------------------------------------------------------------

    def close(self) -> None:
        for r in self._readers.values():
            try:
                r.close()
            except Exception:
                pass
        self._readers = {}
        self._searcher = None
        self._ix = None
        self._generation = None

    def _forget_all(self) -> None:
        for cache in (self._created, self._allowed, self._norms, self._prefixes):
            cache.clear()
        self.postings.clear()

    def searcher(self):
        """The process's long-lived searcher, brought up to date when the index
        changed. Segment readers are kept and reused while their segment and its
        deletions are unchanged: opening them is what is slow. (whoosh-reloaded's
        own Searcher.refresh() reuses readers of merged-away segments and misses
        new deletions, so it is not used.)"""
        now = time.monotonic()
        writes = self.writes()
        if self._searcher is not None and writes == self._seen_writes and now - self._checked < REFRESH_EVERY:
            return self._searcher
        stamp = pointer_stamp(self.root)
        if self._ix is None or stamp != self._pointer_stamp:
            self.close()
            d = current_dir(self.root)
            self._pointer_stamp = stamp
            if d is None:
                return None
            self._ix = open_index(d)
            self._forget_all()
        self._checked = now
        self._seen_writes = writes
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
        for cache in (self._created, self._norms, self._prefixes, self._allowed):  # forget merged-away segments
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

    # -- per segment ------------------------------------------------------------------

    def created(self, reader, segid: str) -> tuple:
        """(created times by document, pmax, newest): pmax[d] is the newest created
        time among documents before d."""
        got = self._created.get(segid)
        if got is None:
            created = array("q", reader.column_reader("created", translate=False))
            pmax = array("q", [0]) + array("q", accumulate(created, max)) if len(created) else array("q", [0])
            got = (created, pmax, pmax[-1])
            self._created[segid] = got
        return got

    def _remember(self, key: tuple, entry: Allowed) -> Allowed:
        self._allowed[key] = entry
        while len(self._allowed) > ALLOWED_ENTRIES:
            self._allowed.popitem(last=False)
        return entry

    def allowed(self, reader, segid: str, rooms: tuple) -> Allowed:
        """The segment's documents in `rooms`, deleted documents excluded."""
        n = reader.doc_count_all()
        key = (segid, n - reader.doc_count(), rooms)
        got = self._allowed.get(key)
        if got is not None:
            self._allowed.move_to_end(key)
            return got
        wanted = {str(r) for r in rooms}
        present = {t: reader.doc_frequency("room", t) for t in reader.field_terms("room")}
        yes = sum(df for t, df in present.items() if t in wanted)

        def docs(terms):
            return [self._term_docs(reader, segid, "room", t) for t in terms]

        if yes * 2 <= sum(present.values()):
            found = frozenset().union(*docs([t for t in present if t in wanted]))
        else:
            found = frozenset(range(n)).difference(*docs([t for t in present if t not in wanted]))
        if reader.has_deletions():
            found = found - frozenset(reader.deleted_docs_set)
        return self._remember(key, Allowed(found, n))

    def _term_docs(self, reader, segid: str, field: str, term: str) -> frozenset:
        """The documents with a term (deleted ones may be included: callers remove them)."""
        if self.decoded:
            return self.postings.get(reader, segid, field, term).idset
        return frozenset(reader.postings(field, term).all_ids()) if (field, term) in reader else frozenset()

    def access_sets(self, reader, segid: str, rooms: tuple, text_rooms: tuple) -> list[tuple[Allowed, dict]]:
        """[(allowed documents, fields read instead of the plan's)] of one segment for a caller:
        everything in `rooms`; in `text_rooms` (whose attachment text the caller may not read,
        Request.text_rooms) a post without files as it is, and a post with files only by its own
        text (the `post` field): a word found only in its files finds nothing."""
        if not text_rooms:
            return [(self.allowed(reader, segid, rooms), {})]
        dels = reader.doc_count_all() - reader.doc_count()
        main_key, text_key = (segid, dels, ("main", rooms, text_rooms)), (segid, dels, ("text", rooms, text_rooms))
        main = self._allowed.get(main_key)
        text = self._allowed.get(text_key)
        if main is None or text is None:
            n = reader.doc_count_all()
            limited = self.allowed(reader, segid, text_rooms).docs
            files = self._term_docs(reader, segid, "has_att", "1")
            main = self._remember(main_key, Allowed(self.allowed(reader, segid, rooms).docs | (limited - files), n))
            text = self._remember(text_key, Allowed(limited & files, n))
        else:
            self._allowed.move_to_end(main_key)
            self._allowed.move_to_end(text_key)
        return [(main, {}), (text, {"content": "post"})]

    def norms(self, reader, segid: str, field_: str, avg: float) -> list:
        """Per document: the BM25 length norm of `field_` for an average length `avg`."""
        key = (segid, field_)
        got = self._norms.get(key)
        if got is not None and got[0] == avg:
            return got[1]
        n = reader.doc_count_all()
        try:
            col = reader._perdoc._cached_reader(_lenfield(field_), LENGTHS_COLUMN)
            lengths = [byte_to_length(b) for b in col] if col is not None else [0] * n
        except AttributeError:  # another codec's reader: ask per document (slower, same numbers)
            lengths = [reader.doc_field_length(d, field_, 0) for d in range(n)]
        got = [fastpath.K1 * ((1 - fastpath.B) + fastpath.B * dl / avg) for dl in lengths]
        self._norms[key] = (avg, got)
        return got

    def ties(self, segid: str, created) -> list:
        """Per document of a segment: fastpath.TIE × its rank by created time (ties by number)."""
        key = (segid, "ties")
        got = self._norms.get(key)
        if got is None:
            got = [0.0] * len(created)
            for rank, d in enumerate(sorted(range(len(created)), key=created.__getitem__)):
                got[d] = rank * fastpath.TIE
            self._norms[key] = got
        return got

    def expand(self, reader, field: str, prefixes) -> list[str]:
        """The PREFIX_CAP most frequent index terms starting with the prefixes. Each segment's
        terms and frequencies for a prefix are read once and kept (a segment never changes;
        a short prefix can start a thousand terms, and looking up each one's frequency through
        every segment took 30 ms)."""
        found: dict[str, int] = {}
        for r, _offset in reader.leaf_readers():
            segid = segment_id(r)
            for p in prefixes:
                key = (segid if segid is not None else id(r), field, p)
                got = self._prefixes.get(key) if segid is not None else None
                if got is None:
                    got = {}
                    for t in r.expand_prefix(field, p):
                        t = t.decode("utf-8") if isinstance(t, bytes) else t
                        got[t] = r.doc_frequency(field, t)
                    if segid is not None:
                        self._prefixes[key] = got
                        while len(self._prefixes) > 2000:
                            self._prefixes.popitem(last=False)
                for t, df in got.items():
                    found[t] = found.get(t, 0) + df
        return sorted(found, key=found.get, reverse=True)[:PREFIX_CAP]
