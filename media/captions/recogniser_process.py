"""A recogniser in a process of its own.

pocketsphinx (like most engines' Python bindings) holds the GIL while it decodes: run in a thread of the
media worker, a second of speech stopped the worker's event loop, and with it the forwarding of every
meeting, for as long (measured: 5.7 s pauses with one thread busy). So each recogniser (with the Opus
decoder of the utterance it is given) lives in a child process, started once and reused; the worker's
captions threads only send it packets over a pipe and wait for the text, which releases the GIL.

The child is `python -m media.captions.recogniser_process ENGINE [MODEL_DIR]` (not multiprocessing's
spawn, which would re-import whatever script started the worker), speaking pickled messages over its
standard input and output (multiprocessing.connection framing); its standard error is the worker's.
"""
from __future__ import annotations

import os
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from media.captions import engine
from media.captions.audio import OpusToPcm

START_TIMEOUT = 120.0   # seconds for a child to import its engine and load the model
REPLY_TIMEOUT = 60.0    # seconds for one batch (a few hundred ms of audio) at most


def _serve(conn, engine_name: str, model_dir: str | None) -> None:
    """The child: create the recogniser, then answer ("feed", packets, partial?) and ("final", packets)."""
    try:
        rec = engine.create(engine_name, model_dir)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs it
        conn.send(("error", str(exc)))
        return
    decoder = OpusToPcm()
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        op = msg[0]
        if op == "stop":
            return
        try:
            rec.feed(decoder.decode(msg[1]))
            if op == "final":
                text = rec.finish()
                decoder = OpusToPcm()   # the next utterance may be someone else's stream
            else:
                text = rec.partial() if msg[2] else None
            conn.send(("ok", text))
        except Exception as exc:  # noqa: BLE001 - one bad batch: reported, the child carries on
            conn.send(("error", repr(exc)))


class _Pipes:
    """A Connection-like pair over two one-way pipes (the child's stdin and stdout)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._r = Connection(read_fd, writable=False)
        self._w = Connection(write_fd, readable=False)

    def send(self, obj) -> None:
        self._w.send(obj)

    def recv(self):
        return self._r.recv()

    def poll(self, timeout: float) -> bool:
        return self._r.poll(timeout)

    def close(self) -> None:
        for c in (self._w, self._r):
            try:
                c.close()
            except OSError:
                pass


ROOT = Path(__file__).resolve().parent.parent.parent


class RecogniserProcess:
    """The parent's handle on one child recogniser. Blocking calls: made from the captions thread pool."""

    def __init__(self, engine_name: str, model_dir: str | None) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self._proc = subprocess.Popen([sys.executable, "-m", "media.captions.recogniser_process", engine_name,
                                       model_dir or ""], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      cwd=ROOT, env=env, close_fds=True)
        # the Connections own the descriptors from here on
        self._conn = _Pipes(os.dup(self._proc.stdout.fileno()), os.dup(self._proc.stdin.fileno()))
        self._proc.stdout.close()
        self._proc.stdin.close()
        kind, value = self._reply(START_TIMEOUT)
        if kind != "ready":
            self.close()
            raise engine.EngineError(value or "the captions engine did not start")

    def _reply(self, timeout: float):
        if not self._conn.poll(timeout):
            self.close()
            raise TimeoutError("the captions engine did not answer")
        try:
            return self._conn.recv()
        except EOFError:
            self.close()
            raise RuntimeError("the captions engine stopped") from None

    def _ask(self, *msg):
        self._conn.send(msg)
        kind, value = self._reply(REPLY_TIMEOUT)
        if kind == "error":
            raise RuntimeError(value)
        return value

    def feed(self, packets: list[bytes], partial: bool) -> str | None:
        return self._ask("feed", packets, partial)

    def final(self, packets: list[bytes]) -> str:
        return self._ask("final", packets) or ""

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def close(self) -> None:
        try:
            self._conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self._conn.close()
        try:
            self._proc.wait(2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(2)


if __name__ == "__main__":
    # stdout carries the protocol: anything a library prints goes to stderr instead
    _out = os.dup(1)
    os.dup2(2, 1)
    _serve(_Pipes(0, _out), sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "") or None)
