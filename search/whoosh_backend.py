"""The embedded backend: a Whoosh index in <data dir>/search/whoosh.

Made of these parts, each a module:
    whoosh_index.py     the index on disk: layout (CURRENT names the live build), schema, fields of a post
    whoosh_writer.py    applying post changes; full rebuilds beside the live build
    whoosh_segments.py  the long-lived searcher and what is worked out once per segment,
                        the caller's allowed documents among it (one cache for both ways of searching)
    whoosh_query.py     queries by set operations: the usual way (the engine: fastpath.py;
                        its decoded posting lists: whoosh_postings.py)
    whoosh_matchers.py  queries through Whoosh's own matchers: the fallback

A failure of the fast path never fails the search: the matchers answer it.
It is never silent either: the first failure of each kind is logged with its
traceback, every fallback is counted (`fallbacks`, and a small file per
process that `flask search status` reads), and the fast path is tried again
for the next query, unless the failure is structural (an AttributeError: a
Whoosh object lacks what the fast path reads, i.e. a Whoosh it was not
written for), which turns it off for the process and says so in the log.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator, Optional

from search import whoosh_matchers, whoosh_query
from search.backend import Backend, Found, Health, Progress, Request
from search.documents import Doc
from search.whoosh_index import Outdated, current_dir, open_index, pointer
from search.whoosh_segments import SegmentCache
from search.whoosh_warm import DEFAULT_BUDGET, Warmer
from search.whoosh_writer import IndexWriter

log = logging.getLogger(__name__)

STRUCTURAL = (AttributeError,)  # the fast path cannot work with this Whoosh at all: stop trying it


class WhooshBackend(Backend):
    name = "whoosh"

    def __init__(self, data_dir: str | Path, warm_postings: int = DEFAULT_BUDGET):
        self.root = Path(data_dir) / "search" / "whoosh"
        self.writer = IndexWriter(self.root)
        self.lock = self.writer.lock
        self.segments = SegmentCache(self.root, lambda: self.writer.writes)
        self._mutex = threading.RLock()
        self.fast = True  # set operations over decoded postings (search.fastpath); False: Whoosh matchers
        self.fallbacks = 0  # searches the fast path failed on (answered by the matchers), in this process
        self.fast_off: Optional[str] = None  # why the fast path was turned off for this process
        self._logged: set[tuple] = set()  # kinds of failure already logged with their traceback
        self.warmer = Warmer(self, warm_postings)  # a new build's frequent terms decoded in the background

    @property
    def fast(self) -> bool:
        """Whether searches try the fast path; off, nothing reads postings through its decoder."""
        return self._fast

    @fast.setter
    def fast(self, on: bool) -> None:
        self._fast = self.segments.decoded = bool(on)

    # -- where the live index is --------------------------------------------------------

    @property
    def pointer(self) -> Path:
        return pointer(self.root)

    def current_dir(self) -> Optional[Path]:
        return current_dir(self.root)

    # -- searching ----------------------------------------------------------------------

    def search(self, req: Request) -> Found:
        with self._mutex:
            s = self.segments.searcher()
            if s is None:
                return Found([], 0)
            if self.fast:
                self.warmer.maybe_start(self.segments._pointer_stamp)
                try:
                    return whoosh_query.search(s, req, self.segments)
                except Exception as err:  # answered below by the matchers; logged and counted
                    self._fast_path_failed(err)
            ranked, total, estimated = whoosh_matchers.search(s, req, self.segments)
            need = req.offset + req.limit
            return Found(whoosh_query.hits(s, ranked[req.offset:need]), total, estimated)

    def prepare(self) -> None:
        """Open the build and start its warm-up now rather than at the first search: a server that answered
        anything (a page, a health check) a second or two earlier has its common words decoded already."""
        threading.Thread(target=self._open_and_warm, name="search-open", daemon=True).start()

    def _open_and_warm(self) -> None:
        try:
            with self._mutex:
                if self.fast and self.segments.searcher() is not None:
                    self.warmer.maybe_start(self.segments._pointer_stamp)
        except Exception:  # an optimisation: the first search opens the index itself
            log.exception("opening the search index ahead of the first search failed")

    def allowed_counts(self, words: list[str], rooms: list[int], cap: int = 50,
                       text_rooms: list[int] = ()) -> dict[str, int]:
        with self._mutex:
            s = self.segments.searcher()
            if s is None:
                return {w: 0 for w in words}
            return whoosh_query.allowed_counts(s, self.segments, words, rooms, cap, text_rooms)

    def documents(self) -> int:
        with self._mutex:
            s = self.segments.searcher()
            return s.doc_count() if s is not None else 0

    # -- when the fast path fails ---------------------------------------------------------

    def _fast_path_failed(self, err: Exception) -> None:
        self.fallbacks += 1
        structural = isinstance(err, STRUCTURAL)
        if structural:
            self.fast = False
            self.fast_off = f"{type(err).__name__}: {err}"
        frames = traceback.extract_tb(err.__traceback__)
        kind = (type(err).__name__, frames[-1].filename, frames[-1].lineno) if frames else (type(err).__name__,)
        if kind not in self._logged:
            self._logged.add(kind)
            log.error("search fast path failed (%s: %s); Whoosh's matchers answered this search; %s",
                      type(err).__name__, err,
                      "the failure is structural (Whoosh's internals are not what the fast path reads): "
                      "the fast path is off for this process" if structural else
                      f"{self.fallbacks} fallback(s) in this process; the fast path is tried again next time",
                      exc_info=err)
        else:
            log.warning("search fast path failed again (%s: %s); Whoosh's matchers answered; "
                        "%d fallback(s) in this process", type(err).__name__, err, self.fallbacks)
        self._record_fallbacks(err)

    def _record_fallbacks(self, err: Exception) -> None:
        """This process's count, in a file `flask search status` reads (another process)."""
        path = self.root / f"fastpath-{os.getpid()}.json"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "fallbacks": self.fallbacks, "at": time.time(),
                                       "last": f"{type(err).__name__}: {err}", "off": self.fast_off}))
            os.replace(tmp, path)
        except OSError as write_err:
            log.warning("could not record search fast path fallbacks in %s: %s", path, write_err)

    def fast_path_report(self) -> list[str]:
        """Lines for `flask search status`: fallbacks of the processes using this index."""
        running = earlier = 0
        off, last = [], None
        for path in sorted(self.root.glob("fastpath-*.json")):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            try:
                os.kill(int(rec["pid"]), 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except OSError:  # (alive, another user's)
                alive = True
            if alive:
                running += rec["fallbacks"]
                if rec.get("off"):
                    off.append(f"{rec['pid']} ({rec['off']})")
            else:
                earlier += rec["fallbacks"]
            if last is None or rec["at"] > last[0]:
                last = (rec["at"], rec["last"])
        lines = [f"fast path fallbacks: {running} in running processes, {earlier} in earlier ones"]
        if last:
            lines.append(f"last fallback: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last[0]))} {last[1]}")
        if off:
            lines.append("fast path off in process " + ", ".join(off))
        return lines

    # -- writing --------------------------------------------------------------------------

    def writing(self, timeout: float):
        return self.writer.writing(timeout)

    def apply(self, docs: list[Doc], remove_ids: list[int]) -> bool:
        return self.writer.apply(docs, remove_ids)

    def rebuild(self, parts: list[Callable[[], Iterator[list[Doc]]]], progress: Progress = None,
                child_init: Optional[Callable[[], None]] = None) -> int:
        return self.writer.rebuild(parts, progress, child_init)

    # -- the index's state ------------------------------------------------------------------

    def health(self) -> Health:
        d = self.current_dir()
        if d is None:
            return Health(False, "missing")
        try:
            ix = open_index(d)
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
        except Outdated as err:
            return Health(False, f"outdated ({err})")
        except Exception as err:
            return Health(False, f"broken ({type(err).__name__}: {err})")

    def gone(self) -> bool:
        """Cheap: has the live index folder disappeared?"""
        return self.current_dir() is None

    def close(self) -> None:
        with self._mutex:
            self.segments.close()
            self.warmer.forget()
