"""The Whoosh index on disk: where the live one is, its schema, and what a post becomes in it.

Layout: <data dir>/search/whoosh holds each full build in its own folder
`index-<time>-<pid>`; the file CURRENT names the live one and is replaced
atomically, so a rebuild never disturbs searches and a half-written build is
never used. Each build folder has a `collab.json` naming the schema version:
an index of another version is not opened (it gets rebuilt).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

from whoosh import index as windex
from whoosh.codec.whoosh3 import W3Codec
from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, STORED, TEXT, Schema

from search.documents import SNIPPET_ATTACHMENT_CHARS, Doc
from search.text import ANALYSIS_VERSION, CollabTokenizer, FastPositions

SCHEMA_VERSION = 6  # 6: `post`, the post's own text, beside `content` for posts with files
EPOCH = datetime(1970, 1, 1)


def to_us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def codec() -> W3Codec:
    """Posting blocks uncompressed: zlib cost more time (writing and reading) than the disk it saved.
    Writers are also made with compound=False: whoosh-reloaded opens a file inside a compound
    segment by copying it whole into a BytesIO, so opening a 100k-post segment took ~0.6 s (and
    its size in memory), which every index update paid."""
    return W3Codec(compression=0)


def _text_field():
    f = TEXT(analyzer=CollabTokenizer(), phrase=True)
    f.format = FastPositions(field_boost=1.0)
    return f


def make_schema() -> Schema:
    return Schema(
        post_id=ID(stored=True, unique=True),
        room=ID(),
        author=ID(),
        has_att=ID(),
        created=COLUMN(NumericColumn("q")),
        content=_text_field(),
        post=_text_field(),  # title and text without the attachments (posts with attachments only)
        title=_text_field(),
        meta=STORED(),
        body=STORED(),
        att=STORED(),
    )


def doc_fields(d: Doc) -> dict:
    us = to_us(d.created_at)
    f = {
        "post_id": str(d.post_id),
        "room": str(d.room_id),
        "created": us,
        "content": "\n".join(p for p in (d.title, d.body, d.attachments) if p),
        "meta": (d.thread_id, d.room_id, d.author_id, us),
    }
    if d.attachments:  # (the post text itself is not stored: snippets read it from the database)
        f["att"] = d.attachments[:SNIPPET_ATTACHMENT_CHARS]
        own = "\n".join(p for p in (d.title, d.body) if p)
        if own:  # what a caller who may not read the files searches (Request.text_rooms)
            f["post"] = own
    if d.author_id is not None:
        f["author"] = str(d.author_id)
    if d.has_attachment:
        f["has_att"] = "1"
    if d.title:
        f["title"] = d.title
    return f


def pointer(root: Path) -> Path:
    """The file naming the live build."""
    return root / "CURRENT"


def current_dir(root: Path) -> Optional[Path]:
    try:
        name = pointer(root).read_text().strip()
    except OSError:
        return None
    d = root / name
    return d if name and d.is_dir() else None


def pointer_stamp(root: Path):
    """Changes whenever CURRENT is replaced (a rebuild switched builds)."""
    try:
        st = pointer(root).stat()
        return (st.st_ino, st.st_mtime_ns)
    except OSError:
        return None


class Outdated(ValueError):
    """The build is of another schema or analysis version (search.text.ANALYSIS_VERSION): rebuilt."""


def marker() -> dict:
    """What collab.json records of the code that built an index."""
    return {"schema": SCHEMA_VERSION, "analysis": ANALYSIS_VERSION}


def open_index(d: Path):
    ix = windex.open_dir(str(d))
    found = json.loads((d / "collab.json").read_text())
    found.setdefault("analysis", 1)  # (builds before search.spelling did not say)
    want = marker()
    if any(found.get(k) != v for k, v in want.items()):
        raise Outdated(f"built with schema {found.get('schema')} and word analysis {found.get('analysis')}, "
                       f"this version uses schema {want['schema']} and word analysis {want['analysis']}")
    return ix
