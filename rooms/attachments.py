"""Attachment files: stored once by SHA-256 under the data folder, never by
their uploaded name; images get a small PNG thumbnail, made by Pillow in a
bounded child process (rooms/untrusted_files.py): an image declaring more than
MAX_THUMB_PIXELS pixels, or one the child cannot finish within its bounds, is
kept as a plain file (a download link, no thumbnail).

Storage (issue 17): an upload is written to a temporary file inside the attachments folder itself
(`attachments/.incoming`), flushed to disk, then renamed into place, so the rename never crosses file
systems when attachments have a volume of their own (and if it does, the file is copied into the target
folder, synced and renamed there). A disk that fills up is a clear "no room" error (507), never a
half-written file or a post without its attachment; an image whose thumbnail does not fit is refused the
same way rather than quietly turned into a plain download."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from flask import current_app
from collab import validate
from collab.errors import Invalid, NoRoom, TooLarge
from rooms import untrusted_files

log = logging.getLogger(__name__)

NO_ROOM_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NO_ROOM_MESSAGE = ("The server has no room to store this file: its disk is full. Nothing was saved; please tell "
                   "an administrator (trying again will not help until they make room).")
THUMB_HEADROOM = 4 * 1024 * 1024   # free bytes below which a failed thumbnail is put down to a full disk

IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass
class StoredFile:
    sha256: str
    filename: str
    content_type: str
    size: int
    is_image: bool
    width: Optional[int] = None
    height: Optional[int] = None


def _root() -> Path:
    return Path(current_app.config["DATA_DIR"])


def blob_path(sha256: str) -> Path:
    return _root() / "attachments" / sha256[:2] / sha256[2:4] / sha256


def thumb_path(sha256: str) -> Path:
    return _root() / "thumbs" / sha256[:2] / f"{sha256}.png"


def max_bytes() -> int:
    return current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024


def safe_filename(name: object) -> str:
    """Keep the name for display and download; it is never used as a path."""
    if not isinstance(name, str):
        name = ""
    name = validate.clean_text(name).replace("/", "_").replace("\\", "_").strip(" .")
    return (name or "attachment")[:200]


def store(stream: BinaryIO, filename: object) -> StoredFile:
    """Copy an upload into the store, refusing it past the size limit or when the disk is full."""
    limit = max_bytes()
    tmp_dir = _root() / "attachments" / ".incoming"   # same volume as the blobs: the rename stays within it
    digest = hashlib.sha256()
    size = 0
    tmp_name = ""
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(1024 * 256):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"Attachments may be at most {current_app.config['MAX_UPLOAD_MB']} MB.", "file")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())   # on disk before it is renamed into place: never a half-written blob
        if size == 0:
            raise Invalid("The attached file is empty.", "file")
        sha = digest.hexdigest()
        dest = blob_path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            os.unlink(tmp_name)
        else:
            _move_into(Path(tmp_name), dest)
    except OSError as err:
        _discard(tmp_name)
        if err.errno in NO_ROOM_ERRNOS:
            log.error("no room to store an attachment in %s: %s", _root() / "attachments", err)
            raise NoRoom(NO_ROOM_MESSAGE, "file") from None
        raise
    except BaseException:
        _discard(tmp_name)
        raise
    info = StoredFile(sha256=sha, filename=safe_filename(filename), content_type="application/octet-stream",
                      size=size, is_image=False)
    _inspect_image(info)
    return info


def _discard(tmp_name: str) -> None:
    if tmp_name and os.path.exists(tmp_name):
        os.unlink(tmp_name)


def _move_into(src: Path, dest: Path) -> None:
    """Rename `src` to `dest`; across file systems (EXDEV), copy into `dest`'s folder, sync, then rename
    there, so `dest` appears whole or not at all."""
    try:
        os.replace(src, dest)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        _discard(tmp)
        raise
    os.unlink(src)


def _no_room(folder: Path) -> bool:
    """True if the disk holding `folder` (or its nearest existing parent) is (nearly) full."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free < THUMB_HEADROOM


def _inspect_image(info: StoredFile) -> None:
    """An image of a known format whose thumbnail could be made is shown as an image; anything else
    (too many pixels, damaged, past the child's bounds) is a plain file."""
    path = blob_path(info.sha256)
    head = untrusted_files.image_header(path)
    if head is None or head[0] not in IMAGE_TYPES:
        return
    thumb = thumb_path(info.sha256)
    try:
        made = thumb.exists() or untrusted_files.make_thumbnail(path, thumb)
    except OSError as err:
        if err.errno in NO_ROOM_ERRNOS:
            raise NoRoom(NO_ROOM_MESSAGE, "file") from None
        raise
    if not made:
        if _no_room(thumb.parent) and head[1] * head[2] <= untrusted_files.MAX_THUMB_PIXELS:
            # the image was fine but its thumbnail did not fit: say so, rather than keep it as a plain file
            log.error("no room for a thumbnail in %s", thumb.parent)
            raise NoRoom(NO_ROOM_MESSAGE, "file")
        return
    info.is_image = True
    info.content_type = IMAGE_TYPES[head[0]]
    info.width, info.height = head[1], head[2]
