"""Start the real production server (`flask --app wsgi serve`) in a child
process with its own data folder, for browser tests, multi-process tests and
benchmarks. Used by tests/ and bench/ alike."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now on `host`, chosen by the kernel for bind(), which prefers the ports that
    outgoing connections do not take (Linux gives connect() the other parity): a neighbour of a free port is not
    safe, since any connection on the machine (a browser's, a database client's) may be holding it."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    data_dir: Path
    port: int
    env: dict
    media_port: int = 0
    proc: Optional[subprocess.Popen] = None
    log_path: Path = field(default=None)  # type: ignore[assignment]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def flask(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Run a `flask --app wsgi` command against this server's database."""
        return subprocess.run([PY, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=self.env, input=input,
                              capture_output=True, text=True, check=check, timeout=300)

    def start(self, timeout: float = 240) -> "LiveServer":
        # Generous: on a loaded machine (2 cores, several test runs) a server can take over 30 s to boot, and how
        # long it takes is not what any test checks; it answers as soon as it is up.
        self.log_path = self.data_dir / "server.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PY, "-m", "flask", "--app", "wsgi", "serve"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=2) as resp:
                    if resp.status in (200, 302):
                        return self
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (supervisor, gunicorn master and workers)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


# For servers whose tests hold no meeting: no media worker is started beside them (it costs a few seconds of CPU
# at start, which every other test running meanwhile pays for).
NO_MEDIA = {"COLLAB_MEDIA_EMBEDDED": "off"}


def make_server(data_dir: Path | None = None, *, port: int | None = None, database_url: str | None = None,
                extra_env: dict | None = None, migrate: bool = True) -> LiveServer:
    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="collab-live-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # The media worker's port is chosen like the web one, not taken as port + 1 (its default): that neighbour may
    # be a live connection's local port, and the worker would then die at start, over and over.
    media_port = int((extra_env or {}).get("COLLAB_MEDIA_PORT") or free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "FLASK_"))}
    env.update({
        "COLLAB_DATA_DIR": str(data_dir),
        "COLLAB_PORT": str(port),
        "COLLAB_MEDIA_PORT": str(media_port),
        "COLLAB_HOST": "127.0.0.1",
        "COLLAB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "COLLAB_SECRET_KEY": "live-test-secret",
        "PYTHONUNBUFFERED": "1",
        # Captions transcribe every speaking participant on this machine's cores: only the servers of the captions
        # tests turn them on (tests/browser/test_captions.py), so other meeting tests do not pay for them.
        "COLLAB_CAPTIONS_ENGINE": "off",
    })
    if database_url:
        env["COLLAB_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    server = LiveServer(data_dir=data_dir, port=port, env=env, media_port=media_port)
    if migrate:
        server.flask("db", "upgrade")
    return server
