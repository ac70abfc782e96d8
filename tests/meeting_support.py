"""What the meeting tests share (tests/test_meeting_*.py): a real PDF, a converted deck, a
scheduled meeting with a chair and two members, a signed-in socket that joined a meeting, and
the two fixtures every one of those files uses (import them by name: pytest finds them there)."""
from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from collab.extensions import db
from collab import tasks
from rooms.meetings import conversion, decks, schedule
from rooms.meetings.models import Deck
from tests.live_support import login_client, sock


@pytest.fixture
def app_config():
    return {"LIVE_PRESENCE_DELAY": 0.02}


@pytest.fixture(autouse=True)
def settle_live(app):
    """Let background tasks (slide drawing, presence) finish before the app is torn down."""
    yield
    tasks.settle(app)


def pdf_bytes(pages: int = 3) -> bytes:
    """A real PDF with `pages` pages, each saying its number (fpdf2)."""
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("helvetica", size=48)
    for i in range(pages):
        doc.add_page()
        doc.cell(text=f"Slide {i + 1}")
    return bytes(doc.output())


def ready_deck(chair, meeting, pages: int = 3) -> Deck:
    deck = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(pages)), "plenary.pdf", background=False)
    assert conversion.convert(deck.id) == "ready"
    return db.session.get(Deck, deck.id, populate_existing=True)


def setup_meeting(make, *, starts_at: str = "2030-01-10T10:00:00Z", **kw):
    """A chair and two members in a room, and a meeting scheduled at `starts_at` (by default years
    ahead, so it records no attendance: pass `soon()` for one that does)."""
    chair, ann, bob = make.user(name="Chair Person"), make.user(name="Ann Able"), make.user(name="Bob Baker")
    room = make.room(chair, members=[ann, bob])
    meeting = schedule.schedule_meeting(chair, room.id, title="IAG plenary", agenda="1. Welcome\n2. Stop and search",
                                        starts_at=starts_at, **kw)
    return chair, ann, bob, room, meeting


def soon(minutes: int = 5) -> str:
    """A start time a few minutes ahead: the meeting is in its time window, so it records attendance."""
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def joined(app, user, meeting_id):
    c = login_client(app, user)
    sc = sock(app, c)
    ack = sc.emit("meeting_join", {"meeting_id": meeting_id}, callback=True)
    assert ack["ok"], ack
    return sc, ack["state"]


def last_state(sc) -> dict | None:
    states = [e["args"][0] for e in sc.get_received() if e["name"] == "meeting.state"]
    return states[-1] if states else None


def processes_with(fragment: str) -> list[str]:
    """Command lines of running processes that mention `fragment` (a deck's work folder, a fake
    converter's folder), the test runner itself aside."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd and "pytest" not in cmd.split(" ", 1)[0]:
            out.append(cmd)
    return out


def gone(fragment: str) -> bool:
    """Wait (generously) until no process mentions `fragment`: a killed process may take a moment to be reaped."""
    deadline = time.monotonic() + 30
    while processes_with(fragment) and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes_with(fragment) == []


def finished_recording(meeting, started_by, *, seconds: float = 1.0):
    """A recording of `meeting` that is ready to replay, for the authorization and artifact walks (which
    ask who may read it, not how it was made: tests/test_recordings.py records one with a real worker).
    Its composed file is a real WebM: `seconds` of silence encoded with Opus."""
    from fractions import Fraction

    import av

    from rooms.meetings import recording_processing
    from rooms.meetings.recording_models import Recording

    now = datetime.now(UTC).replace(tzinfo=None)
    db.begin_write()
    rec = Recording(meeting_id=meeting.id, started_by_id=started_by.id, started_at=now - timedelta(seconds=seconds),
                    ended_at=now, status="ready", progress=100, duration=seconds)
    db.session.add(rec)
    db.session.commit()
    path = recording_processing.composed_path(rec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000, layout="stereo")
        for i in range(int(seconds * 50)):
            frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
            frame.planes[0].update(bytes(960 * 4))
            frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, Fraction(1, 48000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    db.begin_write()
    rec = db.session.get(Recording, rec.id)
    rec.size = path.stat().st_size
    db.session.commit()
    return rec
