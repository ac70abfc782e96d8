"""The data folder's disk fills up during an attachment upload (issue 17), on small tmpfs volumes the test
mounts (it runs as root) as the attachments and thumbnails folders — which also makes attachments a volume
of their own, where a rename from elsewhere would fail with EXDEV.

What the person sees: "The server has no room to store this file" (not "something went wrong, try again",
which cannot help), nothing half-written (no attachment row, no post, no partial file), and everything
already stored still reads; an image whose thumbnail does not fit is refused the same way instead of being
kept as a plain download."""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collab.extensions import db
from rooms import attachments as files
from rooms.models import Attachment, Post
from tests.conftest import bearer
from tests.live_support import login_client

NO_ROOM = "The server has no room to store this file"


@pytest.fixture
def mount():
    if os.geteuid() != 0:
        pytest.fail("these tests mount small tmpfs volumes: run the suite as root (the Makefile does)")
    mounted: list[Path] = []

    def _mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    yield _mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path, leave: int = 0) -> None:
    """Fill the volume holding `folder`, leaving about `leave` bytes."""
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
                if free <= leave + 65536:
                    break
                fh.write(b"\0" * min(1 << 20, free - leave - 4096))
                fh.flush()
        except OSError:
            pass


def _png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((w, h), 64).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def _count(model) -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(model))


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in (folder / ".incoming").glob("*")] if (folder / ".incoming").exists() else []


def test_attachments_on_their_own_volume_fill_up(app, make, mount):
    data = Path(app.config["DATA_DIR"])
    att_dir = mount(data / "attachments", "3m")
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    post_id = db.session.scalar(select(Post.id).where(Post.thread_id == thread.id))
    api = app.test_client()
    h = bearer(make.token(owner))

    # on their own volume, uploads work (no cross-device rename)
    r = api.post(f"/api/v1/posts/{post_id}/attachments", headers=h, content_type="multipart/form-data",
                 data={"file": (io.BytesIO(b"minutes of the meeting\n" * 100), "minutes.txt")})
    assert r.status_code == 201, r.json
    first = r.json["attachments"][0]

    # a file bigger than the room left: a clear error, nothing kept
    atts, posts = _count(Attachment), _count(Post)
    r = api.post(f"/api/v1/posts/{post_id}/attachments", headers=h, content_type="multipart/form-data",
                 data={"file": (io.BytesIO(os.urandom(4 * 1024 * 1024)), "big.bin")})
    assert r.status_code == 507, r.json
    assert r.json["error"]["code"] == "no_room" and NO_ROOM in r.json["error"]["message"]
    assert "try again" not in r.json["error"]["message"].replace("trying again will not help", "")
    assert _count(Attachment) == atts
    assert _leftovers(att_dir) == []

    # the same through the page: the reply with a file is not posted, the person is told why
    browser = login_client(app, owner)
    r = browser.post(f"/posts/{post_id}/reply", content_type="multipart/form-data",
                     data={"body": "see attached", "client_id": "disk-1",
                           "file": (io.BytesIO(os.urandom(4 * 1024 * 1024)), "big.bin")})
    assert r.status_code == 422
    assert NO_ROOM in r.get_data(as_text=True)
    assert _count(Post) == posts and _count(Attachment) == atts
    assert _leftovers(att_dir) == []

    # reads keep working
    r = browser.get(first["url"])
    assert r.status_code == 200 and r.data == b"minutes of the meeting\n" * 100
    assert browser.get(f"/rooms/{room.id}").status_code == 200


def test_a_thumbnail_that_does_not_fit_is_refused_clearly(app, make, mount):
    data = Path(app.config["DATA_DIR"])
    thumbs = mount(data / "thumbs", "1m")
    _fill(thumbs)
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    post_id = db.session.scalar(select(Post.id).where(Post.thread_id == thread.id))
    atts = _count(Attachment)
    r = app.test_client().post(f"/api/v1/posts/{post_id}/attachments", headers=bearer(make.token(owner)),
                               content_type="multipart/form-data", data={"file": (io.BytesIO(_png(600, 400)), "map.png")})
    assert r.status_code == 507, r.json
    assert NO_ROOM in r.json["error"]["message"]
    assert _count(Attachment) == atts   # not quietly kept as a plain download

    (thumbs / "filler").unlink()        # room again: the same image is an image, with its thumbnail
    r = app.test_client().post(f"/api/v1/posts/{post_id}/attachments", headers=bearer(make.token(owner)),
                               content_type="multipart/form-data", data={"file": (io.BytesIO(_png(600, 400)), "map.png")})
    assert r.status_code == 201 and r.json["attachments"][-1]["is_image"]


def test_a_rename_across_volumes_copies_syncs_and_renames_within_the_target(tmp_path, mount):
    target = mount(tmp_path / "vol", "1m") / "ab"
    target.mkdir()
    src = tmp_path / "incoming.bin"
    src.write_bytes(b"x" * 1000)
    with pytest.raises(OSError) as err:    # what the old code did: a plain rename across file systems
        os.rename(src, target / "blob")
    assert err.value.errno == 18           # EXDEV
    files._move_into(src, target / "blob")
    assert (target / "blob").read_bytes() == b"x" * 1000
    assert not src.exists()
    assert [p.name for p in target.iterdir()] == ["blob"]   # no temporary copy left beside it
