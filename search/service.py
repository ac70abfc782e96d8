"""Search as the pages and the API see it: parse, restrict to the rooms the
caller may read (rooms.policy decides), ask the backend, then dress the
hits (thread, room, author, highlighted snippet) and suggest spellings from
the caller's readable vocabulary only."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased

from rooms import policy
from auth.models import User
from collab import metrics, validate
from collab.errors import Invalid, NotFound, ServiceError
from collab.extensions import db
from rooms import labels, pseudonyms
from rooms.models import Post, Room, Thread
from search import query as qmod
from search.app_state import state
from search.backend import Found, Request
from search.documents import indexable
from search.text import TOKEN_RE, WORD_RE, compound, fold, highlight, highlight_all, html_text, term_of

log = logging.getLogger(__name__)

PER_PAGE = 20
MAX_PAGE = 50
SORTS = ("relevance", "newest")
REBUILDING = "The search index is being rebuilt: results may be incomplete."
SUGGEST_WORDS = 3  # words "did you mean" tries to correct (each costs a few thousand look-ups)
SUGGEST_LETTERS = 20  # ... of at most this many letters
MAX_AUTHOR = 100  # characters of the author control
SUGGEST_POSTS = 10  # posts read to see how a suggested term is written


class SearchTooBig(ServiceError):
    """A search beyond the bounds of search.query (length, words, word starts): refused, not cut."""
    status = 400
    code = "search_too_big"


def _yield() -> None:
    """Let other requests run (under gevent, time.sleep is the hub's: one greenlet serves everyone)."""
    time.sleep(0)


@dataclass
class Result:
    post_id: int
    thread_id: int
    room_id: int
    room_name: str
    title: str
    title_html: str
    snippet_html: str
    author_name: Optional[str]
    created_at: datetime
    is_opening: bool
    in_attachment: bool
    room_label: str = ""
    reply_number: Optional[int] = None  # the reply's place in its thread (1 = first reply), by time of posting

    @property
    def label(self) -> str:
        """Which post this is, as a reader says it: "Reply #12 by Priya Shah", "Opening post by …"
        (in a non-attributed room the thread's pseudonym, "Participant 3": no account is named)."""
        which = "Opening post" if self.is_opening else f"Reply #{self.reply_number}" if self.reply_number else "Reply"
        return f"{which} by {self.author_name or 'a former member'}"


@dataclass
class Filters:
    """The search page's filter controls, beside the search box's own room:/author:/after:/before:/
    has:attachment. Dates are days (YYYY-MM-DD), both ends included."""
    author: str = ""
    after: str = ""
    before: str = ""
    has_attachment: bool = False

    def apply(self, parsed: qmod.Query) -> None:
        author = qmod.printable(self.author)[:MAX_AUTHOR].strip()
        if author:
            parsed.authors.append(author)
        for name, value, end in (("From", self.after, False), ("To", self.before, True)):
            if not value.strip():
                continue
            when = qmod.date_bound(value, end=end)
            if when is None:
                parsed.notices.append(f"“{value[:20]}” is not a date; choose a day for “{name}”. It was ignored.")
            elif end:
                parsed.before = when if parsed.before is None else min(parsed.before, when)
            else:
                parsed.after = when if parsed.after is None else max(parsed.after, when)
        if self.has_attachment:
            parsed.has_attachment = True

    def args(self) -> dict:
        """As query-string arguments (for links that keep them)."""
        out = {"author": self.author, "after": self.after, "before": self.before,
               "attachment": "1" if self.has_attachment else ""}
        return {k: v for k, v in out.items() if v}


@dataclass
class Page:
    q: str
    results: list[Result] = field(default_factory=list)
    total: int = 0
    estimated: bool = False
    page: int = 1
    pages: int = 0
    sort: str = "relevance"
    room: Optional[Room] = None
    filters: Filters = field(default_factory=Filters)
    notices: list[str] = field(default_factory=list)
    suggestion: Optional[str] = None
    rebuilding: bool = False
    searched: bool = False


def _sort(value: object) -> str:
    if value in (None, ""):
        return "relevance"
    if value not in SORTS:
        raise Invalid("sort must be “relevance” or “newest”.", "sort")
    return str(value)


def _resolve_rooms(names: list[str], rooms: list[int], notices: list[str]) -> list[int]:
    rows = db.session.execute(select(Room.id, Room.name).where(Room.id.in_(rooms))).all() if rooms else []
    chosen: set[int] = set()
    for name in names:
        key = fold(name).strip()
        exact = [rid for rid, rname in rows if fold(rname) == key or str(rid) == key]
        match = exact or ([] if validate.digits(key) else [rid for rid, rname in rows if key in fold(rname)])
        if not match:
            notices.append(f"No room you can read is called “{name}”.")
            return []
        chosen.update(match)
    return [r for r in rooms if r in chosen]


def _resolve_authors(names: list[str], rooms: list[int], notices: list[str]) -> list[int]:
    """Accounts called like `names` among the authors of posts the caller can read (in `rooms`, where
    names are shown): whether an account of that name exists anywhere else is never told, so the
    answer for a name nobody has and for one nobody wrote in these rooms is the same."""
    found: set[int] = set()
    for name in names:
        like = "%" + re.sub(r"([%_\\])", r"\\\1", name.lower()) + "%"
        wrote_here = (select(Post.id).join(Thread, Thread.id == Post.thread_id)
                      .where(Post.author_id == User.id, Thread.room_id.in_(rooms), indexable())
                      .exists())
        ids = set(db.session.scalars(
            select(User.id).where(func.lower(User.name).like(like, escape="\\"), wrote_here).limit(50))) \
            if rooms else set()
        if not ids:
            notices.append(f"No posts you can search were written by anyone called “{name}”.")
            return []
        found.update(ids)
    return sorted(found)


def search(actor: User, q: object, **options) -> Page:
    """One search (see `_search`), its time recorded for monitoring (collab_search_duration_seconds)."""
    started = time.perf_counter()
    try:
        return _search(actor, q, **options)
    finally:
        metrics.SEARCH_SECONDS.observe(time.perf_counter() - started)


def _search(actor: User, q: object, *, room_id: object = None, sort: object = "relevance", page: object = 1,
            per_page: int = PER_PAGE, filters: Optional[Filters] = None) -> Page:
    sort_v = _sort(sort)
    page_v = page if isinstance(page, int) else validate.int_id(page, "page", required=False) or 1
    if not 1 <= page_v <= MAX_PAGE:
        raise Invalid(f"page must be a whole number from 1 to {MAX_PAGE}.", "page")
    parsed = qmod.parse(q if isinstance(q, str) else "")
    if parsed.too_big:
        raise SearchTooBig(parsed.too_big, "q")
    filters = filters or Filters()
    filters.apply(parsed)
    out = Page(q=parsed.raw, page=page_v, sort=sort_v, notices=list(parsed.notices), filters=filters)
    readable = policy.readable_room_id_list(actor)
    rooms = readable
    if room_id not in (None, ""):
        rid = validate.int_id(room_id, "room_id")
        if rid not in readable:
            raise NotFound("Room not found.")
        out.room = db.session.get(Room, rid)
        rooms = [rid]
    st = state()
    if not parsed.searchable:
        out.rebuilding = st.indexer.rebuilding()
        return _finish(out)
    st.indexer.catch_up()  # what this process just committed (or a small index it is rebuilding) first
    out.rebuilding = st.indexer.rebuilding()
    if parsed.rooms:
        rooms = _resolve_rooms(parsed.rooms, rooms, out.notices)
    authors = None
    if parsed.authors:
        if rooms:  # who wrote what stays unknown in non-attributed rooms (rooms/pseudonyms.py)
            unnamed = set(db.session.scalars(select(Room.id).where(Room.id.in_(rooms),
                                                                   Room.non_attributed.is_(True))))
            if unnamed:
                rooms = [r for r in rooms if r not in unnamed]
                out.notices.append("author: does not search non-attributed rooms.")
        authors = _resolve_authors(parsed.authors, rooms, out.notices)
    out.searched = True
    if not rooms or authors == []:
        return _finish(out)
    text_only = policy.rooms_without_attachment_text(actor, rooms)
    req = Request(query=parsed, rooms=[r for r in rooms if r not in text_only], authors=authors, sort=sort_v,
                  offset=(page_v - 1) * per_page, limit=per_page, text_rooms=[r for r in rooms if r in text_only])
    try:
        found = st.backend.search(req)
        _yield()
        if found.total == 0 and parsed.must:
            out.suggestion = suggest(parsed, req.rooms, req.text_rooms)
    except Exception:
        log.exception("search failed; checking the index")
        db.session.rollback()
        st.indexer.suspect = True
        st.indexer.kick()
        found = Found([], 0)
        out.rebuilding = True
    out.total, out.estimated = found.total, found.estimated
    out.pages = min(MAX_PAGE, -(-found.total // per_page))
    out.results = _dress(found, parsed, text_only)
    return _finish(out)


def _finish(out: Page) -> Page:
    if out.rebuilding and REBUILDING not in out.notices:
        out.notices.insert(0, REBUILDING)
    return out


# What a result shows besides its snippet, for a page of post ids: one query, built once (building it
# cost as much as running it), only the columns needed; the post's HTML only when the backend has no
# stored text to make the snippet from (Whoosh).
_EARLIER = aliased(Post)
_REPLY_NUMBER = (select(func.count(_EARLIER.id))
                 .where(_EARLIER.thread_id == Post.thread_id, _EARLIER.parent_id.is_not(None), _EARLIER.id <= Post.id)
                 .correlate(Post).scalar_subquery())  # (ix_posts_thread_id_id: a short index range per result)
_COLUMNS = (Post.id, Post.parent_id, Post.deleted_at, Thread.title, Room.name, User.name, Post.hidden_at,
            Room.non_attributed, Post.thread_id, Post.author_id, Room.label, _REPLY_NUMBER)


def _lookup_statement(*extra):
    return (select(*_COLUMNS, *extra)
            .join(Thread, Thread.id == Post.thread_id).join(Room, Room.id == Thread.room_id)
            .outerjoin(User, User.id == Post.author_id).where(Post.id.in_(bindparam("ids", expanding=True))))


_LOOKUP = _lookup_statement()
_LOOKUP_WITH_HTML = _lookup_statement(Post.html)


def lookup(ids: list[int], with_html: bool = False) -> dict[int, tuple]:
    """post id -> (id, parent_id, deleted_at, thread title, room name, author name, hidden_at,
    room non_attributed, thread_id, author_id, room label, reply number[, html]) for the posts of a results page."""
    if not ids:
        return {}
    # (Core on the session's connection: the ORM's statement handling cost a fifth of the round trip)
    rows = db.session.connection().execute(_LOOKUP_WITH_HTML if with_html else _LOOKUP, {"ids": list(ids)}).all()
    return {r[0]: r for r in rows}


def _dress(found: Found, parsed: qmod.Query, text_only: set[int] = frozenset()) -> list[Result]:
    """Results with snippets; in `text_only` rooms (attachment text not the caller's) never from files."""
    if not found.hits:
        return []
    info = lookup([h.post_id for h in found.hits], with_html=any(h.body is None for h in found.hits))
    wanted, prefixes = parsed.highlight_terms()
    shown: dict = {}  # room label -> as shown (a page has few rooms)
    out = []
    for h in found.hits:
        r = info.get(h.post_id)
        if r is None or r[2] is not None or r[6] is not None:
            continue  # removed (or hidden by moderators) since it was indexed (the outbox catches up within a second)
        body = h.body if h.body is not None else html_text(r[12] or "")
        snippet, hit = highlight(body, wanted, prefixes)
        in_att = False
        if not hit and h.attachments and h.room_id not in text_only:
            att_snip, att_hit = highlight(h.attachments, wanted, prefixes)
            if att_hit:
                snippet, in_att = att_snip, True
        out.append(Result(post_id=h.post_id, thread_id=h.thread_id, room_id=h.room_id, room_name=r[4], title=r[3],
                          title_html=highlight_all(r[3], wanted, prefixes), snippet_html=snippet,
                          author_name=pseudonyms.name(r[8], r[9]) if r[7] else r[5], created_at=h.created_at,
                          is_opening=r[1] is None, in_attachment=in_att,
                          room_label=shown[r[10]] if r[10] in shown else shown.setdefault(r[10], labels.normal(r[10])),
                          reply_number=r[11] if r[1] is not None else None))
    return out


# -- did you mean --------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _edits1(word: str) -> set[str]:
    letters = _LETTERS + "".join(sorted({c for c in word if c not in _LETTERS and c.isalpha()}))
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    transposes = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in letters]
    inserts = [a + c + b for a, b in splits for c in letters]
    return set(deletes + transposes + replaces + inserts) - {word}


def suggest(parsed: qmod.Query, rooms: list[int], text_rooms: list[int] = ()) -> Optional[str]:
    """A corrected query, using only words found in posts of `rooms` (the caller's), and in the
    posts' own text of `text_rooms` (Request.text_rooms). A correction is a word as written in one
    of those posts (never an index term: "handcuf" is a stem, not a word), one edit away from the
    typed word when such a word is there."""
    backend = state().backend
    words = [w for w in dict.fromkeys(parsed.words()) if re.fullmatch(rf"[^\W\d_]{{3,{SUGGEST_LETTERS}}}", w)]
    terms = {w: term_of(w) for w in words}
    words = [w for w in words if terms[w]]
    if not words:
        return None
    have = backend.allowed_counts(sorted({terms[w] for w in words}), rooms, text_rooms=text_rooms)
    fixes: dict[str, str] = {}
    for w in [w for w in words if have.get(terms[w], 0) == 0][:SUGGEST_WORDS]:
        _yield()
        typed = fold(w)
        by_term: dict[str, set[str]] = {}
        for cand in _edits1(typed):
            t = term_of(cand)
            if t and t != terms[w]:
                by_term.setdefault(t, set()).add(cand)
        counts = backend.allowed_counts(sorted(by_term), rooms, text_rooms=text_rooms)
        for t in sorted((t for t in by_term if counts.get(t, 0) > 0), key=lambda t: (-counts[t], t))[:3]:
            word = _written(t, by_term[t], rooms, text_rooms)
            if word:
                fixes[w] = word
                break
    if not fixes:
        return None
    text = parsed.raw
    for w, fix in fixes.items():
        text = re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", fix, text)
    return text


def _written(term: str, near: set[str], rooms: list[int], text_rooms: list[int]) -> Optional[str]:
    """How `term` is written in the caller's newest posts holding it: one of the words `near` (one
    edit from what was typed) if a post has it, else the commonest form. Found by the same search
    (and the same room restriction inside the engine) as any other."""
    req = Request(query=qmod.Query(raw=term, must=[qmod.Word(term, [term])]), rooms=list(rooms),
                  sort="newest", limit=SUGGEST_POSTS, text_rooms=list(text_rooms))
    found = state().backend.search(req)
    if not found.hits:
        return None
    info = lookup([h.post_id for h in found.hits], with_html=any(h.body is None for h in found.hits))
    seen: dict[str, int] = {}
    for h in found.hits:
        r = info.get(h.post_id)
        if r is None or r[2] is not None or r[6] is not None:
            continue
        texts = [r[3] if r[1] is None else "", h.body if h.body is not None else html_text(r[12] or "")]
        if h.room_id not in text_rooms:
            texts.append(h.attachments)
        for token in TOKEN_RE.findall(" ".join(texts)):
            c = compound(token)
            if c is not None and c[1] == term:  # the hyphenated word as written ("anti-social")
                found = [token]
            else:
                found = [w for w in (WORD_RE.findall(token) if c is not None else [token]) if term_of(w) == term]
            for word in found:
                f = fold(word)
                seen[f] = seen.get(f, 0) + 1
    if not seen:
        return None
    return max(seen, key=lambda f: (f in near, seen[f], f))


def room_choices(actor: User) -> list[tuple[int, str]]:
    """(id, name) of the rooms the caller may search, by name: the room filter's options."""
    ids = policy.readable_room_id_list(actor)
    if not ids:
        return []
    return [(rid, name) for rid, name in db.session.execute(
        select(Room.id, Room.name).where(Room.id.in_(ids)).order_by(func.lower(Room.name), Room.id)).all()]
