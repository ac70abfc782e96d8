"""The parent of a media worker run as several processes (media/cluster.py has
the shards and the picture): it owns the public TCP port, relays each
signalling connection to a shard, answers `/status` and `/health` itself,
checks a signed `/control` request and passes it to every shard (and writes it
where a shard that starts later finds it), and restarts a shard that dies.
"""
from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from media import control, net, selftest
from media.cluster import RECORDING, REVOKED, read_recordings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


class Node:
    """Public port, relaying each signalling connection to the least busy shard; restarts shards."""

    def __init__(self, config, count: int) -> None:
        self.config = config
        self.count = count
        self.rundir = Path(tempfile.mkdtemp(prefix="collab-media-"))
        os.chmod(self.rundir, 0o700)
        self.procs: list[subprocess.Popen | None] = [None] * count
        self.connections = [0] * count
        self.started = [0.0] * count
        self.stopping = False
        self.gate = control.Gate(config.secret_key)
        self.revoked: list[dict] = []

    def spawn(self, i: int) -> None:
        # a crashed shard leaves its socket behind: gone, `ready` waits for the new one to listen
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.signal_path(i))
        self.started[i] = time.monotonic()
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "media.cluster", str(i), str(self.count), str(self.rundir)], cwd=ROOT)

    def ready(self) -> bool:
        """Every shard is accepting participants (its signalling socket exists)."""
        return all(p is not None and p.poll() is None and os.path.exists(self.signal_path(i))
                   for i, p in enumerate(self.procs))

    def signal_path(self, i: int) -> str:
        return str(self.rundir / f"signal-{i}.sock")

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        first = head.split(b"\r\n", 1)[0].split()
        path, _, query = (first[1] if len(first) > 1 else b"").partition(b"?")
        if b"upgrade: websocket" not in head.lower() and path in (b"/status", b"/health", b"/healthz",
                                                                                  b"/readyz", b"/control"):
            code, answer = await self.answer(path, query.decode("latin-1"), head)
            body = json.dumps(answer).encode()
            writer.write(f"HTTP/1.1 {code} {http.HTTPStatus(code).phrase}\r\n".encode() +
                         b"Content-Type: application/json\r\nCache-Control: no-store\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
            writer.close()
            return
        # Fill a process before using the next (a meeting in one process needs no pipes; one process
        # forwards for `fill` participants well within a core), then spread evenly.
        fill = self.config.fill
        order = sorted(range(self.count), key=lambda i: (self.connections[i] >= fill, self.connections[i] if
                                                         self.connections[i] >= fill else -self.connections[i], i))
        for i in order:
            try:
                r2, w2 = await asyncio.open_unix_connection(self.signal_path(i))
                break
            except OSError:
                continue
        else:
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        self.connections[i] += 1
        w2.write(head)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                try:
                    dst.close()
                except Exception:  # noqa: BLE001
                    pass

        try:
            await asyncio.gather(pump(reader, w2), pump(r2, writer))
        finally:
            self.connections[i] -= 1

    async def answer(self, path: bytes, query: str, head: bytes) -> tuple[int, dict]:
        """/health (open), /status and /control (signed by the web app)."""
        ready = self.ready()
        if path == b"/healthz":  # alive: this process answers, whatever its shards do
            return 200, {"ok": True}
        if path in (b"/health", b"/readyz"):  # ready: every shard accepts participants (no more detail)
            return (200 if ready else 503), {"ok": ready, "ready": ready}
        try:
            msg = self.gate.check(query, op="status" if path == b"/status" else control.CONTROL)
        except control.Refused as err:
            return err.status, {}
        if path == b"/status":
            return 200, {"participants": sum(self.connections), "processes": self.count, "ready": ready,
                         "connections": self.connections,
                         "cpu_seconds": round(time.process_time() + sum(_cpu_seconds(p) for p in self.procs), 3)}
        if msg["op"] in control.REVOKING:
            self.remember(msg)
        if msg["op"] in (*control.RECORDING, "end"):
            self.remember_recording(msg)
        answers = await asyncio.gather(*(self.ask_shard(i, head) for i in range(self.count)))
        ok = all(code == 200 for code, _ in answers)
        return (200 if ok else 502), {"ok": ok, "closed": sum(a.get("closed", 0) for _, a in answers)}

    def remember(self, msg: dict) -> None:
        """Keep a revocation where a shard that starts later finds it (the folder is this node's own)."""
        now = time.time()
        keep = [m for m in self.revoked if m["at"] + control.Revocations.KEEP >= now]
        self.revoked = keep + [{k: msg.get(k) for k in ("op", "meeting", "account", "at", "message")}]
        tmp = self.rundir / (REVOKED + ".tmp")
        tmp.write_text(json.dumps(self.revoked))
        os.replace(tmp, self.rundir / REVOKED)

    def remember_recording(self, msg: dict) -> None:
        """Keep the recordings under way where a shard that (re)starts finds them and records its participants
        too ("record" adds one; "record_stop" and a meeting's "end" take it out)."""
        active = read_recordings(self.rundir)
        key = str(msg["meeting"])
        if msg["op"] == "record":
            active[key] = msg["recording"]
        elif msg["op"] == "end" or active.get(key) == msg.get("recording"):
            active.pop(key, None)
        tmp = self.rundir / (RECORDING + ".tmp")
        tmp.write_text(json.dumps(active))
        os.replace(tmp, self.rundir / RECORDING)

    async def ask_shard(self, i: int, head: bytes) -> tuple[int, dict]:
        """Pass a checked control request to shard `i` (which checks it again); its status and answer."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.signal_path(i))
            try:
                writer.write(head)
                data = await asyncio.wait_for(reader.read(), 5)
            finally:
                writer.close()
            status_line, _, rest = data.partition(b"\r\n")
            body = rest.partition(b"\r\n\r\n")[2]
            return int(status_line.split()[1]), json.loads(body or b"{}")
        except (OSError, TimeoutError, ValueError, IndexError):
            # a shard that is not running holds no sessions, and reads the revocation when it starts
            proc = self.procs[i]
            return (200, {}) if proc is None or proc.poll() is not None else (502, {})

    async def supervise(self) -> None:
        while not self.stopping:
            for i, p in enumerate(self.procs):
                if p is not None and p.poll() is not None and not self.stopping:
                    code = p.returncode
                    if code == 3:
                        log.critical("shard %s failed its self-test; not restarting it", i)
                        self.procs[i] = None
                        continue
                    log.warning("shard %s exited with code %s; restarting", i, code)
                    if time.monotonic() - self.started[i] < 5:
                        await asyncio.sleep(1)
                    self.spawn(i)
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        for i in range(self.count):
            self.spawn(i)
        server = await asyncio.start_server(self.relay, self.config.host, self.config.port, reuse_address=True)
        log.info("media worker node listening on %s:%s with %s processes", self.config.host, self.config.port,
                 self.count)
        watcher = asyncio.ensure_future(self.supervise())
        try:
            await stop
        finally:
            self.stopping = True
            watcher.cancel()
            server.close()
            for p in self.procs:
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in self.procs:
                if p is not None:
                    try:
                        p.wait(timeout=8)
                    except subprocess.TimeoutExpired:
                        p.kill()
            for f in self.rundir.iterdir():
                f.unlink()
            self.rundir.rmdir()


def run_node(config) -> int:
    if config.self_test:
        try:
            log.info("%s", selftest.run_sync())
        except selftest.SelfTestError as err:
            log.critical("SELF-TEST FAILED, not starting: %s", err)
            return 3
    net.run(Node(config, config.processes).run())
    return 0


def _cpu_seconds(proc) -> float:
    """CPU time (user + system) a shard process has used, from /proc (0 where unreadable)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
