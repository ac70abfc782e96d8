"""The embedded media worker of `flask serve`: started as a child process next to gunicorn and restarted
whenever it exits (participants' pages reconnect by themselves, saying "Reconnecting…" meanwhile).

A worker that keeps dying just after starting is restarted with exponential back-off (0.5 s doubling up to
`MAX_DELAY`) for as long as the server runs: whatever stopped it (a port another program held for a while, a
full disk, a broken network) may go away, and nobody has to notice and restart the server. Only a failed
start-up self-test is not retried: it needs a person (aiortc's internals changed).

The supervisor's state — running, backing off since when, restarts, the last exit — is written to
`<data dir>/media-worker.json` at every change, so the web processes (other processes, started by gunicorn)
can read it with `state()`: the meeting pages then say "Meetings are unavailable right now" instead of
handing out tokens for a worker that is not there (`unavailable()`), and a readiness check can report a
crash loop. When it blames the port, it is because the port was found taken, not as a guess.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SELF_TEST_FAILED = 3
STATE_FILE = "media-worker.json"
FIRST_DELAY = 0.5    # seconds before restarting a worker that died just after starting; doubles each time
MAX_DELAY = 60.0     # ... up to this
QUICK = 10.0         # a worker that never answered /health, or lived less than this, "died just after starting"
AFTER_CRASH = 0.2    # seconds before restarting a worker that had been running fine
CRASH_LOOP = 2       # quick deaths in a row from which meetings are reported unavailable


def embedded_enabled(env: dict) -> bool:
    return env.get("COLLAB_MEDIA_EMBEDDED", "on").strip().lower() not in ("off", "0", "no", "false")


def media_address(env: dict) -> tuple[str, int]:
    """Where the worker listens (the same rule as media/config.py)."""
    host = env.get("COLLAB_MEDIA_HOST") or env.get("COLLAB_HOST", "127.0.0.1")
    port = int(env.get("COLLAB_MEDIA_PORT") or int(env.get("COLLAB_PORT", "5000")) + 1)
    return host, port


def port_taken(host: str, port: int) -> bool:
    """True if another program holds the port (binding it fails with "address in use")."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # a TIME_WAIT left by our own worker is not "taken"
        try:
            s.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def _healthy(host: str, port: int) -> bool:
    """The worker answers its /health (a bare TCP connect could reach another program holding the port)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with urllib.request.urlopen(f"http://{netloc}/health", timeout=0.5) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def state_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / STATE_FILE


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0; one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The embedded worker's state as its supervisor last wrote it: `state` ("starting", "running",
    "backing_off", "self_test_failed", "stopped"), `restarts`, `quick_failures` (deaths just after starting, in
    a row), `last_exit` (code) and `last_exit_at`, `backing_off_since` and `next_start_at` (Unix times),
    `port_taken`, `message`. {"state": "unknown"} when no supervisor of this data folder is running (no
    embedded worker, or a file left by a server that was killed)."""
    try:
        data = json.loads(state_path(data_dir).read_text())
    except (OSError, ValueError):
        return {"state": "unknown"}
    if not isinstance(data, dict) or not pid_alive(int(data.get("supervisor_pid") or 0) or -1):
        return {"state": "unknown"}
    return data


def unavailable(data_dir: str | os.PathLike) -> str | None:
    """Why meetings cannot be joined now (a sentence for people), or None. A single crash that is being
    restarted is not reported: pages in a meeting reconnect within seconds and must get their token."""
    st = state(data_dir)
    if st.get("state") == "self_test_failed":
        return "Meetings are unavailable right now: the media server failed its start-up check. An administrator has been told."
    if st.get("state") in ("backing_off", "starting") and int(st.get("quick_failures") or 0) >= CRASH_LOOP:
        return "Meetings are unavailable right now: the media server keeps stopping and is being restarted. Please try again in a few minutes."
    return None


class EmbeddedWorker:
    def __init__(self, env: dict, *, state_file: Path | None = None, max_delay: float = MAX_DELAY) -> None:
        self.env = dict(env)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0            # every restart since the server started
        self.quick_failures = 0      # deaths just after starting, in a row
        self.stopping = False
        self.gave_up = False         # only after a failed self-test
        self.max_delay = max_delay
        self._next_start = 0.0
        self._checked_at = 0.0
        self.ran = False             # this start answered /health
        self.host, self.port = media_address(self.env)
        data_dir = self.env.get("COLLAB_DATA_DIR")
        self.state_file = state_file or (state_path(Path(data_dir).resolve()) if data_dir else None)
        self.info: dict[str, Any] = {"state": "starting", "restarts": 0, "quick_failures": 0, "last_exit": None,
                                     "last_exit_at": None, "backing_off_since": None, "next_start_at": None,
                                     "port_taken": False, "message": ""}

    # -- the state other processes read ------------------------------------------------------------

    def _write(self, **changes: Any) -> None:
        self.info.update(changes, restarts=self.restarts, quick_failures=self.quick_failures,
                         supervisor_pid=os.getpid(), updated_at=time.time())
        if self.state_file is None:
            return
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".media-worker-")
            with os.fdopen(fd, "w") as fh:
                json.dump(self.info, fh)
            os.replace(tmp, self.state_file)
        except OSError as err:   # a full disk must not stop the supervising; the state is only for showing
            print(f"could not record the media worker's state in {self.state_file}: {err}", file=sys.stderr,
                  flush=True)

    def state(self) -> dict[str, Any]:
        return dict(self.info)

    # -- supervising ----------------------------------------------------------------------------------

    def start(self) -> None:
        # After a crash only the quick (structural) self-test runs: the full one passed when this
        # server started, and participants are waiting to reconnect.
        quick = ["--quick-self-test"] if self.proc is not None else []
        self.started_at = time.monotonic()
        self.ran = False
        self.proc = subprocess.Popen([sys.executable, "-m", "media", *quick], cwd=ROOT, env=self.env)
        self._write(state="starting", backing_off_since=None, next_start_at=None, pid=self.proc.pid)

    def poll(self) -> None:
        """Call regularly: restarts a worker that died (with back-off if it keeps dying)."""
        if self.stopping or self.gave_up or self.proc is None:
            return
        code = self.proc.poll()
        if code is None:
            now = time.monotonic()
            if self.info["state"] == "starting" and now - self._checked_at >= 1.0:
                self._checked_at = now
                if _healthy(self.host, self.port):
                    self.ran = True
                    self._write(state="running", message="")
            if self.quick_failures and time.monotonic() - self.started_at >= QUICK:
                self.quick_failures = 0
                self._write()
            return
        now = time.monotonic()
        if code == SELF_TEST_FAILED:
            self.gave_up = True
            self._write(state="self_test_failed", last_exit=code, last_exit_at=time.time(),
                        message="the start-up self-test failed: pin aiortc to the tested version")
            print("\n" + "!" * 78 + "\n  MEETINGS ARE DOWN: the media worker's start-up self-test failed (see above).\n"
                  "  aiortc's internals changed; pin aiortc to the tested version (requirements.txt).\n"
                  + "!" * 78 + "\n", file=sys.stderr, flush=True)
            return
        if not self._next_start:
            quick = not self.ran or now - self.started_at < QUICK
            self.quick_failures = self.quick_failures + 1 if quick else 0
            self.restarts += 1
            if quick:
                delay = min(self.max_delay, FIRST_DELAY * 2 ** min(self.quick_failures - 1, 20))
            else:
                delay = AFTER_CRASH
            taken = quick and port_taken(self.host, self.port)
            why = (f"COLLAB_MEDIA_PORT {self.port} on {self.host} is taken by another program" if taken
                   else f"it exited with code {code}")
            message = (f"the media worker stopped ({why}); restarting it in {delay:.1f} s"
                       + (f" (failure {self.quick_failures} in a row just after starting)" if quick else ""))
            print(("MEETINGS ARE DOWN: " if self.quick_failures >= CRASH_LOOP else "") + message, file=sys.stderr,
                  flush=True)
            self._next_start = now + delay
            self._write(state="backing_off", last_exit=code, last_exit_at=time.time(),
                        backing_off_since=self.info.get("backing_off_since") or time.time(),
                        next_start_at=time.time() + delay, port_taken=taken, message=message)
        if now >= self._next_start:
            self._next_start = 0.0
            since = self.info.get("backing_off_since")
            self.start()
            if self.quick_failures:   # still in a crash loop: keep the time it began
                self._write(backing_off_since=since)

    def stop(self, timeout: float = 8.0) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._write(state="stopped", pid=None)
