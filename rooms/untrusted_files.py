"""Work on uploaded files that may be hostile, bounded and away from the web process.

A 346 KB PNG can declare 118 million pixels; a 7.7 KB PDF can hold a content stream
that takes pypdf minutes. Anyone who may post can upload such a file, and the web
process serves everyone from one gevent worker, so decoding an image for its
thumbnail or reading a document's text for search is done here:

- in a child process (`python -m rooms.untrusted_files <task> ...`), which the
  caller waits for without holding the worker (under gevent, `subprocess` yields);
- with limits the child sets on itself before touching the file (resource.setrlimit):
  CPU seconds, address space, size of files written; and lower priority (nice);
- with a wall-clock deadline after which the parent kills it.

A file past any bound gets no thumbnail or no text (logged); the upload itself and the
post's indexing go on. Bounds: `limits()` (the app's FILE_WORK_SECONDS and
FILE_WORK_MEMORY_MB, for tests; defaults below). Image size is also checked from the
header before any child is started (MAX_THUMB_PIXELS).

This module imports neither Flask nor the image and document libraries at import
time: the child starts quickly and loads only what its task needs.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 10  # CPU seconds a child may use (its wall-clock deadline is a little longer)
MEMORY_MB = 768
MAX_THUMB_PIXELS = 40_000_000  # images declaring more get no thumbnail (a 40 MP RGBA image is 160 MB decoded)
THUMB_SIZE = (480, 480)
MAX_TEXT_CHARS = 200_000
MAX_PDF_PAGES = 200
MAX_DOCX_UNPACKED = 200 * 1024 * 1024


def limits() -> tuple[float, int]:
    """(CPU seconds, memory MB) for a child: the app's settings when there is an app."""
    try:
        from flask import current_app, has_app_context  # (optional: the child never has an app)
    except ImportError:  # pragma: no cover
        return SECONDS, MEMORY_MB
    if has_app_context():
        cfg = current_app.config
        return float(cfg.get("FILE_WORK_SECONDS", SECONDS)), int(cfg.get("FILE_WORK_MEMORY_MB", MEMORY_MB))
    return SECONDS, MEMORY_MB


def _run(task: str, *args: str) -> Optional[bytes]:
    """The child's standard output, or None when it failed or passed a bound."""
    seconds, memory = limits()
    cmd = [sys.executable, "-m", "rooms.untrusted_files", task, str(seconds), str(memory), *args]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}
    try:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except OSError as err:
        log.warning("could not start a child for %s: %s", task, err)
        return None
    try:
        out, err = proc.communicate(timeout=seconds * 2 + 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        log.warning("%s of %s stopped: over %s s", task, args[0] if args else "", seconds * 2 + 5)
        return None
    if proc.returncode != 0:
        why = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        log.warning("%s of %s gave up (%s)", task, args[0] if args else "", why[0][:200])
        return None
    return out


# -- what the web app asks -------------------------------------------------------------------------

def image_header(path: Path) -> Optional[tuple[str, int, int]]:
    """(format, width, height) read from the file's header only (nothing is decoded), or None."""
    from PIL import Image, UnidentifiedImageError  # (the parent's only use of Pillow: headers)

    try:
        with warnings.catch_warnings():  # (a bomb's header only warns: its size is what we check)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.format, img.size[0], img.size[1]
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def make_thumbnail(src: Path, dest: Path) -> bool:
    """Check the whole image and write its PNG thumbnail to `dest`, in a bounded child. False: no
    thumbnail (damaged, too many pixels, past a bound)."""
    head = image_header(src)
    if head is None or head[1] * head[2] > MAX_THUMB_PIXELS:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    try:
        if _run("thumb", str(src), str(tmp)) is None or not tmp.exists():
            return False
        os.replace(tmp, dest)
        return True
    finally:
        if tmp.exists():
            tmp.unlink()


def document_text(path: Path, kind: str) -> Optional[str]:
    """Plain text of a PDF or DOCX ("pdf"/"docx"), read in a bounded child (at most MAX_PDF_PAGES
    pages and MAX_TEXT_CHARS characters). None: damaged, or past a bound."""
    out = _run("text", str(path), kind)
    return None if out is None else out.decode("utf-8", "replace")[:MAX_TEXT_CHARS]


# -- the child ----------------------------------------------------------------------------------------

def _bound_self(seconds: float, memory_mb: int) -> None:
    import resource  # only in the bounded child: the web process never loads it

    cpu = max(1, int(seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(10)


def _thumb(src: str, dest: str) -> None:
    from PIL import Image  # only in the bounded child: the web process never loads it

    Image.MAX_IMAGE_PIXELS = MAX_THUMB_PIXELS
    with Image.open(src) as img:
        img.verify()
    with Image.open(src) as img:
        img.thumbnail(THUMB_SIZE)
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA")
        img.save(dest, "PNG")


def _pdf_text(path: str) -> str:
    from pypdf import PdfReader  # only in the bounded child: the web process never loads it

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(path)
    parts, size = [], 0
    for i, page in enumerate(reader.pages):
        if i >= MAX_PDF_PAGES or size > MAX_TEXT_CHARS:
            break
        t = page.extract_text() or ""
        parts.append(t)
        size += len(t)
    return "\n".join(parts)


def _docx_text(path: str) -> str:
    import zipfile  # only in the bounded child: the web process never loads it

    import docx  # only in the bounded child: the web process never loads it

    with zipfile.ZipFile(path) as zf:  # refuse zip bombs before python-docx unpacks
        if sum(i.file_size for i in zf.infolist()) > MAX_DOCX_UNPACKED:
            raise ValueError("unpacks to more than 200 MB")
    d = docx.Document(path)
    parts = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            parts.extend(c.text for c in row.cells)
    return "\n".join(parts)


def _main(argv: list[str]) -> int:
    task, seconds, memory = argv[0], float(argv[1]), int(argv[2])
    _bound_self(seconds, memory)
    if task == "thumb":
        _thumb(argv[3], argv[4])
    elif task == "text":
        text = _pdf_text(argv[3]) if argv[4] == "pdf" else _docx_text(argv[3])
        sys.stdout.buffer.write(text[:MAX_TEXT_CHARS].encode("utf-8", "replace"))
    else:
        raise SystemExit(f"unknown task {task!r}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
