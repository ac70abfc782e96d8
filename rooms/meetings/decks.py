"""Pre-reads of a meeting: slide decks and papers, attached by the chair and
served to the meeting.

An upload is stored like any attachment (by SHA-256, rooms/attachments.py),
its first bytes checked against its kind, and then converted into slide images
in the background (rooms/meetings/conversion.py). Progress (pages done of
pages) is part of the meeting's state, sent live to the meeting page.

Files and images are served like attachments (rooms.policy.may_download_deck):
404 to people who may not read the meeting's room, 403 to a guest in a room
labelled above the lowest label (who still sees that the deck exists). The
slide titles read while converting are text of the deck, served by the same
rule (rooms.policy.may_read_slide_titles) and never in the meeting's state.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from auth.models import User
from collab import validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import attachments, policy
from rooms.meetings import access, conversion, state
from rooms.meetings.models import Deck, MeetingPlan

KINDS = {"pdf", *conversion.OFFICE}
ZIP_MAGIC = b"PK\x03\x04"                          # .pptx .docx .odp .odt are ZIP packages
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"    # .ppt .doc are OLE2 compound files
GUEST_KEPT_OUT = "Guests cannot download papers or see slides in rooms with this confidentiality label."


def _kind(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ext if ext in KINDS else ""


# -- writing ------------------------------------------------------------------------

def upload(actor: User, meeting_id: object, stream: BinaryIO | None, filename: object, *,
           background: bool = True) -> Deck:
    """Attach a pre-read. The chair attaches; conversion starts in the background."""
    meeting = access.get_writable(actor, meeting_id)
    if not access.is_chair(actor, meeting):
        raise Forbidden("Only the chair can attach decks and papers to this meeting.")
    if stream is None:
        raise Invalid("Choose a file to attach.", "file")
    name = attachments.safe_filename(filename)
    kind = _kind(name)
    if not kind:
        raise Invalid("Attach a PDF, or a PowerPoint, Word or OpenDocument file (.pptx, .odp, .docx, .odt). "
                      f"“{name}” is not one of these.", "file")
    _check_magic(stream, name, kind)
    stored = attachments.store(stream, name)
    db.begin_write()
    now = utcnow()
    deck = Deck(meeting_id=meeting.id, filename=stored.filename, sha256=stored.sha256, size=stored.size, kind=kind,
                status="queued", pages=0, done=0, message="", uploaded_by_id=actor.id, created_at=now,
                worker=conversion.worker_id(), attempts=0, updated_at=now)
    db.session.add(deck)
    db.session.flush()
    state.publish(meeting)
    db.session.commit()
    if background:
        conversion.start(current_app._get_current_object(), deck.id)
    return deck


def _check_magic(stream: BinaryIO, name: str, kind: str) -> None:
    """A file whose first bytes are not those of its kind is refused before anything is stored."""
    try:
        head = stream.read(1024)   # a PDF may have a little before its "%PDF-" (the format allows 1 kB)
        stream.seek(0)
    except (OSError, ValueError):
        return   # not seekable: the conversion will say what is wrong
    if kind == "pdf":
        ok, what = b"%PDF-" in head, "PDF"
    elif kind in ("ppt", "doc"):
        ok, what = head[:8] == OLE_MAGIC, conversion.OFFICE[kind]
    else:
        ok, what = head[:4] == ZIP_MAGIC, conversion.OFFICE[kind]
    if not head:
        raise Invalid(f"“{name}” is empty.", "file")
    if not ok:
        raise Invalid(f"“{name}” is not a readable {what} file (it may be damaged, or renamed from another "
                      "kind of file). Nothing was attached.", "file")


def remove(actor: User, meeting_id: object, deck_id: object) -> None:
    meeting = access.get_writable(actor, meeting_id)
    if not access.is_chair(actor, meeting):
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
    shutil.rmtree(conversion.deck_dir(did), ignore_errors=True)


# -- reading ----------------------------------------------------------------------------

def get_deck(actor: User, meeting_id: object, deck_id: object) -> Deck:
    """A deck of a meeting `actor` may see (its name, status and pages; not its file)."""
    return _deck_of(access.get_meeting(actor, meeting_id), deck_id)


def _deck_of(meeting, deck_id: object) -> Deck:
    did = validate.int_id(deck_id, "deck_id")
    deck = db.session.get(Deck, did)
    if deck is None or deck.meeting_id != meeting.id:
        raise NotFound("Deck not found.")
    return deck


def _downloadable(actor: User, meeting_id: object, deck_id: object) -> Deck:
    """A deck whose file and slide images `actor` may have (rooms.policy.may_download_deck): a guest in a
    room labelled above the lowest label sees that the deck exists (get_deck) but gets neither."""
    meeting = access.get_meeting(actor, meeting_id)
    deck = _deck_of(meeting, deck_id)
    if not policy.may_download_deck(actor, meeting):
        raise Forbidden(GUEST_KEPT_OUT)
    return deck


def page_path(actor: User, meeting_id: object, deck_id: object, page: object) -> Path:
    deck = _downloadable(actor, meeting_id, deck_id)
    n = validate.int_id(page, "page")
    if deck.status != "ready" or not 1 <= n <= deck.pages:
        raise NotFound("Slide not found.")
    path = conversion.deck_dir(deck.id) / f"{n}.png"
    if not path.exists():
        raise NotFound("Slide not found.")
    return path


def slide_titles(actor: User, meeting_id: object, deck_id: object) -> list[str]:
    """Each slide's title, in page order ("" for a slide without one); an empty list for a deck converted
    before titles were read (its slides are then announced by number only)."""
    meeting = access.get_meeting(actor, meeting_id)
    deck = _deck_of(meeting, deck_id)
    if not policy.may_read_slide_titles(actor, meeting):
        raise Forbidden(GUEST_KEPT_OUT)
    if deck.status != "ready":
        raise NotFound("The slides are not ready.")
    try:
        titles = json.loads(deck.page_titles) if deck.page_titles else []
    except ValueError:
        titles = []
    if not isinstance(titles, list):
        return []
    return [t if isinstance(t, str) else "" for t in titles][:deck.pages]


def file_path(actor: User, meeting_id: object, deck_id: object) -> tuple[Deck, Path]:
    deck = _downloadable(actor, meeting_id, deck_id)
    path = attachments.blob_path(deck.sha256)
    if not path.exists():
        raise NotFound("The file is missing.")
    return deck, path


def tmp_name() -> str:
    return uuid.uuid4().hex
