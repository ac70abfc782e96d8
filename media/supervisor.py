"""The embedded media worker of `flask serve`: started as a child process next to
gunicorn and restarted when it crashes (participants' pages reconnect by
themselves). A failed start-up self-test is not retried: it needs a person."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SELF_TEST_FAILED = 3
GIVE_UP_AFTER = 8  # quick failures in a row (e.g. its port is taken): stop trying and say so


def embedded_enabled(env: dict) -> bool:
    return env.get("COLLAB_MEDIA_EMBEDDED", "on").strip().lower() not in ("off", "0", "no", "false")


class EmbeddedWorker:
    def __init__(self, env: dict) -> None:
        self.env = dict(env)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.stopping = False
        self.gave_up = False
        self._next_start = 0.0

    def start(self) -> None:
        # After a crash only the quick (structural) self-test runs: the full one passed when this
        # server started, and participants are waiting to reconnect.
        quick = ["--quick-self-test"] if self.proc is not None else []
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "media", *quick], cwd=ROOT, env=self.env)

    def poll(self) -> None:
        """Call regularly: restarts a worker that died (with back-off if it keeps dying)."""
        if self.stopping or self.gave_up or self.proc is None:
            return
        code = self.proc.poll()
        if code is None:
            return
        now = time.monotonic()
        if code == SELF_TEST_FAILED:
            self.gave_up = True
            print("\n" + "!" * 78 + "\n  MEETINGS ARE DOWN: the media worker's start-up self-test failed (see above).\n"
                  "  aiortc's internals changed; pin aiortc to the tested version (requirements.txt).\n"
                  + "!" * 78 + "\n", file=sys.stderr, flush=True)
            return
        if not self._next_start:
            quick = now - self.started_at < 10
            self.restarts = self.restarts + 1 if quick else 0
            if self.restarts >= GIVE_UP_AFTER:
                self.gave_up = True
                print(f"MEETINGS ARE DOWN: the media worker failed {self.restarts} times in a row just after "
                      f"starting (is COLLAB_MEDIA_PORT free?); not restarting it again.", file=sys.stderr, flush=True)
                return
            delay = min(30.0, 0.5 * (2 ** min(self.restarts, 6))) if quick else 0.2
            print(f"media worker exited with code {code}; restarting in {delay:.1f}s", file=sys.stderr, flush=True)
            self._next_start = now + delay
        if now >= self._next_start:
            self._next_start = 0.0
            self.start()

    def stop(self, timeout: float = 8.0) -> None:
        self.stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
