"""The search box language, parsed into a small tree both backends compile.

    stop search          both words (any form: "stopped", "searches")
    "stop and search"    the phrase
    interv*              words starting with "interv" (at least 3 letters)
    -taser               without the word
    taser OR spray       either (OR binds tighter than the implicit AND)
    room:"Youth IAG"     room:<name or id>     author:<name>
    before:2024-03-01    after:2024-03        has:attachment      in:title

Nothing here raises: anything odd (unbalanced quotes, a lone *, control
characters) is repaired and explained in `notices`. A search too big to run
cheaply (more than MAX_QUERY_CHARS characters, MAX_CLAUSES words or MAX_PREFIXES
word starts) is marked in `too_big` with a message, and the service refuses it
(400): any account may search, so no search may cost the server much.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional, Union

from search.text import TOKEN_RE, WORD_RE, compound, fold, term_of

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 24
MAX_PREFIXES = 4  # word starts in one search (each expands to up to PREFIX_CAP index terms)
MIN_PREFIX = 3
FILTERS = ("room", "author", "before", "after", "has", "in")


@dataclass
class Word:
    text: str
    terms: list[str]  # index terms; several when one "word" splits (e-mail → e, mail)


@dataclass
class Phrase:
    text: str
    terms: list[str]


@dataclass
class Prefix:
    text: str
    prefixes: list[str]  # folded prefix and, when different, its stem


@dataclass
class Or:
    children: list["Node"]


Node = Union[Word, Phrase, Prefix, Or]


@dataclass
class Query:
    raw: str
    must: list[Node] = field(default_factory=list)
    must_not: list[Node] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    after: Optional[datetime] = None
    before: Optional[datetime] = None
    has_attachment: bool = False
    in_title: bool = False
    notices: list[str] = field(default_factory=list)
    too_big: Optional[str] = None  # why this search is refused (see the module docstring)

    @property
    def has_filters(self) -> bool:
        return bool(self.rooms or self.authors or self.after or self.before or self.has_attachment)

    @property
    def searchable(self) -> bool:
        return bool(self.must) or self.has_filters

    def highlight_terms(self) -> tuple[set[str], list[str]]:
        """(terms, prefixes) to mark in snippets."""
        wanted: set[str] = set()
        prefixes: list[str] = []

        def walk(n: Node) -> None:
            if isinstance(n, (Word, Phrase)):
                wanted.update(n.terms)
            elif isinstance(n, Prefix):
                prefixes.extend(n.prefixes)
            else:
                for c in n.children:
                    walk(c)

        for n in self.must:
            walk(n)
        return wanted, prefixes

    def words(self) -> list[str]:
        """Plain positive words as typed (for "did you mean")."""
        out: list[str] = []

        def walk(n: Node) -> None:
            if isinstance(n, Word):
                out.append(n.text)
            elif isinstance(n, Or):
                for c in n.children:
                    walk(c)

        for n in self.must:
            walk(n)
        return out


def _clean(raw: str, notices: list[str]) -> str:
    if not isinstance(raw, str):
        raw = ""
    if len(raw) > MAX_QUERY_CHARS:
        raw = raw[:MAX_QUERY_CHARS]  # (and refused: too_big)
    out = []
    dropped = False
    for ch in raw:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
            dropped = True
            out.append(" ")
        else:
            out.append(ch)
    if dropped and any(not c.isspace() for c in raw if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")):
        notices.append("Control characters in your search were ignored.")
    return "".join(out).strip()


def printable(text: str) -> str:
    """`text` without control, format, surrogate or unassigned characters (each becomes a space)."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") else ch for ch in text)


_TOKEN = re.compile(r'\s*(-?)(?:(\w+):)?("([^"]*)("?)|[^\s"]+)')


def date_bound(value: str, end: bool) -> Optional[datetime]:
    """YYYY, YYYY-MM or YYYY-MM-DD; `end` gives the first moment after the period."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", value.strip())
    if not m:
        return None
    y, mo, d = int(m.group(1)), m.group(2), m.group(3)
    try:
        if d:
            start = datetime(y, int(mo), int(d))
            return start + timedelta(days=1) if end else start
        if mo:
            start = datetime(y, int(mo), 1)
            if not end:
                return start
            return datetime(y + (start.month == 12), start.month % 12 + 1, 1)
        return datetime(y + 1, 1, 1) if end else datetime(y, 1, 1)
    except ValueError:
        return None


def _word_node(text: str, hyphens: bool = False) -> Optional[Node]:
    """A word, or the phrase of its parts ("stop-and-search"). With `hyphens`, a hyphenated word also
    finds its parts written together, as search.text indexes them: "anti-social" finds "antisocial"
    too, and "to-do" (two stop words) finds "todo"."""
    ts = [t for t in (term_of(w) for w in WORD_RE.findall(text)) if t]
    node: Optional[Node] = None
    if ts:
        node = Word(text, ts) if len(ts) == 1 else Phrase(text, ts)
    tokens = TOKEN_RE.findall(text) if hyphens else []
    c = compound(tokens[0]) if len(tokens) == 1 else None
    if c is None or c[1] is None:
        return node
    joined = Word(text, [c[1]])
    return Or([node, joined]) if node is not None else joined


def _prefix_node(text: str, notices: list[str]) -> Optional[Node]:
    stem_part = text.rstrip("*")
    words = WORD_RE.findall(stem_part)
    if "*" in stem_part or len(words) != 1 or words[0] != stem_part:
        # "*" inside a word, or punctuation: search the words themselves
        return _word_node(stem_part.replace("*", " "))
    f = fold(stem_part)
    if len(f) < MIN_PREFIX:
        if f:
            notices.append(f"“{text}”: a word start needs at least {MIN_PREFIX} letters before *, "
                           f"so “{stem_part}” was searched as a whole word.")
            return _word_node(stem_part)
        return None
    prefixes = [f]
    st = term_of(stem_part)
    if st and st != f and len(st) >= MIN_PREFIX:  # "handcuff*": handcuffing is indexed as handcuf
        prefixes.append(st)
    prefixes = [p for p in prefixes if not any(q != p and p.startswith(q) for q in prefixes)]
    return Prefix(text, prefixes)


def parse(raw: object) -> Query:
    notices: list[str] = []
    text = _clean(raw if isinstance(raw, str) else "", notices)
    q = Query(raw=text, notices=notices)
    if isinstance(raw, str) and len(raw) > MAX_QUERY_CHARS:
        q.too_big = f"A search can be at most {MAX_QUERY_CHARS} characters long: shorten it and try again."
    clauses: list[tuple[bool, Node]] = []
    pending_or = False
    lone_star = False
    unbalanced = False
    for m in _TOKEN.finditer(text):
        neg, fname, whole, quoted, close = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
        is_quoted = quoted is not None
        if is_quoted and not close:
            unbalanced = True
        value = quoted if is_quoted else whole
        if fname and fname.lower() in FILTERS:
            if _filter(q, fname.lower(), value, neg == "-"):
                continue
            value = f"{fname} {value}"  # unknown value: search the words
        elif fname:
            value = f"{fname} {value}"  # "note:" is just a word
        if not is_quoted and value == "OR" and not neg:
            pending_or = bool(clauses)
            continue
        if is_quoted:
            node = _word_node(value)
        elif value.endswith("*") or "*" in value:
            if value.strip("*") == "":
                lone_star = True
                continue
            node = _prefix_node(value, notices) if value.endswith("*") else _word_node(value.replace("*", " "))
        else:
            node = _word_node(value, hyphens=True)
        if node is None:
            pending_or = pending_or and bool(clauses)
            continue
        if is_quoted and isinstance(node, Word):
            node = Phrase(node.text, node.terms)
        if pending_or and clauses and not neg and not clauses[-1][0]:
            prev = clauses[-1][1]
            children = prev.children if isinstance(prev, Or) else [prev]
            clauses[-1] = (False, Or(children + [node]))
        else:
            clauses.append((neg == "-", node))
        pending_or = False
    if unbalanced:
        notices.append("A quotation mark was not closed, so the words after it were searched as a phrase.")
    if lone_star:
        notices.append(f"A * on its own was ignored: put at least {MIN_PREFIX} letters before it "
                       f"to find words that start with them.")
    leaves = [leaf for _neg, n in clauses for leaf in _leaves(n)]
    if len(leaves) > MAX_CLAUSES:
        clauses = clauses[:MAX_CLAUSES]
        q.too_big = q.too_big or (f"A search can hold at most {MAX_CLAUSES} words or phrases: "
                                  f"leave some out and try again.")
    if sum(isinstance(leaf, Prefix) for leaf in leaves) > MAX_PREFIXES:
        q.too_big = q.too_big or (f"A search can hold at most {MAX_PREFIXES} word starts (words ending in *): "
                                  f"leave some out and try again.")
    q.must = [n for neg, n in clauses if not neg]
    q.must_not = [n for neg, n in clauses if neg]
    if q.must_not and not q.must and not q.has_filters:
        notices.append("Add a word to look for: a search cannot only exclude words.")
    return q


def _leaves(n: Node) -> list[Node]:
    return [leaf for c in n.children for leaf in _leaves(c)] if isinstance(n, Or) else [n]


def _filter(q: Query, name: str, value: str, negated: bool) -> bool:
    """Apply room:/author:/before:/after:/has:/in:. False means "not a filter after all"."""
    value = value.strip()
    if negated:
        q.notices.append(f"-{name}: is not supported; the filter was ignored.")
        return True
    if not value:
        q.notices.append(f"{name}: needs a value, for example {name}:{_EXAMPLES[name]}.")
        return True
    if name == "room":
        q.rooms.append(value)
    elif name == "author":
        q.authors.append(value)
    elif name in ("before", "after"):
        when = date_bound(value, end=False)
        if when is None:
            q.notices.append(f"“{name}:{value}” is not a date; use {name}:{_EXAMPLES[name]}. It was ignored.")
        elif name == "before":
            q.before = when if q.before is None else min(q.before, when)
        else:
            q.after = when if q.after is None else max(q.after, when)
    elif name == "has":
        if fold(value) in ("attachment", "attachments", "file", "files"):
            q.has_attachment = True
        else:
            q.notices.append(f"“has:{value}” is not a filter; use has:attachment. It was ignored.")
    elif name == "in":
        if fold(value) in ("title", "titles"):
            q.in_title = True
        else:
            q.notices.append(f"“in:{value}” is not a filter; use in:title. It was ignored.")
    return True


_EXAMPLES = {"room": '"Youth IAG"', "author": "Smith", "before": "2024-03-01", "after": "2024-03",
             "has": "attachment", "in": "title"}
