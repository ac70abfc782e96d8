"""`flask backup` / `flask restore` (issue 17): an archive made from a live install restores into an empty one on
both databases with its posts, attachments, tokens and search; encrypted archives need their key; a restore never
mixes installs or leaves half its files behind; a full disk leaves no archive that looks usable."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select, text

from auth.models import User
from collab.archive_crypto import MAGIC
from collab.backup import last_backup
from collab.extensions import db
from rooms import posts as room_posts
from rooms.models import Attachment, Post
from tests.conftest import PG_URL, AuthActions, bearer, make_test_app



def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def empty_target(backend, tmp_path):
    """Where a restore goes: an empty data folder and an empty database on the backend under test."""
    if backend == "sqlite":
        yield tmp_path / "restored", f"sqlite:///{tmp_path / 'restored' / 'collab.db'}"
        return
    name = f"collab_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield tmp_path / "restored", PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _populate(make, body="Stop and search scrutiny panel: minutes attached"):
    owner = make.user(name="Margaret Ellis")
    room = make.room(owner, name="IAG scrutiny")
    thread = make.thread(owner, room, title="Scrutiny panel", body="Opening post")
    post, _ = room_posts.create_post(owner, thread.id, body=body,
                                  uploads=[("minutes.txt", io.BytesIO(b"panel minutes, 3 March")),
                                           ("photo.png", io.BytesIO(_png()))])
    token = make.token(owner)
    db.session.commit()
    return owner, post, token


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _cli(app, *args):
    with app.app_context():
        r = app.test_cli_runner().invoke(args=list(args))
        db.session.remove()
    return r


def _restored_app(tmp_path, target, **extra):
    data, url = target
    return make_test_app(tmp_path / "restored-app", url, DATA_DIR=str(data), **extra)


def _dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_backup_restores_into_an_empty_install(app, make, tmp_path, empty_target):
    owner, post, token = _populate(make)
    blobs = {a.filename: a.sha256 for a in db.session.scalars(select(Attachment))}
    r = _cli(app, "backup", "--to", str(tmp_path / "archives"))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "Database: 100 %" in r.stderr and "Files:" in r.stderr  # progress shown
    archives = list((tmp_path / "archives").glob("collab-backup-*.tar.gz"))
    assert len(archives) == 1 and f"Backup written: {archives[0]}" in r.stdout
    assert not list((tmp_path / "archives").glob("*.partial")) and not list((tmp_path / "archives").glob(".collab-*"))
    names = tarfile.open(archives[0]).getnames()
    assert names[0] == "manifest.json"
    assert not any(n.startswith("data/search") or n == "data/secret_key" for n in names)  # never without asking
    assert last_backup(app.config["DATA_DIR"])["path"] == str(archives[0])

    restored = _restored_app(tmp_path, empty_target)
    r = _cli(restored, "restore", str(archives[0]))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "Search: rebuilding" in r.stderr and "Restored" in r.stdout
    with restored.app_context():
        assert db.session.scalar(select(func.count()).select_from(Post)) == 2
        assert db.session.scalar(select(User.name).where(User.id == owner.id)) == "Margaret Ellis"
        c = restored.test_client()
        found = c.get("/api/v1/search?q=scrutiny", headers=bearer(token))
        assert found.status_code == 200, found.json
        assert post.id in [hit["post_id"] for hit in found.json["results"]]
        att = db.session.scalars(select(Attachment).where(Attachment.filename == "minutes.txt")).one()
        AuthActions(c).login(owner.email)  # the password survived too
        got = c.get(f"/attachments/{att.id}/minutes.txt")
        assert got.status_code == 200 and got.data == b"panel minutes, 3 March"
        for sha in blobs.values():
            assert (Path(empty_target[0]) / "attachments" / sha[:2] / sha[2:4] / sha).exists()
    _dispose(restored)


def test_restore_refuses_an_install_in_use_and_changes_nothing(app, make, tmp_path, db_url):
    _populate(make)
    r = _cli(app, "backup", "--to", str(tmp_path / "archives"))
    archive = next((tmp_path / "archives").glob("*.tar.gz"))
    before = sorted(p.name for p in Path(app.config["DATA_DIR"]).iterdir())
    r = _cli(app, "restore", str(archive))
    assert r.exit_code != 0 and "is not empty" in r.stderr
    assert sorted(p.name for p in Path(app.config["DATA_DIR"]).iterdir()) == before
    other = make_test_app(tmp_path / "other", db_url, DATA_DIR=str(tmp_path / "empty-data"))
    r = _cli(other, "restore", str(archive))
    assert r.exit_code != 0 and "already has tables" in r.stderr
    _dispose(other)


def test_encrypted_archive_needs_its_key(app, make, tmp_path, empty_target):
    _populate(make, body="Frank comment about the custody suite")
    key, wrong = tmp_path / "backup.key", tmp_path / "wrong.key"
    key.write_bytes(os.urandom(32))
    wrong.write_bytes(os.urandom(32))
    r = _cli(app, "backup", "--to", str(tmp_path / "archives"), "--key-file", str(key))
    assert r.exit_code == 0, r.stdout + r.stderr
    archive = next((tmp_path / "archives").glob("*.tar.gz.enc"))
    raw = archive.read_bytes()
    assert raw.startswith(MAGIC) and b"custody" not in raw and b"manifest" not in raw
    assert last_backup(app.config["DATA_DIR"])["encrypted"] is True

    restored = _restored_app(tmp_path, empty_target)
    fresh = _listing(empty_target[0])
    r = _cli(restored, "restore", str(archive))
    assert r.exit_code != 0 and "give the key file" in r.stderr
    r = _cli(restored, "restore", str(archive), "--key-file", str(wrong))
    assert r.exit_code != 0 and "cannot be decrypted with this key file" in r.stderr
    assert _listing(empty_target[0]) == fresh  # nothing half-restored
    short = tmp_path / "short.key"
    short.write_bytes(b"too short")
    r = _cli(restored, "restore", str(archive), "--key-file", str(short))
    assert r.exit_code != 0 and "fewer than 32 bytes" in r.stderr
    r = _cli(restored, "restore", str(archive), "--key-file", str(key))
    assert r.exit_code == 0, r.stdout + r.stderr
    with restored.app_context():
        assert db.session.scalar(select(func.count()).select_from(Post).where(Post.body.contains("custody"))) == 1
    _dispose(restored)


def test_damaged_or_foreign_archives_are_refused_cleanly(app, make, tmp_path, empty_target):
    _populate(make)
    _cli(app, "backup", "--to", str(tmp_path / "archives"))
    archive = next((tmp_path / "archives").glob("*.tar.gz"))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    restored = _restored_app(tmp_path, empty_target)
    fresh = _listing(empty_target[0])
    for bad, says in ((truncated, "could not be read"), (foreign, "unsafe entry"),
                      (tmp_path / "missing.tar.gz", "There is no archive")):
        r = _cli(restored, "restore", str(bad))
        assert r.exit_code != 0 and says in r.stderr, r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert _listing(empty_target[0]) == fresh
    with restored.app_context():
        assert not db.session.execute(text("SELECT 1 FROM information_schema.tables WHERE table_name = 'posts'")
                                      ).first() if restored.config["DATABASE_URL"].startswith("postgresql") else True
    _dispose(restored)


def test_secret_key_only_when_asked_and_mfa_warning(app, make, tmp_path, empty_target):
    _populate(make)
    Path(app.config["DATA_DIR"], "secret_key").write_text("the-old-servers-key")
    r = _cli(app, "backup", "--to", str(tmp_path / "with"), "--include-secrets")
    assert r.exit_code == 0, r.stderr
    archive = next((tmp_path / "with").glob("*.tar.gz"))
    with tarfile.open(archive) as tar:
        assert "data/secret_key" in tar.getnames()
        assert json.load(tar.extractfile("manifest.json"))["includes_secret_key"] is True
    restored = _restored_app(tmp_path, empty_target)
    r = _cli(restored, "restore", str(archive))
    assert r.exit_code == 0, r.stderr
    assert (empty_target[0] / "secret_key").read_text() == "the-old-servers-key"
    _dispose(restored)


def test_backup_refuses_cleanly_when_the_disk_fills(app, make, tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    _populate(make)
    big = Path(app.config["DATA_DIR"]) / "slides" / "deck" / "big.bin"
    big.parent.mkdir(parents=True)
    big.write_bytes(os.urandom(3 * 1024 * 1024))  # incompressible, larger than the 1 MB volume below
    full = tmp_path / "small-volume"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], check=True)
    try:
        before = last_backup(app.config["DATA_DIR"])
        r = _cli(app, "backup", "--to", str(full))
        assert r.exit_code != 0 and "is full" in r.stderr, r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert list(full.iterdir()) == []  # no partial archive, no staging folder
        assert last_backup(app.config["DATA_DIR"]) == before
    finally:
        subprocess.run(["umount", str(full)], check=False)
    r = _cli(app, "backup", "--to", str(tmp_path / "roomy"))  # and the next backup, with room, works
    assert r.exit_code == 0, r.stderr
