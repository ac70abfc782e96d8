"""Hostile uploads (issue 10, leak 10): an image declaring a huge number of pixels is
stored without a thumbnail and never decoded by the web process; a PDF whose text
extraction would run for minutes is indexed without its text and the indexer goes
on; uploads are rate-limited per account. The hostile files are made here."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import bearer
from tests.test_search_support import search_ids, settle, wait_until


def huge_png(width: int = 20_000, height: int = 5_940) -> bytes:
    """A valid greyscale PNG of width × height pixels (118.8 million by default), all black, that
    compresses to a few hundred KB: what a decompression-bomb upload looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + one byte per pixel
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def endless_pdf(word: str = "zebrafish", pages: int = 200) -> bytes:
    """A small PDF (a few KB) whose few words take pypdf minutes of CPU: `pages` pages all showing the
    same compressed content stream, which shows `word` once and then moves the pen 150,000 times
    (within pypdf's own parsing budget per stream, and with next to no text, so neither pypdf's
    limits nor a cap on characters stop it: only a bound on time does)."""
    content = f"BT /F1 12 Tf 72 720 Td ({word}) Tj\n".encode() + b"0 0 Td\n" * 150_000 + b"ET"
    comp = zlib.compress(content, 9)
    first_page = 5
    kids = " ".join(f"{first_page + i} 0 R" for i in range(pages)).encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>",
            b"<< /Length " + str(len(comp)).encode() + b" /Filter /FlateDecode >>\nstream\n" + comp + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
             b"/Resources << /Font << /F1 4 0 R >> >> >>"] * pages
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_huge_pixel_png_uploads_as_a_plain_file_without_a_thumbnail(app, make):
    from collab.extensions import db
    from rooms import services
    from rooms.models import Attachment

    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    opening = services.opening_post(thread)
    data = huge_png()
    assert len(data) < 1024 * 1024
    c = app.test_client()
    r = c.post(f"/api/v1/posts/{opening.id}/attachments", headers=bearer(make.token(owner)),
               data={"file": (io.BytesIO(data), "bomb.png")}, content_type="multipart/form-data")
    assert r.status_code == 201
    att = db.session.scalar(select(Attachment).where(Attachment.id == r.json["added"][0]))
    assert not att.is_image and att.content_type == "application/octet-stream"
    assert not list(Path(app.config["DATA_DIR"], "thumbs").rglob(f"{att.sha256}*"))
    page = app.test_client()
    page.post("/login", data={"email": owner.email, "password": "a long enough test passphrase"})
    assert page.get(f"/thumbnails/{att.id}").status_code == 404
    assert page.get(f"/attachments/{att.id}/bomb.png").data == data  # still there, as a download


@pytest.mark.parametrize("app_config", [{"FILE_WORK_SECONDS": 1}])
def test_pdf_whose_text_never_ends_is_indexed_without_it_and_indexing_goes_on(app, make):
    from rooms import services

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Reports", body="see files")
    settle(app)
    nasty, _ = services.create_post(u, t.id, body="The lighthouse report is attached.",
                                    uploads=[("report.pdf", io.BytesIO(endless_pdf()))])
    after = make.reply(u, t, "A kestrel was seen near the pier.")
    wait_until(lambda: search_ids(u, "kestrel") == [after.id], timeout=60)
    assert search_ids(u, "lighthouse") == [nasty.id]  # the post and its file name are indexed...
    assert search_ids(u, "report.pdf") == [nasty.id]
    assert search_ids(u, "zebrafish") == []  # ... its endless text is not


def test_uploads_are_rate_limited_per_account(tmp_path, sqlite_template):
    import shutil

    from tests.conftest import Factory, RequestClient, make_test_app

    shutil.copy(sqlite_template, tmp_path / "collab.db")
    app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'collab.db'}", UPLOAD_LIMIT="2 per minute",
                        SEARCH_SWEEP_SECONDS=0)
    app.test_client_class = RequestClient
    with app.app_context():
        from collab.extensions import db
        from rooms import services

        make = Factory(app)
        u, other = make.user(), make.user()
        room = make.room(u, visibility="national")
        opening = services.opening_post(make.thread(u, room))
        c = app.test_client()

        theirs = services.opening_post(make.thread(other, room))

        def upload(user):
            post = opening if user is u else theirs
            return c.post(f"/api/v1/posts/{post.id}/attachments", headers=bearer(make.token(user)),
                          data={"file": (io.BytesIO(b"some notes"), "notes.txt")}, content_type="multipart/form-data")

        assert [upload(u).status_code for _ in range(2)] == [201, 201]
        r = upload(u)
        assert r.status_code == 429 and "Too many files" in r.json["error"]["message"]
        assert upload(other).status_code == 201
        # Posting without a file is not an upload.
        page = app.test_client()
        page.post("/login", data={"email": u.email, "password": "a long enough test passphrase"})
        assert page.post(f"/posts/{opening.id}/reply", data={"body": "no file"}).status_code == 302
        r = page.post(f"/posts/{opening.id}/reply", data={"body": "with", "file": (io.BytesIO(b"x"), "x.txt")},
                      content_type="multipart/form-data")
        assert r.status_code == 429 and "Too many files" in r.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()
