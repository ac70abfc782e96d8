"""Text handling shared by both backends: words → index terms (English
stemming, accents folded), highlighted snippets, and the text of PDF and DOCX
attachments.

`term_of(word)` is the one definition of an index term for both backends' indexes
(Whoosh's fields, PostgreSQL's tsvectors: search.pg_backend builds them here), the
query words and highlighting, so the index and the query always analyse a word
the same way, and what is highlighted is what matched. Word forms Snowball leaves
apart are joined by search.spelling.

A hyphenated word ("anti-social", "stop-and-search") is indexed as its parts, for
phrases and for each part, and also as its parts written together ("antisocial",
`compound`), at the positions of its first and last part, so that "antisocial"
finds "anti-social" in the index; the query side (search.query) searches a
hyphenated word as its phrase or its joined form, so "anti-social" finds
"antisocial" too.
"""
from __future__ import annotations

import html
import logging
import os
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Optional

from array import array
from bisect import bisect_right
from itertools import accumulate

from whoosh.analysis import Token, Tokenizer
from whoosh.formats import Positions
from whoosh.system import _INT_SIZE, pack_uint
from whoosh.analysis.filters import STOP_WORDS
from whoosh.lang.porter2 import stem  # Snowball English, as PostgreSQL's english_stem
from whoosh.support.charset import accent_map

from rooms import untrusted_files
from search.spelling import canonical, normal

log = logging.getLogger(__name__)

# Words: letters/digits/underscore, with inner dots kept ("u.k", "3.5").
WORD_RE = re.compile(r"\w+(?:\.\w+)*")
# A word, or words joined by hyphens (ASCII, Unicode hyphen, non-breaking hyphen): what the index reads
# as one token; a token holding a hyphen is a compound (its parts are WORD_RE's words).
HYPHENS = "-\u2010\u2011"
TOKEN_RE = re.compile(r"\w+(?:\.\w+)*(?:[-\u2010\u2011]\w+(?:\.\w+)*)*")
_HYPHEN = re.compile("[-\u2010\u2011]")
MIN_WORD = 2
MAX_WORD = 60
# What term_of makes of words. An index built by another version is rebuilt (search.whoosh_index,
# search.pg_backend): 2 = search.spelling (doubled consonants, British/American spelling);
# 3 = hyphenated words also indexed written together (`compound`).
ANALYSIS_VERSION = 3
_cache: dict[str, Optional[str]] = {}
_compounds: dict[str, tuple[tuple[str, ...], Optional[str]]] = {}
_CACHE_MAX = 300_000
_MISSING = object()


def fold(word: str) -> str:
    """Lower case without accents: "Café" → "cafe"."""
    return word.lower().translate(accent_map)


def term_of(word: str) -> Optional[str]:
    """The index term of one word, or None for stop words and too short/long words. A hyphenated
    word gets its joined term (never cached here: the index reads the cache, and a hyphenated
    token there is a compound, `compound`)."""
    t = _cache.get(word)
    if t is not None or word in _cache:
        return t
    if _HYPHEN.search(word):
        return joined_term(WORD_RE.findall(word))
    f = fold(word)
    if f != word and f in _cache:  # "Police", "POLICE" → the stem of "police"
        t = _cache[f]
    elif len(f) < MIN_WORD or len(f) > MAX_WORD or f in STOP_WORDS:
        t = None
    else:
        t = canonical(stem(normal(f)))
    if len(_cache) > _CACHE_MAX:
        _cache.clear()
    _cache[word] = t
    return t


def joined_term(parts: list[str]) -> Optional[str]:
    """The index term of a hyphenated word's parts written together ("anti", "social" → the term
    of "antisocial"); None for one part, or parts too long together to be a word."""
    if len(parts) < 2:
        return None
    joined = "".join(parts)
    return term_of(joined) if len(joined) <= MAX_WORD else None


def compound(token: str) -> Optional[tuple[tuple[str, ...], Optional[str]]]:
    """For a hyphenated token (TOKEN_RE): (the terms of its parts, its joined term if that is a
    term and not one of the parts'); None for a token without a hyphen."""
    got = _compounds.get(token)
    if got is not None:
        return got
    if not _HYPHEN.search(token):
        return None
    parts = WORD_RE.findall(token)
    ts = tuple(t for t in map(term_of, parts) if t is not None)
    joined = joined_term(parts)
    got = (ts, joined if joined not in ts else None)
    if len(token) <= 2 * MAX_WORD:
        if len(_compounds) > _CACHE_MAX // 10:
            _compounds.clear()
        _compounds[token] = got
    return got


def _compound_positions(ts: tuple[str, ...], joined: Optional[str], pos: int) -> tuple[list[tuple[str, int]], int]:
    """(term, position) of a compound's terms from position `pos`, and the next free position: the
    parts one after another, the joined term at the first and the last part's positions (so a phrase
    may run into it from either side), or at a position of its own when every part is a stop word."""
    out = [(t, pos + i) for i, t in enumerate(ts)]
    nxt = pos + len(ts)
    if joined is not None:
        if not ts:
            out.append((joined, pos))
            nxt = pos + 1
        else:
            out.append((joined, pos))
            if nxt - 1 > pos:
                out.append((joined, nxt - 1))
    return out, nxt


def term_positions(text: str) -> Iterator[tuple[str, int, int, int]]:
    """(term, position, start, end) of each index term of `text`: positions count terms (stop words
    leave no gap), start/end are the characters of the word (of the whole compound for a joined
    term). A term's positions come in increasing order."""
    pos = 0
    get = _cache.get
    for m in TOKEN_RE.finditer(text):
        word = m.group()
        t = get(word, _MISSING)
        if t is _MISSING:
            c = compound(word)
            if c is not None:
                start = m.start()
                spans = [w.span() for w in WORD_RE.finditer(word)
                         if term_of(w.group()) is not None]
                found, pos_next = _compound_positions(c[0], c[1], pos)
                for i, (term, p) in enumerate(found):
                    a, b = (spans[i] if i < len(c[0]) else (0, len(word)))
                    yield term, p, start + a, start + b
                pos = pos_next
                continue
            t = term_of(word)
        if t is None:
            continue
        yield t, pos, m.start(), m.end()
        pos += 1


def terms(text: str) -> list[str]:
    """Index terms of a text, in order of position (stop words dropped, positions renumbered; a
    hyphenated word's joined term after its parts)."""
    return [t for t, _p, _a, _b in term_positions(text)]


class CollabTokenizer(Tokenizer):
    """A Whoosh tokenizer doing word splitting, lower-casing, accent folding,
    stop words and Porter stemming in one pass with a cache (several times
    faster than the equivalent filter chain). Stop words leave no position gap,
    like StopFilter(renumber=True)."""

    def __eq__(self, other):
        return other.__class__ is self.__class__

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs) -> Iterator[Token]:
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for term, pos, a, b in term_positions(value):
            t.text = term
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = value[a:b]
            if positions:
                t.pos = start_pos + pos
            if chars:
                t.startchar = start_char + a
                t.endchar = start_char + b
            yield t



_ONE = pack_uint(1)
_gap = struct.Struct("=I").pack  # as array("I") stores it


def _encode_positions(pl: list[int]) -> bytes:
    if len(pl) == 1:
        return _ONE + _gap(pl[0])
    return pack_uint(len(pl)) + array("I", [pl[0]] + [b - a for a, b in zip(pl, pl[1:])]).tobytes()


def position_values(value: str, boost: float = 1.0):
    """(term, frequency, weight, encoded positions) for each term of `value`:
    what Positions.word_values yields through CollabTokenizer, in one pass."""
    poses: dict[str, list[int]] = {}
    pos = 0
    get = _cache.get
    for word in TOKEN_RE.findall(value):
        t = get(word, _MISSING)
        if t is _MISSING:
            c = compound(word)  # (rare: a word not seen yet, or a hyphenated one)
            if c is not None:
                found, pos = _compound_positions(c[0], c[1], pos)
                for term, p in found:
                    lst = poses.get(term)
                    if lst is None:
                        poses[term] = [p]
                    elif lst[-1] < p:
                        lst.append(p)
                continue
            t = term_of(word)
        if t is None:
            continue
        lst = poses.get(t)
        if lst is None:
            poses[t] = [pos]
        else:
            lst.append(pos)
        pos += 1
    for w, pl in poses.items():
        yield (w, len(pl), len(pl) * boost, _encode_positions(pl))


class FastPositions(Positions):
    """Positions (for phrase queries) that index in one pass without Token
    objects and store each posting's position gaps as a packed array instead
    of a pickle (faster to write and to read back for phrases)."""

    def word_values(self, value, analyzer, **kwargs):
        return position_values(value, self.field_boost)

    def encode(self, poslist):
        return _encode_positions(poslist)

    def decode_positions(self, valuestring):
        gaps = array("I")
        gaps.frombytes(valuestring[_INT_SIZE:])
        return list(accumulate(gaps))


_TAG = re.compile(r"<[^>]*>")


def html_text(post_html: str) -> str:
    """Text of a post's stored HTML, for the index and for snippets. That HTML is our
    own nh3-sanitised output (rooms.markdown), so dropping tags and decoding entities is
    enough, and about ten times faster than cleaning it again."""
    # (str.split() and \s split on the same characters; join(split()) is 4× faster than the regex)
    return " ".join(html.unescape(_TAG.sub(" ", post_html)).split())


# -- snippets -------------------------------------------------------------------

def _is_hit(term: Optional[str], wanted: set[str], prefixes: tuple[str, ...]) -> bool:
    return term is not None and (term in wanted or (bool(prefixes) and term.startswith(prefixes)))


@lru_cache(maxsize=256)
def _starts_regex(keys: tuple[str, ...]) -> re.Pattern:
    """Words starting with one of `keys` (folded text): the only candidates for a hit. Each key is
    followed by its own look-behind (no word character just before the key) rather than one look-behind
    first: a pattern that starts with a literal lets the regex engine jump between occurrences of it
    (20× faster over a post for one key)."""
    return re.compile(r"(?s:" + "|".join(f"{re.escape(k)}(?<!\\w.{{{len(k)}}})" for k in keys)
                      + r")\w*(?:\.\w+)*(?:[-\u2010\u2011]\w+(?:\.\w+)*)*")


def _token_hits(text: str, a: int, b: int, wanted: set[str], prefixes: tuple[str, ...]) -> list[tuple[int, int]]:
    """The hits in one token text[a:b]: the whole of a hyphenated word whose joined term is wanted
    ("anti-social" for "antisocial"), else those of its parts that are."""
    word = text[a:b]
    c = compound(word)
    if c is None:
        return [(a, b)] if _is_hit(term_of(word), wanted, prefixes) else []
    if _is_hit(c[1], wanted, prefixes):
        return [(a, b)]
    return [(a + m.start(), a + m.end()) for m in WORD_RE.finditer(word)
            if _is_hit(term_of(m.group()), wanted, prefixes)]


def _hits(text: str, wanted: set[str], prefixes: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of the words of `text` whose index term is wanted (or starts with a prefix)."""
    if not wanted and not prefixes:
        return []
    folded = fold(text)
    keys = tuple(sorted({t[:4] for t in wanted} | {p[:4] for p in prefixes}))
    if len(folded) == len(text) and all(keys):
        # A stem starts like its word (after folding): let the regex engine find the few candidates.
        found = [m.span() for m in _starts_regex(keys).finditer(folded)]
        if _HYPHEN.search(folded):
            # A joined term need not start like any part ("email" in "e-mail"): every hyphenated word is
            # a candidate too, and replaces the candidates inside it.
            joined = [m.span() for m in _COMPOUND_RE.finditer(folded)]
            starts = [a for a, _b in joined]
            found = sorted(joined + [(a, b) for a, b in found
                                     if not _inside(a, starts, joined)])
    else:
        found = [m.span() for m in TOKEN_RE.finditer(text)]
    return [hit for a, b in found for hit in _token_hits(text, a, b, wanted, prefixes)]


_COMPOUND_RE = re.compile(r"(?<![\w.])\w+(?:\.\w+)*(?:[-\u2010\u2011]\w+(?:\.\w+)*)+")


def _inside(pos: int, starts: list[int], spans: list[tuple[int, int]]) -> bool:
    i = bisect_right(starts, pos) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]


def highlight(text: str, wanted: set[str], prefixes: Iterable[str] = (), *, width: int = 240,
              scan_chars: int = 60_000) -> tuple[str, bool]:
    """An HTML-escaped excerpt of `text` around its best run of matching words,
    with those words in <mark>. Returns (html, found)."""
    prefixes = tuple(prefixes)
    text = text[:scan_chars]
    hits = _hits(text, wanted, prefixes)
    if not hits:
        cut = text[:width]
        if len(text) > width:
            cut = cut.rsplit(" ", 1)[0] + " …"
        return html.escape(cut), False
    # The window of `width` characters holding most hits.
    best, best_n, j = 0, 0, 0
    for i in range(len(hits)):
        while j < len(hits) and hits[j][1] - hits[i][0] <= width:
            j += 1
        if j - i > best_n:
            best, best_n = i, j - i
    first = hits[best][0]
    start = max(0, first - width // 4)
    if start > 0:
        sp = text.find(" ", start)
        start = sp + 1 if 0 <= sp < first else first
    end = min(len(text), start + width)
    if end < len(text):
        sp = text.rfind(" ", start, end)
        if sp > hits[best][1]:
            end = sp
    out = ["… " if start > 0 else ""]
    pos = start
    for a, b in hits[best:]:
        if a >= end:
            break
        b = min(b, end)
        out.append(html.escape(text[pos:a]))
        out.append("<mark>" + html.escape(text[a:b]) + "</mark>")
        pos = b
    out.append(html.escape(text[pos:end]))
    if end < len(text):
        out.append(" …")
    return "".join(out), True


def highlight_all(text: str, wanted: set[str], prefixes: Iterable[str] = ()) -> str:
    """The whole (short) text escaped, matching words in <mark> (for titles)."""
    out, pos = [], 0
    for a, b in _hits(text, wanted, tuple(prefixes)):
        out.append(html.escape(text[pos:a]))
        out.append("<mark>" + html.escape(text[a:b]) + "</mark>")
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


# -- attachments ----------------------------------------------------------------

MAX_ATTACHMENT_CHARS = untrusted_files.MAX_TEXT_CHARS


def _kind(path: Path, filename: str) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") and filename.lower().endswith((".docx", ".docm")):
        return "docx"
    return None


def extract_text(path: Path, filename: str, cache_dir: Optional[Path] = None, sha256: str = "") -> str:
    """Plain text of a PDF or DOCX attachment ("" for other files, on any error, or past the bounds
    of rooms.untrusted_files: read in a bounded child process, so a hostile file never holds up the
    indexer), cached by content hash: each file is read once, whatever the number of re-indexings."""
    cached = cache_dir / sha256[:2] / f"{sha256}.txt" if cache_dir and sha256 else None
    if cached is not None and cached.exists():
        try:
            return cached.read_text(encoding="utf-8")
        except OSError:
            pass
    kind = _kind(path, filename)
    text = ""
    if kind:
        got = untrusted_files.document_text(path, kind)
        if got is None:  # a damaged file, or one past the bounds, is still a post: index its name only
            log.info("no text from attachment %s (%s)", filename, kind)
        text = got or ""
    text = re.sub(r"\s+", " ", text).strip()[:MAX_ATTACHMENT_CHARS]
    if cached is not None and kind:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass
    return text
