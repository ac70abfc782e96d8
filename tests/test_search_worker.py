"""`flask serve` indexes in a process of its own: the web worker only writes the
outbox, and a post is still searchable within a second, also after the
indexer process is killed (the supervisor restarts it)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.liveserver import NO_MEDIA, make_server

pytestmark = pytest.mark.slow


def _search_worker_pids(data_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"search" in cmd and b"worker" in cmd and f"COLLAB_DATA_DIR={data_dir}".encode() in env:
            pids.append(int(entry.name))
    return pids


def _searchable(url: str, headers: dict, word: str, within: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        r = requests.get(f"{url}/api/v1/search", params={"q": word}, headers=headers, timeout=5)
        if r.status_code == 200 and r.json()["total"] >= 1:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{word!r} was not searchable within {within}s")


def test_serve_indexes_in_its_own_process(tmp_path):
    # (it polls the search API every 50 ms: more than the default per-account search limit allows)
    server = make_server(tmp_path / "data", extra_env={"COLLAB_SEARCH_LIMIT": "10000 per minute", **NO_MEDIA})
    server.flask("users", "create", "--email", "idx@example.org", "--name", "Indexer Test", input="a long enough passphrase\n")
    token = server.flask("tokens", "create", "--email", "idx@example.org").stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    server.start()
    try:
        assert len(_search_worker_pids(server.data_dir)) == 1
        room = requests.post(f"{server.url}/api/v1/rooms", json={"name": "Index room"}, headers=headers).json()
        thread = requests.post(f"{server.url}/api/v1/rooms/{room['id']}/threads",
                               json={"title": "Kestrel", "body": "first marmalade"}, headers=headers).json()
        assert _searchable(server.url, headers, "marmalade", within=1.0) <= 1.0

        os.kill(_search_worker_pids(server.data_dir)[0], signal.SIGKILL)
        requests.post(f"{server.url}/api/v1/threads/{thread['id']}/posts", json={"body": "then quinces"},
                      headers=headers).raise_for_status()
        # Restarted by the supervisor (with a short back-off), it applies what waited in the outbox.
        _searchable(server.url, headers, "quinces", within=15.0)
        assert len(_search_worker_pids(server.data_dir)) == 1
    finally:
        server.stop()
