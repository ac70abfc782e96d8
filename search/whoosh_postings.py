"""Posting lists of the Whoosh index decoded for set operations (used by search.fastpath).

Each term's posting list of one segment is decoded once, block by block, into
arrays of document numbers and term frequencies (the set and dict the queries
use are made from them on first use), and kept in a bounded LRU, so the words
people search for stay decoded. Phrase words' positions are read block by
block on demand (BlockPositions) instead of all at once.

Whoosh's internal block reader (W3LeafMatcher) is used directly; postings of
any other matcher are read by stepping it.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict
from typing import Optional

from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.matching.wrappers import FilterMatcher

from search.text import FastPositions

CACHE_POSTINGS = 2_500_000  # postings kept decoded (all segments, all terms): ~110 bytes each
_positions = FastPositions().decode_positions


class Postings:
    """One term's postings in one segment: document numbers and term frequencies
    as compact arrays; the set and dict the queries use are made on first use
    and share their int objects; positions are kept only for phrase words."""

    __slots__ = ("ids", "weights", "values", "_ints", "_set", "_map")

    def __init__(self, ids: array, weights: array, values: Optional[list]):
        self.ids, self.weights, self.values = ids, weights, values
        self._ints: Optional[tuple] = None
        self._set: Optional[frozenset] = None
        self._map: Optional[dict] = None

    def _int_objects(self) -> tuple:
        if self._ints is None:
            self._ints = tuple(self.ids)
        return self._ints

    @property
    def idset(self) -> frozenset:
        if self._set is None:
            self._set = frozenset(self._int_objects())
        return self._set

    @property
    def tf(self) -> dict:
        if self._map is None:
            self._map = dict(zip(self._int_objects(), map(int, self.weights)))
        return self._map

    def positions(self, d: int) -> list[int]:
        i = bisect_left(self.ids, d)
        if i == len(self.ids) or self.ids[i] != d:
            return []
        return _positions(self.values[i])


class BlockPositions:
    """Positions of one term read block by block on demand: the offsets and last
    document of each posting block are listed once (headers only), then a
    document's positions come from decoding just its block (kept in a small LRU).
    Much less memory and time than decoding every position of a common word."""

    __slots__ = ("m", "maxids", "offsets", "blocks")

    def __init__(self, m: W3LeafMatcher):
        self.m = m
        self.maxids: list[int] = []
        self.offsets: list[int] = []
        self.blocks: "OrderedDict[int, tuple]" = OrderedDict()
        pos = m._baseoffset
        while m.is_active():
            self.offsets.append(pos)
            self.maxids.append(m._maxid)
            pos = m._nextoffset
            m._next_block()

    def _block(self, b: int) -> tuple:
        got = self.blocks.get(b)
        if got is None:
            m = self.m
            m._atend = False
            m._lastblock = b == len(self.offsets) - 1
            m._goto(self.offsets[b])
            m._read_ids()
            m._read_values()
            got = self.blocks[b] = (m._ids, m._values)
            if len(self.blocks) > 64:
                self.blocks.popitem(last=False)
        return got

    def ids_desc(self):
        """Document numbers from the last down, reading blocks only as far as asked."""
        for b in range(len(self.offsets) - 1, -1, -1):
            yield from reversed(self._block(b)[0])

    def positions(self, d: int) -> list[int]:
        b = bisect_left(self.maxids, d)
        if b == len(self.maxids):
            return []
        ids, values = self._block(b)
        i = bisect_left(ids, d)
        if i == len(ids) or ids[i] != d:
            return []
        return _positions(values[i])


EMPTY = Postings(array("i"), array("f"), [])


class PostingsCache:
    """Decoded posting lists, least recently used dropped first (by postings held)."""

    def __init__(self, limit: int = CACHE_POSTINGS):
        self.limit = limit
        self.size = 0
        self.items: "OrderedDict[tuple, Postings]" = OrderedDict()

    def positions(self, reader, segid: str, field_: str, term: str):
        """Something with .positions(docnum) for a phrase word."""
        key = (segid, field_, term, "pos")
        p = self.items.get(key)
        if p is not None:
            self.items.move_to_end(key)
            return p
        m = reader.postings(field_, term) if (field_, term) in reader else None
        if isinstance(m, FilterMatcher):
            m = m.child
        if isinstance(m, W3LeafMatcher):
            p = BlockPositions(m)
            self.items[key] = p
            self.size += len(p.offsets)  # (small: a few numbers per block of 128 postings)
            return p
        return self.get(reader, segid, field_, term, positions=True)

    def get(self, reader, segid: str, field_: str, term: str, positions: bool = False) -> Postings:
        key = (segid, field_, term)
        p = self.items.get(key)
        if p is not None and (p.values is not None or not positions):
            self.items.move_to_end(key)
            return p
        if p is not None:
            del self.items[key]
            self.size -= len(p.ids)
        p = load(reader, field_, term, positions)
        self.items[key] = p
        self.size += len(p.ids)
        while self.size > self.limit and len(self.items) > 1:
            _k, old = self.items.popitem(last=False)
            self.size -= len(old.ids) if isinstance(old, Postings) else len(old.offsets)
        return p

    def clear(self) -> None:
        self.items.clear()
        self.size = 0


def load(reader, field_: str, term: str, positions: bool = False) -> Postings:
    """Decode a term's whole posting list (deleted documents included: the
    allowed set excludes them)."""
    if (field_, term) not in reader:
        return EMPTY
    m = reader.postings(field_, term)
    if isinstance(m, FilterMatcher):
        m = m.child
    ids = array("i")
    weights = array("f")
    values: Optional[list] = [] if positions else None
    if isinstance(m, W3LeafMatcher):
        while m.is_active():
            m._read_ids()
            m._read_weights()
            ids.extend(m._ids)
            weights.extend(m._weights)
            if positions:
                m._read_values()
                values.extend(m._values)
            m._next_block()
    else:  # postings inlined in the term info, or another matcher
        while m.is_active():
            ids.append(m.id())
            weights.append(m.weight())
            if positions:
                values.append(m.value())
            m.next()
    return Postings(ids, weights, values)
