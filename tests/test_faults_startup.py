"""Start-up checks (issue 17): `flask --app wsgi serve` refuses to start, with one sentence that names the
setting and no traceback, on a malformed COLLAB_DATABASE_URL, an unwritable data folder, a database that does
not answer, and a database that has not been migrated (telling the operator to run `db upgrade`). Nothing is
started in those cases: the operator reads the reason where they typed the command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.liveserver import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "FLASK_"))}
    port = free_port()
    base.update(COLLAB_DATA_DIR=str(tmp_path / "data"), COLLAB_PORT=str(port), COLLAB_HOST="127.0.0.1",
                COLLAB_SECRET_KEY="startup-test", COLLAB_MEDIA_EMBEDDED="off")
    base.update(env)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "serve"], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120)


def _flask(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "FLASK_"))}
    base.update(COLLAB_DATA_DIR=str(tmp_path / "data"), COLLAB_SECRET_KEY="startup-test")
    base.update(env)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=300)


def _refused(result: subprocess.CompletedProcess) -> str:
    """The sentence the operator sees; asserts the server refused and showed no traceback."""
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-2000:]
    assert "Traceback" not in out, out[-3000:]
    assert "Collab is running" not in out
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Collab cannot start: "), out[-2000:]
    assert ". " not in last and last.endswith("."), last  # one sentence
    return last


def test_malformed_database_url_names_the_setting(tmp_path):
    line = _refused(_serve(tmp_path, COLLAB_DATABASE_URL="postgres ql//user@host/db"))
    assert "COLLAB_DATABASE_URL is not a database address" in line
    assert "postgresql+psycopg://" in line          # says how to write it


def test_unwritable_data_folder_names_the_setting(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test mounts a read-only file system: run the suite as root (the Makefile does)")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)], check=True)
    try:
        line = _refused(_serve(tmp_path, COLLAB_DATA_DIR=str(mnt / "data")))
        assert f"COLLAB_DATA_DIR ({mnt / 'data'}) is not a folder Collab can write to" in line
        assert "Read-only file system" in line
        line = _refused(_serve(tmp_path, COLLAB_DATA_DIR=str(mnt)))   # the folder exists but is read-only
        assert f"COLLAB_DATA_DIR ({mnt}) is not a folder Collab can write to" in line
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_database_that_does_not_answer(tmp_path):
    port = free_port()   # nothing listens there
    line = _refused(_serve(tmp_path, COLLAB_DATABASE_URL=f"postgresql+psycopg://collab:secret@127.0.0.1:{port}/collab"))
    assert "the database of COLLAB_DATABASE_URL" in line and "does not answer" in line
    assert "secret" not in line                     # the password is not printed
    assert "check that the database server is running" in line


def test_unmigrated_database_says_run_db_upgrade(tmp_path):
    db_file = tmp_path / "data" / "collab.db"
    url = f"sqlite:///{db_file}"
    line = _refused(_serve(tmp_path, COLLAB_DATABASE_URL=url))
    assert "run `flask --app wsgi db upgrade`" in line

    # half-way: migrated to an older version of Collab
    assert _flask(tmp_path, "db", "upgrade", "--revision", "0019", COLLAB_DATABASE_URL=url).returncode == 0
    line = _refused(_serve(tmp_path, COLLAB_DATABASE_URL=url))
    assert "has not been migrated to this version of Collab" in line
    assert "run `flask --app wsgi db upgrade`" in line
