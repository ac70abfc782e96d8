"""Hostile uploads (issue 10, leak 10): an image declaring a huge number of pixels is
stored without a thumbnail and never decoded by the web process; a PDF whose text
extraction would run for minutes is indexed without its text and the indexer goes
on; uploads are rate-limited per account. The hostile files are made here."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import bearer
from tests.hostile_files import endless_pdf, huge_png
from tests.test_search_support import search_ids, settle, wait_until


def test_huge_pixel_png_uploads_as_a_plain_file_without_a_thumbnail(app, make):
    from collab.extensions import db
    from rooms import posts as room_posts
    from rooms.models import Attachment

    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    opening = room_posts.opening_post(thread)
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
    from rooms import posts as room_posts

    u = make.user()
    room = make.room(u, visibility="national")
    t = make.thread(u, room, title="Reports", body="see files")
    settle(app)
    nasty, _ = room_posts.create_post(u, t.id, body="The lighthouse report is attached.",
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
        from rooms import posts as room_posts

        make = Factory(app)
        u, other = make.user(), make.user()
        room = make.room(u, visibility="national")
        opening = room_posts.opening_post(make.thread(u, room))
        c = app.test_client()

        theirs = room_posts.opening_post(make.thread(other, room))

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
