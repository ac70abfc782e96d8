"""Pre-reads of a meeting: slide decks and papers.

An upload is stored like any attachment (by SHA-256, rooms/attachments.py),
then converted in the background: a PDF is drawn page by page to PNG images by
`python -m rooms.meetings.render` in a child process; PPTX/ODP/DOCX/ODT (and the
older PPT/DOC) are first turned into a PDF by LibreOffice (`soffice --headless`)
when it is installed, otherwise offered as a download with a note. Each child
process is killed when it runs past its time limit. Images are written to a
temporary folder and moved into <data dir>/slides/<deck id>/ only when every
page is done, so a failure leaves nothing half-made. Progress (pages done of
pages) is part of the meeting's state, sent live to the meeting page.

Images are served only to people who may read the meeting's room (404 to
everyone else), like every attachment.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from flask import Flask, current_app

from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import attachments
from rooms.meetings import schedule, state
from rooms.meetings.hybrid_models import Deck, MeetingPlan

log = logging.getLogger(__name__)

MAX_PAGES = 300
PAGE_WIDTH = 1600           # pixels: sharp on a projector, ~100-300 kB a slide
RENDER_TIMEOUT = 300        # seconds for drawing every page of one PDF
CONVERT_TIMEOUT = 180       # seconds for LibreOffice to turn one file into a PDF
PROGRESS_EVERY = 0.5        # seconds between progress broadcasts
OFFICE = {"pptx": "PowerPoint", "ppt": "PowerPoint", "odp": "OpenDocument presentation", "docx": "Word",
          "doc": "Word", "odt": "OpenDocument text"}
KINDS = {"pdf", *OFFICE}
SOFFICE_NOTE = ("This {what} file is offered as a download: slides are made from it only when LibreOffice is "
                "installed on the server (see README, “Meetings”). Attach a PDF to page through it here.")


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def slides_root() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "slides"


def deck_dir(deck_id: int) -> Path:
    return slides_root() / str(deck_id)


def _kind(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ext if ext in KINDS else ""


# -- writing ------------------------------------------------------------------------

def upload(actor: User, meeting_id: object, stream: BinaryIO | None, filename: object, *,
           background: bool = True) -> Deck:
    """Attach a pre-read. The chair attaches; conversion starts in the background."""
    meeting = state._meeting(actor, meeting_id)
    if not schedule.is_chair(actor, meeting):
        raise Forbidden("Only the chair can attach decks and papers to this meeting.")
    if stream is None:
        raise Invalid("Choose a file to attach.", "file")
    name = attachments.safe_filename(filename)
    kind = _kind(name)
    if not kind:
        raise Invalid("Attach a PDF, or a PowerPoint, Word or OpenDocument file (.pptx, .odp, .docx, .odt). "
                      f"“{name}” is not one of these.", "file")
    stored = attachments.store(stream, name)
    db.begin_write()
    deck = Deck(meeting_id=meeting.id, filename=stored.filename, sha256=stored.sha256, size=stored.size, kind=kind,
                status="queued", pages=0, done=0, message="", uploaded_by_id=actor.id, created_at=utcnow())
    db.session.add(deck)
    db.session.flush()
    state.publish(meeting)
    db.session.commit()
    if background:
        start(current_app._get_current_object(), deck.id)
    return deck


def remove(actor: User, meeting_id: object, deck_id: object) -> None:
    meeting = state._meeting(actor, meeting_id)
    if not schedule.is_chair(actor, meeting):
        raise Forbidden("Only the chair can remove decks.")
    did = validate.int_id(deck_id, "deck_id")
    deck = db.session.get(Deck, did)
    if deck is None or deck.meeting_id != meeting.id:
        raise NotFound("Deck not found.")
    db.begin_write()
    plan = db.session.get(MeetingPlan, meeting.id)
    if plan is not None and plan.deck_id == deck.id:
        plan.deck_id, plan.page = None, 1
    db.session.delete(db.session.get(Deck, did))
    state.publish(meeting)
    db.session.commit()
    shutil.rmtree(deck_dir(did), ignore_errors=True)


# -- converting ------------------------------------------------------------------------

_running: dict[int, threading.Thread] = {}


def start(app: Flask, deck_id: int):
    from collab.extensions import socketio

    return socketio.start_background_task(_convert_in_context, app, deck_id)


def _convert_in_context(app: Flask, deck_id: int) -> None:
    with app.app_context():
        try:
            convert(deck_id)
        except Exception:
            log.exception("deck %s: conversion failed", deck_id)
            _finish(deck_id, "failed", "The file could not be converted (an error on the server). "
                                       "Try again or attach a PDF.")
        finally:
            db.session.remove()


def _update(deck_id: int, *, publish: bool = True, **values) -> None:
    db.begin_write()
    deck = db.session.get(Deck, deck_id)
    if deck is None:   # removed meanwhile
        db.session.rollback()
        return
    for k, v in values.items():
        setattr(deck, k, v)
    if publish:
        from rooms.meetings.models import Meeting

        state.publish(db.session.get(Meeting, deck.meeting_id))
    db.session.commit()


def _finish(deck_id: int, status: str, message: str = "", **values) -> None:
    _update(deck_id, status=status, message=message[:500], **values)


def convert(deck_id: int) -> str:
    """Convert one deck now (in this thread). Returns the final status."""
    deck = db.session.get(Deck, deck_id)
    if deck is None:
        return "gone"
    kind, sha = deck.kind, deck.sha256
    db.session.rollback()
    source = attachments.blob_path(sha)
    root = slides_root()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{deck_id}-", dir=root))
    try:
        _update(deck_id, status="converting", done=0, pages=0, message="")
        if kind != "pdf":
            exe = soffice()
            if exe is None:
                _finish(deck_id, "download", SOFFICE_NOTE.format(what=OFFICE[kind]))
                return "download"
            pdf = _to_pdf(exe, source, kind, work)
            if isinstance(pdf, str):
                _finish(deck_id, "failed", pdf)
                return "failed"
        else:
            pdf = source
        out = work / "pages"
        result = _render(deck_id, pdf, out)
        if result is not None:
            _finish(deck_id, "failed", result, pages=0, done=0)
            return "failed"
        n = len(list(out.glob("*.png")))
        final = deck_dir(deck_id)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(out, final)
        _finish(deck_id, "ready", "", pages=n, done=n)
        return "ready"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _to_pdf(exe: str, source: Path, kind: str, work: Path) -> Path | str:
    """LibreOffice headless: the file as a PDF, or a message saying why not."""
    src = work / f"deck.{kind}"
    shutil.copyfile(source, src)
    profile = work / "profile"
    cmd = [exe, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore", "--nolockcheck",
           "--convert-to", "pdf", "--outdir", str(work), str(src)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=CONVERT_TIMEOUT, cwd=work,
                              env=dict(os.environ, HOME=str(work)), start_new_session=True, check=False)
    except subprocess.TimeoutExpired:
        return (f"Converting the {OFFICE[kind]} file took longer than {CONVERT_TIMEOUT} seconds and was stopped. "
                "Save it as a PDF and attach that.")
    pdf = work / "deck.pdf"
    if proc.returncode != 0 or not pdf.exists():
        return f"LibreOffice could not read this {OFFICE[kind]} file (it may be damaged or protected)."
    return pdf


def _render(deck_id: int, pdf: Path, out: Path) -> str | None:
    """Draw the pages in a child process, reporting progress; None on success, else the message."""
    cmd = [sys.executable, "-m", "rooms.meetings.render", str(pdf), str(out), str(MAX_PAGES), str(PAGE_WIDTH)]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root,
                            start_new_session=True)
    killed = {"yes": False}

    def kill():
        killed["yes"] = True
        proc.kill()

    timer = threading.Timer(RENDER_TIMEOUT, kill)
    timer.daemon = True
    timer.start()
    error = None
    last = 0.0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "pages":
                _update(deck_id, pages=int(rest), done=0)
            elif word == "page":
                if time.monotonic() - last > PROGRESS_EVERY:
                    last = time.monotonic()
                    _update(deck_id, done=int(rest))
            elif word == "error":
                error = rest.partition(" ")[2]
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if killed["yes"]:
        return f"Drawing the slides took longer than {RENDER_TIMEOUT} seconds and was stopped."
    if error:
        return error
    if proc.returncode != 0:
        return "The file could not be drawn as slides (it may be damaged)."
    return None


# -- reading ----------------------------------------------------------------------------

def get_deck(actor: User, meeting_id: object, deck_id: object) -> Deck:
    meeting = state._meeting(actor, meeting_id)
    did = validate.int_id(deck_id, "deck_id")
    deck = db.session.get(Deck, did)
    if deck is None or deck.meeting_id != meeting.id:
        raise NotFound("Deck not found.")
    return deck


def page_path(actor: User, meeting_id: object, deck_id: object, page: object) -> Path:
    deck = get_deck(actor, meeting_id, deck_id)
    n = validate.int_id(page, "page")
    if deck.status != "ready" or not 1 <= n <= deck.pages:
        raise NotFound("Slide not found.")
    path = deck_dir(deck.id) / f"{n}.png"
    if not path.exists():
        raise NotFound("Slide not found.")
    return path


def file_path(actor: User, meeting_id: object, deck_id: object) -> tuple[Deck, Path]:
    deck = get_deck(actor, meeting_id, deck_id)
    path = attachments.blob_path(deck.sha256)
    if not path.exists():
        raise NotFound("The file is missing.")
    return deck, path


def tmp_name() -> str:
    return uuid.uuid4().hex
