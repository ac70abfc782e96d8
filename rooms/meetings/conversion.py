"""Turning a meeting's deck into slide images, in the background (the deck was
uploaded through rooms/meetings/decks.py).

A PDF is drawn page by page to PNG images by
`python -m rooms.meetings.render` in a child process; PPTX/ODP/DOCX/ODT (and the
older PPT/DOC) are first turned into a PDF by LibreOffice (`soffice --headless`)
when it is installed, otherwise offered as a download with a note. Each child
process (with everything it started: its own process group) is killed when it
runs past its time limit; each LibreOffice run has a profile folder of its own,
so conversions running side by side never collide. Images are written to a
temporary folder and moved into <data dir>/slides/<deck id>/ only when every
page is done, so a failure leaves nothing half-made. Progress (pages done of
pages) is part of the meeting's state, sent live to the meeting page. The same
child reads each page's title (the first line of its text, render.page_title),
kept on the deck (`page_titles`) and served like the slide images (decks.py).

A conversion is a job recorded on the deck: `worker` names the process doing it
(host, pid and that process's start time) and `updated_at` is refreshed while it
runs. A deck left "queued" or "converting" by a server that stopped is found by
`resume_stuck` (run when the server's meeting jobs start and every minute after,
or by `flask --app wsgi meetings jobs`): it is converted again, or, after
MAX_ATTEMPTS interrupted tries, failed with a message.

An uploaded office document is untrusted: LibreOffice reads a copy of it in a
folder of its own, with links blocked and inside a sandbox with no network and no
view of the data folder (rooms/meetings/convert_sandbox.py); where no sandbox can
run, the file is offered as a download instead.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select, update

from collab import metrics, validate
from collab.db import utcnow
from collab.extensions import db, socketio
from rooms import attachments
from rooms.meetings import convert_sandbox, state
from rooms.meetings.render import clean_title
from rooms.meetings.models import Deck, Meeting

log = logging.getLogger(__name__)

MAX_PAGES = 300
PAGE_WIDTH = 1600           # pixels: sharp on a projector, ~100-300 kB a slide
RENDER_TIMEOUT = 300        # seconds for drawing every page of one PDF
CONVERT_TIMEOUT = 180       # seconds for LibreOffice to turn one file into a PDF
RENDERER = [sys.executable, "-m", "rooms.meetings.render"]   # the child that draws a PDF's pages (render.py)
PROGRESS_EVERY = 0.5        # seconds between progress broadcasts
HEARTBEAT = 30              # seconds between "still converting" marks on the deck while LibreOffice runs
CONVERT_SLOTS = 2           # conversions one process runs at once (the others wait their turn)
DEAD_AFTER = timedelta(seconds=CONVERT_TIMEOUT + RENDER_TIMEOUT + 120)  # a job silent this long has died
MAX_ATTEMPTS = 3            # conversions started for one deck before it is failed as interrupted
ACTIVE = ("queued", "converting")
OFFICE = {"pptx": "PowerPoint", "ppt": "PowerPoint", "odp": "OpenDocument presentation", "docx": "Word",
          "doc": "Word", "odt": "OpenDocument text"}
# LibreOffice's import filter for each kind: a damaged file then fails to load, instead of
# being read as plain text and "converted" into pages of gibberish.
IN_FILTER = {"pptx": "Impress MS PowerPoint 2007 XML", "ppt": "MS PowerPoint 97", "odp": "impress8",
             "docx": "MS Word 2007 XML", "doc": "MS Word 97", "odt": "writer8"}
INTERRUPTED = ("Preparing the slides was interrupted {n} times (the server restarted). "
               "Attach the file again, or attach a PDF.")
SOFFICE_NOTE = ("This {what} file is offered as a download: slides are made from it only when LibreOffice is "
                "installed on the server (see README, “Meetings”). Attach a PDF to page through it here.")




def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def slides_root() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "slides"


def deck_dir(deck_id: int) -> Path:
    return slides_root() / str(deck_id)


# -- converting ------------------------------------------------------------------------

_slots = threading.BoundedSemaphore(CONVERT_SLOTS)


def _start_ticks(pid: int) -> str | None:
    """When a process started (clock ticks since boot, /proc/<pid>/stat field 22): with the pid,
    it names one process even after the pid is reused. None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid()) or '?'}"[:120]


def worker_alive(worker: str) -> bool | None:
    """Is the process that took a job still running? None when it cannot be told from here
    (another host, or no /proc): then only the age of the job's last report counts."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or not validate.digits(parts[1]):
        return None
    host, pid, ticks = parts
    if host != socket.gethostname() or ticks == "?":
        return None
    if int(pid) == os.getpid():
        return ticks == _start_ticks(os.getpid())
    return _start_ticks(int(pid)) == ticks


def start(app: Flask, deck_id: int):
    _mine.add(deck_id)   # at once, so the jobs loop never takes it for a stuck one meanwhile
    return socketio.start_background_task(_convert_in_context, app, deck_id)


def _convert_in_context(app: Flask, deck_id: int) -> None:
    with app.app_context():
        _mine.add(deck_id)
        try:
            while not _slots.acquire(timeout=HEARTBEAT):   # wait for a free slot, showing we are alive
                _touch(deck_id)
            try:
                convert(deck_id)
            finally:
                _slots.release()
        except Exception:
            log.exception("deck %s: conversion failed", deck_id)
            _finish(deck_id, "failed", "The file could not be converted (an error on the server). "
                                       "Try again or attach a PDF.")
        finally:
            _mine.discard(deck_id)
            db.session.remove()


def _update(deck_id: int, *, publish: bool = True, **values) -> None:
    db.begin_write()
    deck = db.session.get(Deck, deck_id)
    if deck is None:   # removed meanwhile
        db.session.rollback()
        return
    for k, v in values.items():
        setattr(deck, k, v)
    deck.updated_at = utcnow()
    if publish:
        state.publish(db.session.get(Meeting, deck.meeting_id))
    db.session.commit()


def _touch(deck_id: int) -> None:
    _update(deck_id, publish=False)


def _finish(deck_id: int, status: str, message: str = "", **values) -> None:
    _update(deck_id, status=status, message=message[:500], **values)
    metrics.DECK_CONVERSIONS.labels(result=status).inc()


def _claim(deck_id: int) -> bool:
    """Take a queued deck for conversion in this process (one conditional UPDATE, so a deck
    is converted by one process only)."""
    db.begin_write()
    claimed = db.session.execute(
        update(Deck).where(Deck.id == deck_id, Deck.status == "queued")
        .values(status="converting", worker=worker_id(), attempts=Deck.attempts + 1, updated_at=utcnow(),
                done=0, pages=0, message="", page_titles=None)).rowcount
    if claimed:
        deck = db.session.get(Deck, deck_id, populate_existing=True)
        state.publish(db.session.get(Meeting, deck.meeting_id))
    db.session.commit()
    return bool(claimed)


def convert(deck_id: int) -> str:
    """Convert one queued deck now (in this thread). Returns the final status (or the deck's
    status untouched when it is not queued: converted, failed, or taken by another process)."""
    deck = db.session.get(Deck, deck_id)
    if deck is None:
        return "gone"
    kind, sha = deck.kind, deck.sha256
    db.session.rollback()
    if not _claim(deck_id):
        deck = db.session.get(Deck, deck_id)
        return deck.status if deck is not None else "gone"
    _mine.add(deck_id)
    try:
        return _convert_claimed(deck_id, kind, sha)
    finally:
        _mine.discard(deck_id)


def _convert_claimed(deck_id: int, kind: str, sha: str) -> str:
    source = attachments.blob_path(sha)
    root = slides_root()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".work-{deck_id}-", dir=root))
    try:
        if kind != "pdf":
            exe = soffice()
            if exe is None:
                _finish(deck_id, "download", SOFFICE_NOTE.format(what=OFFICE[kind]))
                return "download"
            pdf = _to_pdf(exe, source, kind, work, deck_id)
            if isinstance(pdf, Refused):
                _finish(deck_id, "download", str(pdf))
                return "download"
            if isinstance(pdf, str):
                _finish(deck_id, "failed", pdf)
                return "failed"
        else:
            pdf = source
        out = work / "pages"
        titles: dict[int, str] = {}
        result = _render(deck_id, pdf, out, titles)
        if result is not None:
            _finish(deck_id, "failed", result, pages=0, done=0)
            return "failed"
        n = len(list(out.glob("*.png")))
        db.session.rollback()
        if db.session.get(Deck, deck_id, populate_existing=True) is None:   # removed while it was drawn
            return "gone"
        final = deck_dir(deck_id)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(out, final)
        _finish(deck_id, "ready", "", pages=n, done=n,
                page_titles=json.dumps([titles.get(i, "") for i in range(1, n + 1)]))
        return "ready"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a child started with start_new_session=True and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


class Refused(str):
    """The conversion was not tried (no sandbox here): the file is offered as a download, with this note."""


def _to_pdf(exe: str, source: Path, kind: str, work: Path, deck_id: int | None = None) -> Path | str:
    """LibreOffice headless on a copy of the file, isolated (rooms/meetings/convert_sandbox.py: links blocked,
    no network, no view of the data folder), with a profile folder of its own: the file as a PDF in `work`,
    or a message saying why not."""
    folder = convert_sandbox.new_folder(deck_id)
    try:
        shutil.copyfile(source, folder / f"deck.{kind}")
        try:
            plan = convert_sandbox.plan(
                exe, lambda inside, profile: [
                    f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--invisible", "--norestore",
                    "--nolockcheck", "--nodefault", f"--infilter={IN_FILTER[kind]}",
                    "--convert-to", "pdf", "--outdir", inside, f"{inside}/deck.{kind}"],
                folder, Path(current_app.config["DATA_DIR"]), current_app.config.get("DECK_SANDBOX", "auto"))
        except convert_sandbox.SandboxRefused as refused:
            return Refused(str(refused))
        failed = _run_converter(plan.cmd, plan.env, folder, kind, deck_id)
        if failed:
            return failed
        pdf = folder / "deck.pdf"
        if not pdf.is_file() or pdf.stat().st_size == 0:
            return (f"LibreOffice could not read this {OFFICE[kind]} file (it may be damaged, protected by a "
                    f"password, or not really a .{kind} file). Save it again, or attach a PDF.")
        shutil.copyfile(pdf, work / "deck.pdf")
        return work / "deck.pdf"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_converter(cmd: list[str], env: dict[str, str], folder: Path, kind: str, deck_id: int | None) -> str | None:
    """Run the converter in a process group of its own, killed with everything it started at the time limit.
    None when it ended by itself having written the PDF, else the message."""
    with tempfile.TemporaryFile() as said:   # what it says, for the log if it fails (outside its folder)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=said, stderr=subprocess.STDOUT,
                                cwd=folder, env=env, start_new_session=True)
        if not _wait_or_kill(proc, deck_id):
            return (f"Converting the {OFFICE[kind]} file took longer than {CONVERT_TIMEOUT} seconds and was "
                    "stopped. Save it as a PDF and attach that.")
        if proc.returncode == 0:
            return None
        said.seek(0)
        text = said.read()[-800:].decode("utf-8", "replace")
    pdf = folder / "deck.pdf"
    if pdf.is_file() and pdf.stat().st_size > 0 and pdf.read_bytes()[:5] == b"%PDF-":
        # LibreOffice sometimes crashes while shutting down after writing the whole PDF; drawing the pages
        # (a separate, bounded step) reads it and refuses it if it is not whole.
        log.warning("LibreOffice exited with %s after writing the PDF of deck %s: %s", proc.returncode, deck_id, text)
        return None
    log.warning("LibreOffice exited with %s on deck %s: %s", proc.returncode, deck_id, text)
    return (f"LibreOffice could not read this {OFFICE[kind]} file (it may be damaged, protected by a "
            f"password, or not really a .{kind} file). Save it again, or attach a PDF.")


def _wait_or_kill(proc: subprocess.Popen, deck_id: int | None) -> bool:
    """Wait for the converter, keeping the deck's claim fresh; False if it was killed at the time limit.
    Whatever it started in its process group is ended either way."""
    deadline = time.monotonic() + CONVERT_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill_group(proc)
                return False
            try:
                proc.wait(timeout=min(left, HEARTBEAT))
                return True
            except subprocess.TimeoutExpired:
                if deck_id is not None:
                    _touch(deck_id)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        else:   # LibreOffice may leave helpers behind in its group: end them too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _render(deck_id: int, pdf: Path, out: Path, titles: dict[int, str]) -> str | None:
    """Draw the pages in a child process, reporting progress and putting each page's title into `titles`;
    None on success, else the message."""
    cmd = [*RENDERER, str(pdf), str(out), str(MAX_PAGES), str(PAGE_WIDTH)]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root,
                            start_new_session=True)
    killed = {"yes": False}

    def kill():
        killed["yes"] = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

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
            elif word == "title":
                number, _, said = rest.partition(" ")
                if validate.digits(number):
                    titles[int(number)] = _title(said)
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
            _kill_group(proc)
    if killed["yes"]:
        return f"Drawing the slides took longer than {RENDER_TIMEOUT} seconds and was stopped."
    if error:
        return error
    if proc.returncode != 0:
        return "The file could not be drawn as slides (it may be damaged)."
    return None


def _title(said: str) -> str:
    """A title as the child wrote it (a JSON string), checked again here."""
    try:
        return clean_title(json.loads(said))
    except ValueError:
        return ""


# -- decks a stopped server left behind -------------------------------------------------------

def resume_stuck(app: Flask | None = None, *, now: datetime | None = None, background: bool = True) -> list[int]:
    """Find decks left "queued" or "converting" by a process that is gone (or silent for
    DEAD_AFTER) and convert them again, or fail them with a message after MAX_ATTEMPTS tries.
    Each deck is taken with one conditional UPDATE, so one process resumes it. Returns the
    ids of the decks it queued again."""
    now = now or utcnow()
    rows = db.session.execute(select(Deck.id, Deck.status, Deck.worker, Deck.updated_at, Deck.attempts)
                              .where(Deck.status.in_(ACTIVE))).all()
    db.session.rollback()
    me = worker_id()
    again: list[int] = []
    for did, status, worker, seen, attempts in rows:
        if worker == me and did in _mine:
            continue
        alive = worker_alive(worker) if worker else None
        if alive is True and worker != me:
            continue
        if alive is None and seen is not None and now - seen < DEAD_AFTER:
            continue
        give_up = attempts >= MAX_ATTEMPTS
        values = (dict(status="failed", message=INTERRUPTED.format(n=attempts), pages=0, done=0)
                  if give_up else dict(status="queued", message="", pages=0, done=0, page_titles=None))
        db.begin_write()
        q = update(Deck).where(Deck.id == did, Deck.status == status, Deck.worker == worker)
        q = q.where(Deck.updated_at.is_(None)) if seen is None else q.where(Deck.updated_at == seen)
        taken = db.session.execute(q.values(worker=me, updated_at=now, **values)).rowcount
        if taken:
            deck = db.session.get(Deck, did, populate_existing=True)
            state.publish(db.session.get(Meeting, deck.meeting_id))
        db.session.commit()
        if not taken:
            continue
        for left in [*slides_root().glob(f".work-{did}-*"), *convert_sandbox.left_behind(did)]:
            shutil.rmtree(left, ignore_errors=True)
        log.warning("deck %s: %s after an interrupted conversion", did, "failed" if give_up else "queued again")
        if give_up:
            continue
        again.append(did)
        if background:
            start(app or current_app._get_current_object(), did)
        else:
            convert(did)
    return again


_mine: set[int] = set()   # decks whose conversion runs in this process (not stuck, whatever their age)
