"""Meeting files are room content (issue 10, leaks 1 and 6; issue 11's hanging converter).

- A guest in a room labelled above the lowest label sees that a deck exists, but gets
  neither its file, nor its slide images, nor the minutes PDF (as with attachments);
  every such file is sent `Cache-Control: no-store`.
- An uploaded office document is converted by the real LibreOffice with links blocked
  and, on Linux, in a sandbox: an image it links by `file:///<data dir>/…` or
  `http://127.0.0.1:…` is neither read nor fetched.
- A converter that hangs is killed at the time limit, with everything it started.
"""
from __future__ import annotations

import http.server
import io
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from collab.extensions import db
from collab import tasks
from rooms import posts as room_posts
from rooms import trust_settings
from rooms.meetings import conversion, convert_sandbox, decks, minutes, schedule, state
from rooms.meetings.models import Deck
from tests.conftest import bearer
from tests.hostile_files import text_pdf
from tests.meeting_support import gone, processes_with
from tests.live_support import login_client

needs_soffice = pytest.mark.skipif(not conversion.soffice(), reason="LibreOffice (soffice) is not installed: make soffice")
MAGENTA = (255, 0, 255)


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


def pdf_bytes(pages: int = 2, fill: tuple[int, int, int] | None = None) -> bytes:
    """A real PDF (fpdf2); with `fill`, every page is one solid colour."""
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("helvetica", size=48)
    for i in range(pages):
        doc.add_page()
        if fill:
            doc.set_fill_color(*fill)
            doc.rect(0, 0, doc.w, doc.h, "F")
        doc.cell(text=f"Slide {i + 1}")
    return bytes(doc.output())


def ready_deck(chair, meeting, data: bytes | None = None, name: str = "plenary.pdf") -> Deck:
    deck = decks.upload(chair, meeting.id, io.BytesIO(data or pdf_bytes()), name, background=False)
    assert conversion.convert(deck.id) == "ready"
    return db.session.get(Deck, deck.id, populate_existing=True)


def labelled_meeting(make, label: str):
    chair, member, guest = make.user(name="Chair Person"), make.user(name="Ann Able"), make.user(kind="guest")
    room = make.room(chair, members=[member, guest])
    trust_settings.set_label(chair, room.id, label)
    meeting = schedule.schedule_meeting(chair, room.id, title="IAG plenary", starts_at="2030-01-10T10:00:00Z")
    return chair, member, guest, room, meeting


def _urls(meeting, deck) -> dict[str, str]:
    return {"file": f"/meetings/{meeting.id}/decks/{deck.id}/file",
            "page": f"/meetings/{meeting.id}/decks/{deck.id}/pages/1.png",
            "minutes": f"/meetings/{meeting.id}/minutes.pdf"}


# -- leak 1: guests in labelled rooms ---------------------------------------------------------------------

def test_guest_in_a_sensitive_room_sees_the_deck_but_gets_no_file_slide_or_minutes_pdf(app, make, client):
    chair, member, guest, _room, meeting = labelled_meeting(make, "OFFICIAL-SENSITIVE")
    deck = ready_deck(chair, meeting)
    minutes.end_with_minutes(chair, meeting.id)
    urls = _urls(meeting, deck)
    g, m = login_client(app, guest), login_client(app, member)
    for what, url in urls.items():
        r = g.get(url)
        assert r.status_code in (403, 404), (what, r.status_code)
        assert b"%PDF" not in r.data[:1024] and not r.data.startswith(b"\x89PNG"), what
        ok = m.get(url)
        assert ok.status_code == 200, (what, ok.status_code)
        assert ok.headers["Cache-Control"] == "no-store" and ok.headers["X-Content-Type-Options"] == "nosniff", what
    # the guest still sees that the deck exists (HTML state and API), and is told files are withheld
    seen = g.get(f"/meetings/{meeting.id}/state").json
    assert [d["filename"] for d in seen["decks"]] == ["plenary.pdf"] and seen["me"]["files"] is False
    api = client.get(f"/api/v1/meetings/{meeting.id}/state", headers=bearer(make.token(guest))).json
    assert [d["filename"] for d in api["decks"]] == ["plenary.pdf"] and api["me"]["files"] is False
    assert client.get(f"/api/v1/meetings/{meeting.id}/state", headers=bearer(make.token(member))).json["me"]["files"]
    # no route of the API hands out a meeting's files, with or without a token
    for url in urls.values():
        assert client.get("/api/v1" + url, headers=bearer(make.token(guest))).status_code == 404
        assert client.get(url, headers=bearer(make.token(guest))).status_code in (302, 401)   # pages need a session
    # the services say so too (every channel goes through them)
    from collab.errors import Forbidden

    with pytest.raises(Forbidden):
        decks.file_path(guest, meeting.id, deck.id)
    with pytest.raises(Forbidden):
        decks.page_path(guest, meeting.id, deck.id, 1)
    with pytest.raises(Forbidden):
        minutes.pdf(guest, meeting.id)
    # the meeting page tells the script to load no slide and offers no download
    page = g.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert 'data-no-files="1"' in page and "minutes.pdf" not in page
    assert 'data-no-files=""' in m.get(f"/meetings/{meeting.id}").get_data(as_text=True)


def test_guest_in_an_official_room_gets_deck_slides_and_minutes_pdf(app, make):
    chair, _member, guest, _room, meeting = labelled_meeting(make, "OFFICIAL")
    deck = ready_deck(chair, meeting)
    minutes.end_with_minutes(chair, meeting.id)
    g = login_client(app, guest)
    for what, url in _urls(meeting, deck).items():
        r = g.get(url)
        assert r.status_code == 200, (what, r.status_code)
        assert r.headers["Cache-Control"] == "no-store", what
    assert g.get(f"/meetings/{meeting.id}/state").json["me"]["files"] is True


def test_attachments_and_thumbnails_are_not_stored_by_the_browser(app, make):
    owner = make.user()
    room = make.room(owner)
    png = io.BytesIO()
    Image.new("RGB", (40, 30), MAGENTA).save(png, "PNG")
    thread = room_posts.create_thread(owner, room.id, title="Figures", body="See attached",
                                      uploads=[("figures.png", io.BytesIO(png.getvalue()))])
    att = room_posts.opening_post(thread).attachments[0]
    c = login_client(app, owner)
    for url in (f"/attachments/{att.id}/{att.filename}", f"/thumbnails/{att.id}"):
        r = c.get(url)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Content-Type-Options"] == "nosniff", url


# -- leak 6: links inside an uploaded document ------------------------------------------------------------

def odt_linking(href: str) -> bytes:
    """A real OpenDocument text whose only picture is linked (not embedded) from `href`."""
    content = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2">
<office:body><office:text><text:p>Our figures:</text:p>
<text:p><draw:frame draw:name="figure" text:anchor-type="as-char" svg:width="15cm" svg:height="15cm">
<draw:image xlink:href="{href}" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p>
</office:text></office:body></office:document-content>"""
    manifest = """<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>
<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        z.writestr("META-INF/manifest.xml", manifest)
        z.writestr("content.xml", content)
    return buf.getvalue()


def magenta_pixels(path) -> int:
    raw = Image.open(path).convert("RGB").reduce(4).tobytes()
    return sum(1 for i in range(0, len(raw), 3) if raw[i] > 200 and raw[i + 1] < 80 and raw[i + 2] > 200)


@pytest.fixture(params=["bwrap", "unshare"])
def sandbox(request, monkeypatch, tmp_path_factory) -> str:
    """Convert in bubblewrap, or (PATH offering no bwrap, only unshare and LibreOffice) in the fallback."""
    tool = shutil.which(request.param)
    if tool is None:
        pytest.skip(f"{request.param} is not installed: make soffice")
    if request.param == "unshare":
        only = tmp_path_factory.mktemp("path")
        for name, target in (("unshare", tool), ("soffice", conversion.soffice())):
            (only / name).symlink_to(target)
        monkeypatch.setenv("PATH", str(only))
    return request.param


@needs_soffice
def test_a_document_cannot_draw_another_rooms_slide_into_its_deck(app, make, sandbox):
    # another room's deck: every slide solid magenta, stored under <data dir>/slides/<id>/1.png
    victim = make.user()
    secret_meeting = schedule.schedule_meeting(victim, make.room(victim).id, title="Closed",
                                               starts_at="2030-01-10T10:00:00Z")
    secret = ready_deck(victim, secret_meeting, pdf_bytes(1, fill=MAGENTA), "secret.pdf")
    secret_png = conversion.deck_dir(secret.id) / "1.png"
    assert magenta_pixels(secret_png) > 10_000            # the secret is unmistakable where it appears
    attacker = make.user()
    meeting = schedule.schedule_meeting(attacker, make.room(attacker).id, title="Mine",
                                        starts_at="2030-01-10T10:00:00Z")
    d = decks.upload(attacker, meeting.id, io.BytesIO(odt_linking(secret_png.resolve().as_uri())), "figures.odt",
                     background=False)
    assert conversion.convert(d.id) == "ready", db.session.get(Deck, d.id, populate_existing=True).message
    d = db.session.get(Deck, d.id, populate_existing=True)
    for n in range(1, d.pages + 1):
        assert magenta_pixels(conversion.deck_dir(d.id) / f"{n}.png") == 0, f"page {n} shows the other room's slide"


class _Probe(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _answer(self):
        type(self).seen.append(f"{self.command} {self.path}")
        png = io.BytesIO()
        Image.new("RGB", (64, 64), MAGENTA).save(png, "PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(png.getvalue())))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(png.getvalue())

    do_GET = do_HEAD = do_OPTIONS = do_PROPFIND = _answer

    def log_message(self, *args):
        pass


@needs_soffice
def test_a_document_cannot_make_the_server_fetch_an_address(app, make, sandbox):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    _Probe.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        chair = make.user()
        meeting = schedule.schedule_meeting(chair, make.room(chair).id, title="Mine", starts_at="2030-01-10T10:00:00Z")
        url = f"http://127.0.0.1:{server.server_address[1]}/probe.png"
        d = decks.upload(chair, meeting.id, io.BytesIO(odt_linking(url)), "figures.odt", background=False)
        assert conversion.convert(d.id) == "ready", db.session.get(Deck, d.id, populate_existing=True).message
        d = db.session.get(Deck, d.id, populate_existing=True)
        assert _Probe.seen == [], f"the server fetched {_Probe.seen}"
        for n in range(1, d.pages + 1):
            assert magenta_pixels(conversion.deck_dir(d.id) / f"{n}.png") == 0
    finally:
        server.shutdown()
        server.server_close()


# -- the sandbox itself -----------------------------------------------------------------------------------

def _fake_soffice(folder, body: str) -> str:
    """An executable named soffice, first on PATH for one test: a converter that does what `body` says."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    exe = bin_dir / "soffice"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(bin_dir)


SANDBOXES = ["off"] + (["auto"] if shutil.which("bwrap") or shutil.which("unshare") else [])


@pytest.mark.parametrize("mode", SANDBOXES)
def test_a_hanging_converter_is_killed_at_the_time_limit(app, make, monkeypatch, tmp_path_factory, mode):
    """A converter that never ends (a script that sleeps, first on PATH): stopped at the limit with
    everything it started, whatever the machine's speed; the deck says why."""
    app.config["DECK_SANDBOX"] = mode
    hang = tmp_path_factory.mktemp("hang")
    monkeypatch.setenv("PATH", _fake_soffice(hang, "sleep 3600 &\nwait") + os.pathsep + os.environ["PATH"])
    assert conversion.soffice() == str(hang / "bin" / "soffice")
    monkeypatch.setattr(conversion, "CONVERT_TIMEOUT", 1)
    chair = make.user()
    meeting = schedule.schedule_meeting(chair, make.room(chair).id, title="Mine", starts_at="2030-01-10T10:00:00Z")
    d = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 a presentation"), "slow.pptx", background=False)
    assert conversion.convert(d.id) == "failed"
    deck = state.get_state(chair, meeting.id)["decks"][0]
    assert "took longer than 1 seconds and was stopped" in deck["message"], deck
    assert gone(str(hang)), processes_with(str(hang))
    assert gone(f"collab-convert-{d.id}-")
    assert list(conversion.slides_root().iterdir()) == [] and convert_sandbox.left_behind(d.id) == []


def test_a_converter_that_crashes_after_writing_the_pdf_still_gives_slides_and_its_words_are_logged(
        app, make, monkeypatch, tmp_path_factory, caplog):
    """LibreOffice sometimes crashes while shutting down, after the whole PDF is written: the slides are
    drawn from that PDF (drawing refuses a PDF that is not whole). A converter that fails without a PDF
    fails the deck with the message; what either said is in the log for the operator."""
    app.config["DECK_SANDBOX"] = "off"
    conv = tmp_path_factory.mktemp("crash")
    (conv / "ready.pdf").write_bytes(text_pdf("Written before the crash"))
    monkeypatch.setenv("PATH", _fake_soffice(conv, f"""out=""; prev=""
for a in "$@"; do [ "$prev" = "--outdir" ] && out="$a"; prev="$a"; done
cp {conv / "ready.pdf"} "$out/deck.pdf"
echo "segfault while closing down" >&2
exit 139""") + os.pathsep + os.environ["PATH"])
    chair = make.user()
    meeting = schedule.schedule_meeting(chair, make.room(chair).id, title="Mine", starts_at="2030-01-10T10:00:00Z")
    d = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 a presentation"), "deck.pptx", background=False)
    assert conversion.convert(d.id) == "ready"
    assert db.session.get(Deck, d.id, populate_existing=True).pages == 1
    assert "exited with 139 after writing the PDF" in caplog.text and "segfault while closing down" in caplog.text

    none = tmp_path_factory.mktemp("nopdf")
    monkeypatch.setenv("PATH", _fake_soffice(none, "echo 'General Error' >&2\nexit 1") + os.pathsep
                       + os.environ["PATH"])
    d2 = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 another"), "other.pptx", background=False)
    assert conversion.convert(d2.id) == "failed"
    assert "could not read this" in db.session.get(Deck, d2.id, populate_existing=True).message
    assert "exited with 1 on deck" in caplog.text and "General Error" in caplog.text


def test_without_a_sandbox_office_files_are_downloads_unless_the_operator_allows_it(app, make, monkeypatch,
                                                                                   tmp_path_factory):
    """PATH holds only a converter (no bwrap, no unshare): nothing is run, the file is a download with a
    note; with COLLAB_DECK_SANDBOX=off the converter runs."""
    conv = tmp_path_factory.mktemp("conv")
    ran = conv / "ran"
    monkeypatch.setenv("PATH", _fake_soffice(conv, f"echo ran > {ran}\nexit 1"))
    chair = make.user()
    meeting = schedule.schedule_meeting(chair, make.room(chair).id, title="Mine", starts_at="2030-01-10T10:00:00Z")
    d = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 a presentation"), "deck.pptx", background=False)
    assert conversion.convert(d.id) == "download"
    deck = db.session.get(Deck, d.id, populate_existing=True)
    assert "cannot convert office documents in isolation" in deck.message and not ran.exists()
    assert login_client(app, chair).get(f"/meetings/{meeting.id}/decks/{d.id}/file").data.startswith(b"PK")
    app.config["DECK_SANDBOX"] = "off"
    d2 = decks.upload(chair, meeting.id, io.BytesIO(b"PK\x03\x04 a presentation"), "deck.pptx", background=False)
    assert conversion.convert(d2.id) == "failed" and ran.exists()   # it ran (and, being a fake, made no PDF)


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed: make soffice")
def test_bubblewrap_shows_the_converter_only_its_own_folder(app, make, monkeypatch, tmp_path_factory):
    """What a converter inside the sandbox can see: its conversion folder (the upload's copy), not the data
    folder, and no network interface but loopback."""
    spy = tmp_path_factory.mktemp("spy")
    out = "/convert/deck.pdf"
    script = (f"ls /convert > /convert/listing; ls {app.config['DATA_DIR']} > /convert/data 2>&1; "
              f"cat /proc/net/dev > /convert/net; echo '%PDF-1.4' > {out}; exit 3")
    monkeypatch.setenv("PATH", _fake_soffice(spy, script) + os.pathsep + os.environ["PATH"])
    folder = convert_sandbox.new_folder(0)
    try:
        (folder / "deck.pptx").write_bytes(b"PK\x03\x04")
        p = convert_sandbox.plan(conversion.soffice(), lambda inside, profile: [inside], folder,
                                 Path(app.config["DATA_DIR"]), "auto")
        assert p.how in ("bwrap", "unshare")
        subprocess.run(p.cmd, env=p.env, cwd=folder, timeout=60)
        if p.how == "bwrap":
            assert sorted((folder / "listing").read_text().split()) == ["deck.pptx", "listing", "profile"]   # (listing: this answer)
        assert "No such file" in (folder / "data").read_text() or (folder / "data").read_text().strip() == ""
        interfaces = [line.split(":")[0].strip() for line in (folder / "net").read_text().splitlines()[2:]]
        assert interfaces in ([], ["lo"]), interfaces
    finally:
        shutil.rmtree(folder, ignore_errors=True)
