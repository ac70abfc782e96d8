"""Changes to the Whoosh index: applying post changes to the live build, and full rebuilds.

Only one writer at a time across processes (`writing()`, a file lock). A
rebuild writes a complete new build beside the live one (see
search.whoosh_index for the layout) and switches CURRENT to it at the end.

Speed of a rebuild (Whoosh is pure Python): postings are grouped per term in
memory (DictPool) instead of Whoosh's sort of every posting tuple, field
lengths are read once per field, and several processes each index a range of
posts into their own segments, listed together in one table of contents (no
merge pass).
"""
from __future__ import annotations

import gc
import json
import multiprocessing as mp
import os
import pickle
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from whoosh import index as windex
from whoosh.index import TOC
from whoosh.writing import SegmentWriter

from search.backend import FileLock, Progress, fsync_tree
from search.documents import Doc
from search.whoosh_index import codec, marker, current_dir, doc_fields, make_schema, open_index, pointer

SEGMENT_DOCS = 80_000  # documents per segment a rebuilding process writes (bounds its memory, ~1 GB)


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


class IndexWriter:
    """Writes to the index under <root>. `writes` counts the changes this process
    made, so its searcher knows to look for them at once."""

    def __init__(self, root: Path):
        self.root = root
        self.lock = FileLock(root / "writer.lock")
        self.writes = 0

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
        d = current_dir(self.root)
        if d is None:
            return False
        ix = open_index(d)
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
        self.writes += 1
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
                segments, n = _build_part(ix, parts[0], progress)
            else:
                segments, n = _build_parallel(d, parts, progress, child_init)
            TOC(ix.schema, segments, ix.latest_generation() + 1).write(ix.storage, ix.indexname)
            (d / "collab.json").write_text(json.dumps({**marker(), "documents": n, "built": time.time()}))
            fsync_tree(d)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        tmp = self.root / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(name)
        fd = os.open(tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, pointer(self.root))
        fsync_tree(self.root, time.time() + 3600)  # just the folder entry
        for old in self.root.iterdir():
            if old.is_dir() and old.name.startswith("index-") and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self.writes += 1
        return n


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


def _build_parallel(d: Path, parts, progress, child_init) -> tuple[list, int]:
    ctx = mp.get_context("fork")
    counter = ctx.Value("q", 0)
    results = ctx.Queue()

    def child(i: int, part) -> None:
        try:
            if child_init:
                child_init()
            segments, n = _build_part(windex.open_dir(str(d)), part, None, counter)
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
