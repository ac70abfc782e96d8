"""Attachment files: stored once by SHA-256 under the data folder, never by
their uploaded name; images get a small PNG thumbnail, made by Pillow in a
bounded child process (rooms/untrusted_files.py): an image declaring more than
MAX_THUMB_PIXELS pixels, or one the child cannot finish within its bounds, is
kept as a plain file (a download link, no thumbnail)."""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from flask import current_app
from collab import validate
from collab.errors import Invalid, TooLarge
from rooms import untrusted_files

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
    """Copy an upload into the store, refusing it past the size limit."""
    limit = max_bytes()
    tmp_dir = _root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(1024 * 256):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"Attachments may be at most {current_app.config['MAX_UPLOAD_MB']} MB.", "file")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Invalid("The attached file is empty.", "file")
        sha = digest.hexdigest()
        dest = blob_path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            os.unlink(tmp_name)
        else:
            os.replace(tmp_name, dest)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    info = StoredFile(sha256=sha, filename=safe_filename(filename), content_type="application/octet-stream",
                      size=size, is_image=False)
    _inspect_image(info)
    return info


def _inspect_image(info: StoredFile) -> None:
    """An image of a known format whose thumbnail could be made is shown as an image; anything else
    (too many pixels, damaged, past the child's bounds) is a plain file."""
    path = blob_path(info.sha256)
    head = untrusted_files.image_header(path)
    if head is None or head[0] not in IMAGE_TYPES:
        return
    thumb = thumb_path(info.sha256)
    if not thumb.exists() and not untrusted_files.make_thumbnail(path, thumb):
        return
    info.is_image = True
    info.content_type = IMAGE_TYPES[head[0]]
    info.width, info.height = head[1], head[2]
