"""A web process killed mid-request (issue 17): one gunicorn worker of a real `flask serve` is SIGKILLed
while API clients are posting; gunicorn starts another, and every client that got no answer sends its post
again with the same client_id. Afterwards each post exists exactly once: none lost, none doubled."""
from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.live_support import wait_for
from tests.liveserver import make_server

pytestmark = pytest.mark.slow
PASSWORD = "a long enough test passphrase"
CLIENTS = 6
PER_CLIENT = 40


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gunicorn_workers(server_pid: int) -> list[int]:
    masters = [p for p in _children(server_pid) if "gunicorn" in _cmdline(p)]
    return [w for m in masters for w in _children(m)]


def test_a_killed_worker_mid_request_and_the_clients_retry_make_each_post_once(tmp_path):
    server = make_server(tmp_path / "srv", extra_env={"COLLAB_MEDIA_EMBEDDED": "off"})
    server.start()
    try:
        server.flask("users", "create", "--email", "olga@example.org", "--name", "Olga Owner", input=PASSWORD + "\n")
        token = server.flask("tokens", "create", "--email", "olga@example.org").stdout.strip().splitlines()[-1]
        h = {"Authorization": f"Bearer {token}"}
        room = requests.post(server.url + "/api/v1/rooms", json={"name": "Kill", "visibility": "private"},
                             headers=h, timeout=30).json()
        thread = requests.post(server.url + f"/api/v1/rooms/{room['id']}/threads", json={"title": "T", "body": "x"},
                               headers=h, timeout=30).json()
        url = server.url + f"/api/v1/threads/{thread['id']}/posts"
        workers = wait_for(lambda: _gunicorn_workers(server.proc.pid), timeout=30)
        assert len(workers) == 1, workers

        done = [0]
        retried: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            s = requests.Session()
            for i in range(PER_CLIENT):
                cid = f"c{n}-{i}"
                for attempt in range(60):
                    try:
                        r = s.post(url, json={"body": f"post {cid}", "client_id": cid}, headers=h, timeout=30)
                    except requests.RequestException:
                        r = None     # the connection died with the worker: send it again
                    if r is not None and r.status_code in (200, 201):
                        break
                    if r is not None and r.status_code < 500:
                        errors.append(f"{cid}: {r.status_code} {r.text[:200]}")
                        return
                    with lock:
                        retried.append(cid)
                    s = requests.Session()
                    time.sleep(0.2)
                else:
                    errors.append(f"{cid}: never accepted")
                    return
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        assert wait_for(lambda: done[0] >= CLIENTS * PER_CLIENT // 3, timeout=120)
        os.kill(workers[0], signal.SIGKILL)       # mid-stream: several requests are in flight
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors
        assert done[0] == CLIENTS * PER_CLIENT
        assert retried, "no request was in flight when the worker was killed"
        new = _gunicorn_workers(server.proc.pid)
        assert new and workers[0] not in new      # gunicorn started another worker

        with sqlite3.connect(server.data_dir / "collab.db") as conn:
            rows = conn.execute("SELECT body, count(*) FROM posts WHERE thread_id = ? AND body LIKE 'post c%' "
                                "GROUP BY body", (thread["id"],)).fetchall()
        expected = {f"post c{n}-{i}" for n in range(CLIENTS) for i in range(PER_CLIENT)}
        assert {body for body, _n in rows} == expected                  # none lost
        assert [body for body, n in rows if n != 1] == []               # none doubled
    finally:
        server.kill()
