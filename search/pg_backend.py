"""The PostgreSQL backend (COLLAB_SEARCH_BACKEND=postgres): rows of
`search_documents` with a `tsv` column (title weighted A, text, attachments
weighted C) written by the application from search.text's analysis, the same
index terms Whoosh has (search.pg_terms; migration 0020), and a GIN index on it. Every host shares it, so several app servers
can write and search; writers take a transaction-scoped advisory lock so the
outbox is applied in order.

The query tree is compiled to a tsquery literal of quoted index terms and the
operators & | ! <-> :* (so user input cannot change its structure), and the
room restriction is part of the same WHERE clause as the match. The table's
comment names the analysis version its rows were made with: rows of another
version are rebuilt (health() says "outdated").
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Optional

from sqlalchemy import text

from collab.extensions import db
from search.backend import Backend, Found, Health, Hit, Request
from search import documents
from search.documents import SNIPPET_ATTACHMENT_CHARS, Doc
from search.models import SearchDocument
from search.pg_terms import term_query, tsquery, vectors
from search.text import ANALYSIS_VERSION

LOCK_KEY = 0x5EA4C4  # pg_advisory_xact_lock key of the search writer
COUNT_CAP = 1000
SAMPLE = 500
RANK_CANDIDATES = 500
RANK_CANDIDATES_PHRASE = 60
PHRASE_WINDOW = 400  # a phrase is looked for among the newest this many posts with all its words first
PHRASE_SAMPLE = 300
ROOM_COUNTS_TTL = 10.0
Q = "CAST(:qs AS tsquery)"
WORDS = "CAST(:words AS tsquery)"
MARKER = f"collab search analysis {ANALYSIS_VERSION}"
_UPSERT = text(
    "INSERT INTO search_documents (post_id, room_id, thread_id, author_id, created_at, is_opening, has_attachment, "
    "title, body, attachments, tsv, tsv_post) VALUES (:post_id, :room_id, :thread_id, :author_id, :created_at, "
    ":is_opening, :has_attachment, :title, :body, :attachments, CAST(:tsv AS tsvector), CAST(:tsv_post AS tsvector)) "
    "ON CONFLICT (post_id) DO UPDATE SET room_id = EXCLUDED.room_id, thread_id = EXCLUDED.thread_id, "
    "author_id = EXCLUDED.author_id, created_at = EXCLUDED.created_at, is_opening = EXCLUDED.is_opening, "
    "has_attachment = EXCLUDED.has_attachment, title = EXCLUDED.title, body = EXCLUDED.body, "
    "attachments = EXCLUDED.attachments, tsv = EXCLUDED.tsv, tsv_post = EXCLUDED.tsv_post")


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self):
        self._counts: Optional[tuple[float, dict[int, int]]] = None

    # -- writing ------------------------------------------------------------------

    @contextmanager
    def writing(self, timeout: float, shared: bool = False):
        """A transaction holding the search writer's advisory lock (released at
        commit/rollback). Rebuild batches (disjoint posts) share it with each
        other; a drain holds it alone."""
        sess = db.session()
        if sess.in_transaction():
            sess.commit()
        deadline = time.monotonic() + timeout
        got = False
        fn = "pg_try_advisory_xact_lock_shared" if shared else "pg_try_advisory_xact_lock"
        while True:
            got = bool(sess.scalar(text(f"SELECT {fn}(:k)"), {"k": LOCK_KEY}))
            if got or time.monotonic() >= deadline:
                break
            sess.rollback()
            time.sleep(0.02)
        try:
            yield got
        finally:
            if sess.in_transaction():
                sess.rollback()  # the caller commits its work; anything left is dropped

    def apply(self, docs: list[Doc], remove_ids: list[int]) -> bool:
        sess = db.session
        if remove_ids:
            sess.execute(SearchDocument.__table__.delete().where(SearchDocument.post_id.in_(remove_ids)))
        if docs:
            sess.execute(_UPSERT, [_row(d) for d in docs])
        return True

    def mark_current(self) -> None:
        """Record (in the caller's transaction) that every row is of this analysis version."""
        db.session.execute(text(f"COMMENT ON TABLE search_documents IS '{MARKER}'"))

    # -- reading -------------------------------------------------------------------

    def _where(self, req: Request, params: dict, part: str = "") -> tuple[str, Optional[str]]:
        """(WHERE clause, tsquery) of one search; `part` for a caller with text-only rooms
        (Request.text_rooms): "main" searches `rooms` and the posts without files of the
        text-only rooms (their tsv), "text" the posts with files of the text-only rooms
        (searched in tsv_post, see _source)."""
        q = req.query
        weight = "A" if q.in_title else ""
        must = [p for p in (tsquery(n, weight) for n in q.must) if p]
        if q.must and not must:
            return "", None
        expr = " & ".join(must)
        nots = [p for p in (tsquery(n) for n in q.must_not) if p]
        if nots:
            neg = "!(" + " | ".join(nots) + ")"
            expr = f"({expr}) & {neg}" if expr else neg
        conds = ["d.room_id = ANY(:rooms)"]
        params["rooms"] = list(req.rooms)
        if part:
            params["text_rooms"] = list(req.text_rooms)
            conds = (["(d.room_id = ANY(:rooms) OR (d.room_id = ANY(:text_rooms) AND NOT d.has_attachment))"]
                     if part == "main" else ["d.room_id = ANY(:text_rooms) AND d.has_attachment"])
        if req.authors is not None:
            conds.append("d.author_id = ANY(:authors)")
            params["authors"] = list(req.authors)
        if q.after:
            conds.append("d.created_at >= :after")
            params["after"] = q.after
        if q.before:
            conds.append("d.created_at < :before")
            params["before"] = q.before
        if q.has_attachment:
            conds.append("d.has_attachment")
        if q.must:
            params["qs"] = expr
            conds.append(f"d.tsv @@ {Q}")
        return " AND ".join(conds), (expr if q.must else None)

    def search(self, req: Request) -> Found:
        if not req.text_rooms:
            return self._search(req)
        # The caller may not read the files of some rooms: two searches inside the database, each
        # restricted there, merged (each gives its best `offset + limit`).
        need = req.offset + req.limit
        whole = Request(query=req.query, rooms=req.rooms, authors=req.authors, sort=req.sort, offset=0,
                        limit=need, text_rooms=req.text_rooms)
        a, b = self._search(whole, "main"), self._search(whole, "text")
        if req.sort == "newest" or not req.query.must:
            key = lambda h: (h.created_at, h.post_id)  # noqa: E731
        else:
            key = lambda h: (h.score, h.created_at)  # noqa: E731
        hits = sorted(a.hits + b.hits, key=key, reverse=True)[req.offset:need]
        return Found(hits, a.total + b.total, a.estimated or b.estimated)

    def _search(self, req: Request, part: str = "") -> Found:
        params: dict = {}
        where, qs = self._where(req, params, part)
        src = _source(part)
        if not where or (req.authors is not None and not req.authors):
            return Found([], 0)
        need = req.offset + req.limit
        params.update(limit=req.limit, offset=req.offset, need=need)
        sess = db.session
        params["n"] = SNIPPET_ATTACHMENT_CHARS
        cols = ("x.post_id, x.thread_id, x.room_id, x.author_id, x.created_at, x.body, "
                "left(x.attachments, :n)")
        window = None
        if req.sort == "newest" or qs is None:
            rows = sess.execute(text(
                f"SELECT {cols}, 0.0 FROM search_documents x WHERE x.post_id IN "
                f"(SELECT d.post_id FROM {src} d WHERE {where} "
                f" ORDER BY d.created_at DESC, d.post_id DESC LIMIT :limit OFFSET :offset) "
                f"ORDER BY x.created_at DESC, x.post_id DESC"), params).all()
        elif "<->" in qs:
            rows, window = self._phrase_page(where, params, req, src)
        else:
            # Rank the newest RANK_CANDIDATES matches: ranking reads (and decompresses) each
            # match's tsvector, so ranking every match of a common word would grow with the table.
            params["cand"] = max(RANK_CANDIDATES, need)
            rows = sess.execute(text(
                f"SELECT {cols}, c.score FROM "
                f"(SELECT d.post_id, d.created_at, ts_rank(d.tsv, {Q}, 1) AS score FROM "
                f" (SELECT d.post_id, d.tsv, d.created_at FROM {src} d WHERE {where} "
                f"  ORDER BY d.created_at DESC LIMIT :cand) d "
                f" ORDER BY score DESC, d.created_at DESC LIMIT :limit OFFSET :offset) c "
                f"JOIN search_documents x ON x.post_id = c.post_id "
                f"ORDER BY c.score DESC, c.created_at DESC"), params).all()
        hits = [Hit(r[0], r[1], r[2], r[3], r[4], float(r[7]), r[5] or "", r[6] or "") for r in rows]
        ids = rows
        total, estimated = self._count(where, params, len(ids), req, window, src)
        return Found(hits, total, estimated)

    def _phrase_page(self, where: str, params: dict, req: Request,
                     src: str = "search_documents") -> tuple[list, Optional[tuple[int, int]]]:
        """A phrase is confirmed row by row from each row's positions, and the planner cannot
        tell how rare it is. So take the newest PHRASE_WINDOW rows with all its words (the
        index finds those without reading rows), keep those with the phrase, and rank them;
        if that leaves too few, do the full search. Also returns (rows of the window holding
        the phrase, rows in the window) when the page came from the window: the count uses it."""
        sess = db.session
        p = dict(params, words=params["qs"].replace("<->", "&"), window=max(PHRASE_WINDOW, params["need"] * 4))
        words_where = where.replace(f"{Q}", f"{WORDS}")
        cols = ("x.post_id, x.thread_id, x.room_id, x.author_id, x.created_at, x.body, "
                "left(x.attachments, :n)")

        def page(inner: str) -> list:
            return sess.execute(text(
                f"SELECT {cols}, c.score, c.n_phrase, c.n_window FROM "
                f"(SELECT w.post_id, w.created_at, ts_rank(w.tsv, {Q}, 1) AS score, "
                f"  count(*) OVER () AS n_phrase, max(w.n_window) OVER () AS n_window "
                f" FROM (SELECT t.*, count(*) OVER () AS n_window FROM ({inner}) t) w "
                f" WHERE w.tsv @@ {Q} "
                f" ORDER BY score DESC, w.created_at DESC LIMIT :limit OFFSET :offset) c "
                f"JOIN search_documents x ON x.post_id = c.post_id "
                f"ORDER BY c.score DESC, c.created_at DESC"), p).all()

        rows = page(f"SELECT d.post_id, d.tsv, d.created_at FROM {src} d WHERE {words_where} "
                    f"ORDER BY d.created_at DESC LIMIT :window")
        window = (int(rows[0][8]), int(rows[0][9])) if rows else None
        if len(rows) < req.limit:
            n_words = sess.scalar(text(f"SELECT count(*) FROM (SELECT 1 FROM {src} d WHERE "
                                       f"{words_where} LIMIT :window) s"), p)
            if n_words >= p["window"]:  # there were more rows with the words than we looked at
                p["cand"] = max(RANK_CANDIDATES_PHRASE, params["need"])
                rows = page(f"SELECT d.post_id, d.tsv, d.created_at FROM {src} d WHERE {where} "
                            f"ORDER BY d.created_at DESC LIMIT :cand")
                window = None
            elif window is not None:  # every post with the words was in the window
                window = (window[0], n_words)
        return rows, window

    def _count(self, where: str, params: dict, got: int, req: Request,
               window: Optional[tuple[int, int]] = None, src: str = "search_documents") -> tuple[int, bool]:
        """Matches the caller may see: exact when the page was not full or there are at most
        COUNT_CAP; otherwise estimated from the caller's own newest posts ("about N"):
        the share of the newest SAMPLE allowed posts that match, times the allowed posts
        (nothing about other rooms enters). The sample comes first (one short index walk):
        when it already shows far more than COUNT_CAP matches no exact count is tried
        (a capped count of a common word must still build its whole bitmap)."""
        if got < req.limit and (got > 0 or req.offset == 0):
            return req.offset + got, False
        sess = db.session
        low = req.offset + got
        qs = params.get("qs")
        p = dict(params, cap=COUNT_CAP + 1, sample=SAMPLE)
        if qs is None:  # no words: every allowed post that passes the filters
            n = sess.scalar(text(f"SELECT count(*) FROM (SELECT 1 FROM {src} d WHERE {where} "
                                 f"LIMIT :cap) s"), p)
            if n <= COUNT_CAP:
                return n, False
            return max(self._allowed(where, p, src), n), True
        base = where.split(" AND d.tsv @@ ")[0]
        phrase = "<->" in qs
        if phrase:
            p["words"] = qs.replace("<->", "&")
        words_where = where.replace(f"{Q}", f"{WORDS}")
        extra = f", count(*) FILTER (WHERE s.tsv @@ {WORDS})" if phrase else ""
        row = sess.execute(text(
            f"SELECT count(*) FILTER (WHERE s.tsv @@ {Q}), count(*){extra} FROM "
            f"(SELECT d.tsv FROM {src} d WHERE {base} ORDER BY d.created_at DESC LIMIT :sample) s"),
            p).one()
        matched, sampled = row[0], row[1]
        if sampled < SAMPLE:  # the sample was every allowed post
            return max(matched, low), False
        allowed = self._allowed(base, p, src)
        est = round(matched / sampled * allowed)
        if _clearly_above(est, matched):
            return max(est, low), True
        # Not clearly many: count exactly, up to COUNT_CAP.
        if phrase:
            # Positions live in each row's tsvector. The phrase's share among the newest
            # PHRASE_SAMPLE posts with all its words (all of them, when there are fewer: exact).
            # (The page's window of the newest posts with the words gives that share already.)
            if window is not None:
                m2, s2 = window
                full = s2 >= max(PHRASE_WINDOW, params["need"] * 4)
            else:
                p["psample"] = PHRASE_SAMPLE
                m2, s2 = sess.execute(text(
                    f"SELECT count(*) FILTER (WHERE s.tsv @@ {Q}), count(*) FROM "
                    f"(SELECT d.tsv FROM {src} d WHERE {words_where} "
                    f"ORDER BY d.created_at DESC LIMIT :psample) s"), p).one()
                full = s2 >= PHRASE_SAMPLE
            if not full:
                return max(m2, low), False
            words_est = round(row[2] / sampled * allowed)
            est = round(m2 / s2 * words_est)
            if _clearly_above(est, m2):
                return max(est, low), True
            sess.execute(text("SET LOCAL enable_seqscan = off"))  # the GIN index finds the rows with the words
            n_phrase, n_words = sess.execute(text(
                f"SELECT count(*) FILTER (WHERE s.tsv @@ {Q}), count(*) FROM "
                f"(SELECT d.tsv FROM {src} d WHERE {words_where} LIMIT :cap) s"), p).one()
            sess.execute(text("SET LOCAL enable_seqscan = on"))
            if n_words <= COUNT_CAP:
                return max(n_phrase, low), False
            return max(round(m2 / s2 * max(words_est, n_words)), low), True
        sess.execute(text("SET LOCAL enable_seqscan = off"))  # the GIN index, not a scan of every row
        n = sess.scalar(text(f"SELECT count(*) FROM (SELECT 1 FROM {src} d WHERE {where} "
                             f"LIMIT :cap) s"), p)
        sess.execute(text("SET LOCAL enable_seqscan = on"))
        if n <= COUNT_CAP:
            return n, False
        return max(est, n), True

    def _allowed(self, base: str, params: dict, src: str = "search_documents") -> int:
        """Posts passing the caller's room (and other non-word) conditions."""
        if base == "d.room_id = ANY(:rooms)":
            per_room = self._room_counts()
            return sum(per_room.get(r, 0) for r in params["rooms"])
        return db.session.scalar(text(f"SELECT count(*) FROM {src} d WHERE {base}"), params) or 0

    def _room_counts(self) -> dict[int, int]:
        """Documents per room, recounted at most every ROOM_COUNTS_TTL seconds (only the
        caller's own rooms are ever added up)."""
        now = time.monotonic()
        if self._counts is None or now - self._counts[0] > ROOM_COUNTS_TTL:
            rows = db.session.execute(text("SELECT room_id, count(*) FROM search_documents GROUP BY room_id")).all()
            self._counts = (now, dict(rows))
        return self._counts[1]

    def allowed_counts(self, words: list[str], rooms: list[int], cap: int = 50,
                       text_rooms: list[int] = ()) -> dict[str, int]:
        """`words` are index terms (search.text.term_of)."""
        queries = {w: q for w in words if (q := term_query(w))}
        if not queries:
            return {w: 0 for w in words}
        # (in text-only rooms a post with files counts by its own text: tsv_post)
        rows = db.session.execute(text(
            "SELECT w, (SELECT count(*) FROM (SELECT 1 FROM search_documents d "
            "  WHERE (d.tsv @@ CAST(w AS tsquery) AND (d.room_id = ANY(:rooms) OR "
            "         (d.room_id = ANY(:text_rooms) AND NOT d.has_attachment))) "
            "     OR (d.tsv_post @@ CAST(w AS tsquery) AND d.room_id = ANY(:text_rooms)) LIMIT :cap) x) "
            "FROM unnest(CAST(:words AS text[])) AS w"),
            {"words": list(queries.values()), "rooms": list(rooms), "text_rooms": list(text_rooms),
             "cap": cap}).all()
        got = {q: int(c) for q, c in rows}
        return {w: got.get(queries.get(w, ""), 0) for w in words}

    def health(self) -> Health:
        try:
            generated = db.session.scalar(text(
                "SELECT is_generated FROM information_schema.columns "
                "WHERE table_name = 'search_documents' AND column_name = 'tsv'"))
            if generated is None or generated != "NEVER":
                return Health(False, "missing (the tsv column needs PostgreSQL and migration 0020)")
            docs = db.session.scalar(text("SELECT count(*) FROM search_documents")) or 0
            posts = documents.count_indexable()
            made = db.session.scalar(text("SELECT obj_description('search_documents'::regclass, 'pg_class')"))
            db.session.rollback()
            if made != MARKER:
                if not posts and not docs:  # nothing to analyse: mark the empty table as current
                    self.mark_current()
                    db.session.commit()
                    return Health(True, "ok", 0)
                return Health(False, f"outdated (rows made by “{made or 'the word analysis before 2'}”, "
                                     f"this version is “{MARKER}”)", docs)
            if posts and not docs:
                return Health(False, "empty", docs)
            return Health(True, "ok", docs)
        except Exception as err:
            db.session.rollback()
            return Health(False, f"broken ({type(err).__name__}: {err})")

    def close(self) -> None:
        self._counts = None  # (per-room document counts: recounted by the next search)

    def documents(self) -> int:
        n = db.session.scalar(text("SELECT count(*) FROM search_documents")) or 0
        db.session.rollback()
        return n


def _source(part: str) -> str:
    """The rows a search reads, as `d`: for the "text" part each row's tsv is its `tsv_post` (title and
    text without the attachments, kept for posts with files by migration 0009). A plain subquery:
    PostgreSQL flattens it, so the GIN index on tsv_post is used."""
    if part != "text":
        return "search_documents"
    return ("(SELECT post_id, room_id, thread_id, author_id, created_at, is_opening, has_attachment, "
            "tsv_post AS tsv FROM search_documents)")


def _clearly_above(est: int, matched: int) -> bool:
    """Is an estimate made from `matched` sampled matches above COUNT_CAP beyond doubt
    (2.5 standard deviations, the relative one being about 1/sqrt(matched))?"""
    return matched >= 10 and est * (1 - 2.5 / matched ** 0.5) > COUNT_CAP


def _row(d: Doc) -> dict:
    return {"post_id": d.post_id, "room_id": d.room_id, "thread_id": d.thread_id, "author_id": d.author_id,
            "created_at": d.created_at, "is_opening": d.is_opening, "has_attachment": d.has_attachment,
            "title": d.title, "body": d.body, "attachments": d.attachments,
            **vectors(d.title, d.body, d.attachments, d.has_attachment)}
