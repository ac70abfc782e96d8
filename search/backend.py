"""The one interface both search backends implement, and the shapes they share."""
from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from search.documents import Doc
from search.query import Query

Progress = Optional[Callable[[int], None]]
PROBE_GRACE = 0.05  # seconds an acquire keeps trying even with timeout 0


@dataclass
class Request:
    query: Query
    rooms: list[int]  # rooms searched: readable by the caller (and chosen); with text_rooms never empty
    authors: Optional[list[int]] = None  # None: anyone
    sort: str = "relevance"  # or "newest"
    offset: int = 0
    limit: int = 20
    # Rooms searched too, but by the posts' own text only: the caller may not read their attachments'
    # text (rooms.policy.may_read_attachment_text), so a word found only in a post's files is no hit
    # there, counts nothing and suggests nothing. Decided inside the engine, like the rooms.
    text_rooms: list[int] = field(default_factory=list)


@dataclass
class Hit:
    post_id: int
    thread_id: int
    room_id: int
    author_id: Optional[int]
    created_at: datetime
    score: float
    body: Optional[str]  # plain text; None: read it from the post
    attachments: str


@dataclass
class Found:
    hits: list[Hit]
    total: int
    estimated: bool = False  # total is an estimate ("about N")


@dataclass
class Health:
    ok: bool
    reason: str = ""
    documents: int = 0


@dataclass
class Stats:
    details: dict = field(default_factory=dict)


class Backend:
    """index/remove run only inside `writing()` (one writer at a time across
    processes); `search` must restrict to `Request.rooms` inside the engine."""

    name = "base"

    def writing(self, timeout: float):  # -> context manager yielding True when the lock is held
        raise NotImplementedError

    def apply(self, docs: list[Doc], remove_ids: list[int]) -> None:
        raise NotImplementedError

    def search(self, req: Request) -> Found:
        raise NotImplementedError

    def allowed_counts(self, words: list[str], rooms: list[int], cap: int = 50,
                       text_rooms: list[int] = ()) -> dict[str, int]:
        """For each word, how many posts in `rooms` (and by their own text in `text_rooms`,
        as Request.text_rooms) contain it (up to `cap`)."""
        raise NotImplementedError

    def health(self) -> Health:
        raise NotImplementedError

    def gone(self) -> bool:
        """A cheap check, run by every sweep, for an index that has disappeared."""
        return False

    def fast_path_report(self) -> list[str]:
        """Lines for `flask search status` about searches a faster path failed on (none here)."""
        return []

    def prepare(self) -> None:
        """Make the first searches of this process fast (open the index, warm caches), in the background:
        called at the process's first request of any kind, so it never holds up a caller."""

    def close(self) -> None:
        pass


class FileLock:
    """An exclusive flock(2) on a file, acquired with a timeout by polling
    (never blocks the gevent hub). Separate open() calls conflict, so it also
    excludes other threads of this process."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self, timeout: float) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        # (at least a moment: another thread's held_elsewhere() holds a shared lock for microseconds)
        deadline = time.monotonic() + max(timeout, PROBE_GRACE)
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def held_elsewhere(self) -> bool:
        """True if another process (or open file) holds the lock right now.

        The probe takes a *shared* lock for a moment: two probes at once (a search
        asking "rebuilding?" while the indexer thread asks the same before it
        rebuilds a missing index or drains the outbox) must not see each other
        as a rebuild; with an exclusive probe one of them did, and the indexer
        then skipped its work until the next commit."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)


def fsync_tree(path: Path, since: float = 0.0) -> None:
    """fsync files in `path` changed since `since` (epoch seconds), then the folder."""
    for entry in os.scandir(path):
        try:
            if entry.is_file() and entry.stat().st_mtime >= since:
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except FileNotFoundError:
            continue
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def chunks(items: Iterable, n: int) -> Iterator[list]:
    buf: list = []
    for it in items:
        buf.append(it)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
