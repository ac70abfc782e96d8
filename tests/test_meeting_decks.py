"""Pre-read decks of a meeting (issue 6): PDFs drawn as slides for those who may have them,
files that are not what they say refused, damaged and oversized ones failed cleanly, office
files converted by LibreOffice side by side, progress sent live."""
from __future__ import annotations

import io
import json

import pytest

from collab import tasks
from collab.errors import Forbidden, Invalid
from collab.extensions import db
from rooms import services as room_services
from rooms import trust_settings
from rooms.meetings import conversion, decks, state
from rooms.meetings.models import Deck
from tests.conftest import bearer
from tests.live_support import login_client
from tests.meeting_support import (  # noqa: F401  (app_config, settle_live: fixtures)
    app_config,
    gone,
    processes_with,
    joined,
    pdf_bytes,
    ready_deck,
    settle_live,
    setup_meeting,
)

# -- decks ---------------------------------------------------------------------------------------------------

def test_pdf_deck_renders_pages_served_to_members_only(app, make):
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=3)
    assert (deck.status, deck.pages, deck.done) == ("ready", 3, 3)
    c = login_client(app, ann)
    r = c.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/2.png")
    assert r.status_code == 200 and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/4.png").status_code == 404
    outsider = login_client(app, make.user())
    assert outsider.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/1.png").status_code == 404
    assert outsider.get(f"/meetings/{meeting.id}/decks/{deck.id}/file").status_code == 404
    assert c.get(f"/meetings/{meeting.id}/decks/{deck.id}/file").data[:5] == b"%PDF-"
    # nothing but the finished folder is left in the slides folder
    assert [p.name for p in conversion.slides_root().iterdir()] == [str(deck.id)]


def _titled_pdf() -> bytes:
    """Four pages: a title over body text, a title with runs of spaces and a tab, a page with no text,
    and a title longer than 120 characters."""
    from fpdf import FPDF

    doc = FPDF(orientation="L")
    doc.set_font("helvetica", size=20)
    pages = [["What the IAG asked for", "Monthly publication of the data"],
             ["   Key    messages\tto agree  ", "Publish the data every month"],
             [],
             ["Quokkatitle " + "x" * 200]]
    for lines in pages:
        doc.add_page()
        for line in lines:
            doc.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def test_each_slide_has_its_title_served_like_the_slides(app, make, client):
    chair, ann, _bob, room, meeting = setup_meeting(make)
    deck = decks.upload(chair, meeting.id, io.BytesIO(_titled_pdf()), "stop-and-search.pdf", background=False)
    assert conversion.convert(deck.id) == "ready"
    deck = db.session.get(Deck, deck.id, populate_existing=True)
    long_title = ("Quokkatitle " + "x" * 200)[:120]
    want = ["What the IAG asked for", "Key messages to agree", "", long_title]
    assert json.loads(deck.page_titles) == want
    url = f"/meetings/{meeting.id}/decks/{deck.id}/titles.json"
    r = login_client(app, ann).get(url)
    assert r.status_code == 200 and r.get_json() == {"titles": want}
    assert r.headers["Cache-Control"] == "no-store"
    # never in the meeting's state, which goes to everyone on the meeting's channel (guests too)
    assert "Quokkatitle" not in json.dumps(state.get_state(ann, meeting.id))
    assert "Quokkatitle" not in login_client(app, ann).get(f"/meetings/{meeting.id}/state").get_data(as_text=True)
    # a guest in a labelled room sees that the deck exists, but not its slides nor their titles
    guest = make.user(name="Gus Guest", kind="guest")
    room_services.add_member(chair, room.id, user_id=guest.id)
    trust_settings.set_label(chair, room.id, "OFFICIAL-SENSITIVE")
    g = login_client(app, guest)
    assert g.get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/1.png").status_code == 403
    assert g.get(url).status_code == 403
    with pytest.raises(Forbidden):
        decks.slide_titles(guest, meeting.id, deck.id)
    assert login_client(app, make.user()).get(url).status_code == 404    # not a member: no such meeting
    assert login_client(app, ann).get(f"/meetings/{meeting.id}/decks/{deck.id + 99}/titles.json").status_code == 404
    # search does not index them
    tasks.settle(app)
    hits = client.get("/api/v1/search", query_string={"q": "quokkatitle"}, headers=bearer(make.token(chair)))
    assert hits.status_code == 200 and "quokkatitle" not in hits.get_data(as_text=True).lower()


def test_a_deck_converted_before_titles_were_read_has_none(app, make):
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    deck = ready_deck(chair, meeting, pages=2)
    assert json.loads(deck.page_titles) == ["Slide 1", "Slide 2"]
    db.begin_write()
    deck.page_titles = None   # as the migration leaves a deck converted before it
    db.session.commit()
    r = login_client(app, ann).get(f"/meetings/{meeting.id}/decks/{deck.id}/titles.json")
    assert r.status_code == 200 and r.get_json() == {"titles": []}
    assert login_client(app, ann).get(f"/meetings/{meeting.id}/decks/{deck.id}/pages/2.png").status_code == 200


def test_corrupt_and_encrypted_pdfs_fail_cleanly(app, make):
    from pypdf import PdfReader, PdfWriter

    chair, ann, _bob, _room, meeting = setup_meeting(make)
    bad = decks.upload(chair, meeting.id, io.BytesIO(b"%PDF-1.4\nthis is not really a pdf\n"), "broken.pdf",
                       background=False)
    assert conversion.convert(bad.id) == "failed"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(2))))
    writer.encrypt(user_password="secret", owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    locked = decks.upload(chair, meeting.id, io.BytesIO(buf.getvalue()), "locked.pdf", background=False)
    assert conversion.convert(locked.id) == "failed"
    got = {d["filename"]: d for d in state.get_state(ann, meeting.id)["decks"]}
    assert "not a readable PDF" in got["broken.pdf"]["message"]
    assert "password" in got["locked.pdf"]["message"]
    assert list(conversion.slides_root().iterdir()) == []          # nothing half-made
    with pytest.raises(Invalid):
        decks.upload(chair, meeting.id, io.BytesIO(b"MZ..."), "virus.exe")
    with pytest.raises(Forbidden):
        decks.upload(ann, meeting.id, io.BytesIO(pdf_bytes(1)), "mine.pdf")
    # the meeting page still works and says why
    page = login_client(app, ann).get(f"/meetings/{meeting.id}")
    assert page.status_code == 200


def test_more_than_300_pages_is_refused(app, make):
    """A real 301-page PDF: refused after counting its pages (none is drawn), with a message."""
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    d = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(301)), "everything.pdf", background=False)
    assert conversion.convert(d.id) == "failed"
    deck = state.get_state(ann, meeting.id)["decks"][0]
    assert "301 pages; at most 300" in deck["message"] and deck["pages"] == 0
    assert list(conversion.slides_root().iterdir()) == []
    ok = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(2)), "short.pdf", background=False)
    assert conversion.convert(ok.id) == "ready"                      # the meeting goes on with the next file


def test_drawing_that_runs_too_long_is_stopped(app, make, monkeypatch, tmp_path_factory):
    """A drawing child that never ends (a script that sleeps, in place of render.py): stopped at the limit
    with everything it started, however fast the machine is."""
    hang = tmp_path_factory.mktemp("hang-render") / "render"
    hang.write_text("#!/bin/sh\nsleep 3600 &\nwait\n")
    hang.chmod(0o755)
    monkeypatch.setattr(conversion, "RENDERER", [str(hang)])
    monkeypatch.setattr(conversion, "RENDER_TIMEOUT", 1)
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    d = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(3)), "slow.pdf", background=False)
    assert conversion.convert(d.id) == "failed"
    assert "took longer than 1 seconds and was stopped" in state.get_state(ann, meeting.id)["decks"][0]["message"]
    assert list(conversion.slides_root().iterdir()) == []
    assert gone(str(hang)) and gone(f".work-{d.id}-")


def test_progress_is_sent_live_while_the_slides_are_drawn(app, make, monkeypatch):
    monkeypatch.setattr(conversion, "PROGRESS_EVERY", 0)
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    sc, _ = joined(app, ann, meeting.id)
    d = decks.upload(chair, meeting.id, io.BytesIO(pdf_bytes(4)), "plenary.pdf", background=False)
    conversion.start(app, d.id).join(timeout=60)
    seen = [(x["status"], x["done"], x["pages"]) for e in sc.get_received() if e["name"] == "meeting.state"
            for x in e["args"][0]["decks"]]
    assert seen[0] == ("queued", 0, 0) and seen[-1] == ("ready", 4, 4)
    steps = [done for status, done, pages in seen if status == "converting" and pages == 4]
    assert steps == sorted(steps) and len(set(steps)) >= 3, seen   # 0, 1, 2, 3 … of 4 as they are drawn
    # this test's session still holds the deck as it was before the background job: read it again
    assert db.session.get(Deck, d.id, populate_existing=True).status == "ready"
    r = login_client(app, ann).get(f"/meetings/{meeting.id}/decks/{d.id}/pages/1.png")
    assert r.status_code == 200, r.data[:300]
    assert r.headers["Cache-Control"] == "no-store"   # room content: stored by neither browser nor proxy


def test_office_file_without_soffice_is_a_download(app, make, monkeypatch):
    """Without LibreOffice on the PATH (a real absence: PATH points nowhere) the file is a download with a note."""
    monkeypatch.setenv("PATH", "/nonexistent")
    assert conversion.soffice() is None
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    d = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 not really"), "deck.pptx", background=False)
    assert conversion.convert(d.id) == "download"
    d = db.session.get(Deck, d.id, populate_existing=True)
    assert "LibreOffice" in d.message and d.pages == 0
    c = login_client(app, ann)
    assert c.get(f"/meetings/{meeting.id}/decks/{d.id}/file").data.startswith(b"PK")
    assert "LibreOffice" in c.get(f"/meetings/{meeting.id}/state").json["decks"][0]["message"]


def test_files_that_are_not_what_their_name_says_are_refused_before_anything_is_stored(app, make):
    chair, _ann, _bob, _room, meeting = setup_meeting(make)
    for name, data, what in (("slides.pptx", b"\x00\x01 random bytes", "PowerPoint"),
                             ("paper.docx", b"%PDF-1.4 a pdf renamed", "Word"),
                             ("old.ppt", b"PK\x03\x04zip", "PowerPoint"),
                             ("deck.pdf", b"GIF89a not a pdf", "PDF"),
                             ("empty.pdf", b"", "empty")):
        with pytest.raises(Invalid) as e:
            decks.upload(chair, meeting.id, io.BytesIO(data), name, background=False)
        assert name in e.value.message and what in e.value.message and e.value.field == "file"
    assert state.get_state(chair, meeting.id)["decks"] == []
    # through the page: the meeting page says why, and still works
    c = login_client(app, chair)
    r = c.post(f"/meetings/{meeting.id}/decks", data={"file": (io.BytesIO(b"junk"), "slides.odp")},
               content_type="multipart/form-data", follow_redirects=True)
    assert r.status_code == 200 and "is not a readable OpenDocument presentation file" in r.data.decode()
    # and through the API: 422 with the field
    r = app.test_client().post(f"/api/v1/meetings/{meeting.id}/decks", headers=bearer(make.token(chair)),
                               data={"file": (io.BytesIO(b"junk"), "slides.pptx")}, content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["error"]["field"] == "file"


def _office_files() -> dict[str, bytes]:
    """A real two-slide PPTX (python-pptx) and a real DOCX (python-docx), made here."""
    import docx
    from pptx import Presentation

    prs = Presentation()
    for i in range(2):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Slide {i + 1}"
        slide.placeholders[1].text = "Stop and search: the quarterly figures"
    pptx = io.BytesIO()
    prs.save(pptx)
    doc = docx.Document()
    doc.add_heading("Briefing paper", 0)
    doc.add_paragraph("Stop and search data, explained for the IAG.")
    docx_buf = io.BytesIO()
    doc.save(docx_buf)
    return {"plenary.pptx": pptx.getvalue(), "briefing.docx": docx_buf.getvalue()}


needs_soffice = pytest.mark.skipif(not conversion.soffice(), reason="LibreOffice (soffice) is not installed: "
                                   "apt-get install --no-install-recommends libreoffice-impress libreoffice-writer")


@needs_soffice
def test_pptx_odp_and_docx_are_converted_by_libreoffice_side_by_side(app, make, tmp_path):
    """A real PPTX, ODP and DOCX, converted at the same time (each LibreOffice run has its own profile)."""
    import subprocess

    files = _office_files()
    # an OpenDocument presentation: the PPTX saved as ODP by LibreOffice itself
    (tmp_path / "plenary.pptx").write_bytes(files["plenary.pptx"])
    subprocess.run([conversion.soffice(), f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "odp", "--outdir", str(tmp_path), str(tmp_path / "plenary.pptx")],
                   check=True, capture_output=True, timeout=120)
    files["agenda.odp"] = (tmp_path / "plenary.odp").read_bytes()
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    ids = {}
    for name, data in files.items():
        ids[name] = decks.upload(chair, meeting.id, io.BytesIO(data), name, background=False).id
    tasks = [conversion.start(app, did) for did in ids.values()]
    for t in tasks:
        t.join(timeout=240)
    got = {d["filename"]: d for d in state.get_state(ann, meeting.id)["decks"]}
    said = {name: (d["status"], d.get("pages"), d.get("message")) for name, d in got.items()}
    assert (got["plenary.pptx"]["status"], got["plenary.pptx"]["pages"]) == ("ready", 2), said
    assert got["briefing.docx"]["status"] == "ready" and got["briefing.docx"]["pages"] >= 1, said
    assert (got["agenda.odp"]["status"], got["agenda.odp"]["pages"]) == ("ready", 2), said
    c = login_client(app, ann)
    png = c.get(f"/meetings/{meeting.id}/decks/{ids['plenary.pptx']}/pages/2.png")
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(io.BytesIO(png.data)).size[0] == conversion.PAGE_WIDTH
    # nothing but the finished folders is left, and no LibreOffice is still running for them
    assert sorted(p.name for p in conversion.slides_root().iterdir()) == sorted(str(i) for i in ids.values())
    for did in ids.values():
        assert gone(f".work-{did}-") and gone(f"collab-convert-{did}-")


@needs_soffice
def test_damaged_office_file_fails_with_a_message(app, make):
    chair, ann, _bob, _room, meeting = setup_meeting(make)
    # a ZIP that is no presentation: LibreOffice's PowerPoint filter refuses it (rather than reading it as text)
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "this is not a presentation " * 200)
    d = decks.upload(chair, meeting.id, io.BytesIO(buf.getvalue()), "broken.pptx", background=False)
    assert conversion.convert(d.id) == "failed"
    deck = state.get_state(ann, meeting.id)["decks"][0]
    assert "LibreOffice could not read this PowerPoint file" in deck["message"] and deck["pages"] == 0
    assert list(conversion.slides_root().iterdir()) == []
    assert login_client(app, ann).get(f"/meetings/{meeting.id}").status_code == 200


# The converter's time limit: tests/test_deck_safety.py::test_a_hanging_converter_is_killed_at_the_time_limit
# (a converter that really hangs, so the kill path is proven on any machine).
