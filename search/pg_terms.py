"""PostgreSQL's tsvectors and tsqueries, made from search.text's analysis.

PostgreSQL does not analyse the words itself (no text search configuration):
a document's tsvector is written by the application from the same index terms
Whoosh indexes (search.text.term_positions: stemming, accents folded, stop words,
search.spelling's word forms, hyphenated words joined), and a query is the same terms. So a word is
analysed the same way in the index and in the query on both backends; with
`to_tsvector('english', …)` on one side and our stemmer on the other they
drifted ("handcuffs" found nothing of "handcuffing").

Both are written as tsvector/tsquery *literals*, every lexeme quoted: the
search box's text can never change a query's structure.
"""
from __future__ import annotations

import re
from typing import Optional

from search.query import Or, Phrase, Prefix, Word
from search.text import term_positions

MAX_POS = 16383  # PostgreSQL's largest position (larger ones are stored as this)
MAX_POSITIONS = 256  # positions PostgreSQL keeps per lexeme


def quote(term: str) -> str:
    """A lexeme as a tsvector/tsquery literal."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector(*parts: tuple[str, str]) -> Optional[str]:
    """The tsvector literal of (text, weight) parts, positions running on across them as
    `to_tsvector(a) || to_tsvector(b)` numbers them; weight "" is PostgreSQL's default (D).
    None when there is no term at all (an empty tsvector)."""
    found: dict[str, list[str]] = {}
    offset = 0
    for text, weight in parts:
        if not text:
            continue
        last = -1
        for t, p, _a, _b in term_positions(text):
            last = max(last, p)
            lst = found.setdefault(t, [])
            if len(lst) < MAX_POSITIONS:
                lst.append(f"{min(offset + p + 1, MAX_POS)}{weight}")
        offset += last + 1
    if not found:
        return None
    return " ".join(f"{quote(t)}:{','.join(p)}" for t, p in found.items())


def vectors(title: str, body: str, attachments: str, has_attachment: bool) -> dict:
    """The columns `tsv` (title weighted A, text, attachments weighted C) and `tsv_post` (title
    and text only, for posts with files: what a caller who may not read them searches)."""
    return {"tsv": tsvector((title, "A"), (body, ""), (attachments, "C")) or "",
            "tsv_post": (tsvector((title, "A"), (body, "")) or "") if has_attachment else None}


def tsquery(node, weight: str = "") -> Optional[str]:
    """A tsquery literal for one node of the query tree (None when nothing is left)."""
    if isinstance(node, (Word, Phrase)):
        toks = [f"{quote(t)}:{weight}" if weight else quote(t) for t in node.terms]
        if not toks:
            return None
        return toks[0] if len(toks) == 1 else "(" + " <-> ".join(toks) + ")"
    if isinstance(node, Prefix):
        toks = [f"{quote(p)}:*{weight}" for p in node.prefixes if p]
        if not toks:
            return None
        return toks[0] if len(toks) == 1 else "(" + " | ".join(toks) + ")"
    if isinstance(node, Or):
        parts = [p for p in (tsquery(c, weight) for c in node.children) if p]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else "(" + " | ".join(parts) + ")"
    raise TypeError(node)


_TERM = re.compile(r"[\w.]+")


def term_query(term: str) -> Optional[str]:
    """The tsquery literal of one index term (for "did you mean"), None for anything else."""
    return quote(term) if _TERM.fullmatch(term) else None
