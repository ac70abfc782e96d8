"""One media worker as several processes ("shards"), so one meeting can use
more than one CPU core — the way mediasoup pipes a room between workers.

    browser ──WebSocket──▶ node (parent: TCP port, supervision)
                              │ proxies each connection to the first shard with fewer than
                              │ `fill` (COLLAB_MEDIA_FILL, 16), else to the one with the fewest
                              ▼
                  shard 0 ◀──pipes──▶ shard 1 ◀──▶ …   (Unix sockets in a private folder)

- The parent accepts signalling connections on the public port and relays the
  bytes to the first shard with fewer than `fill` open connections (so a small meeting
  stays in one process and needs no pipes), else to the one with the fewest (signalling is a few
  messages a second; media never passes through the parent). It answers
  `/status` and `/health` itself and restarts a shard that dies. A signed `/control`
  request (media/control.py: drop someone, end a meeting) is checked, then passed to
  every shard, since a meeting's participants and its next joiners may be on any of
  them; the revocations are also written to the private folder, where a restarted
  shard reads them back.
- Each shard runs the ordinary worker (`media.worker.serve`) for the
  participants it was given, plus a `Cluster` that links it to every other
  shard: who joined or left, their state, who is speaking, and which streams
  each shard publishes. A shard subscribes to a stream of another shard only
  while one of its participants has a slot showing it; its RTP packets then
  cross the pipe once per shard, not once per subscriber. Keyframe requests go
  back the same way.
"""
from __future__ import annotations

import asyncio
import http
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from media import control
from media.forwarding import Pkt, Source

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CTRL, PACKET = 1, 3
HEADER = struct.Struct("!IB")          # length of the rest, type
PACKET_HEAD = struct.Struct("!IHIBhB")  # source id, sequence number, timestamp, flags, VP8 picture id, its offset
MARKER, KEY = 0x80, 0x01
MAX_RECORD = 4 * 1024 * 1024
WRITE_HIGH = 8 * 1024 * 1024           # a peer this far behind loses packets (its subscribers ask for keyframes)


# -- records over a pipe -----------------------------------------------------------------------

class Pipe(asyncio.Protocol):
    """A link to one other shard: length-prefixed JSON control records and binary RTP packets."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.transport: asyncio.Transport | None = None
        self.peer: int | None = None
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.packets_out = 0
        self.packets_in = 0
        self.dropped = 0

    # writing (batched: one write per event-loop turn)
    def _queue(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def send(self, op: str, **fields) -> None:
        body = json.dumps(dict(fields, op=op), separators=(",", ":")).encode()
        self._queue(HEADER.pack(len(body) + 1, CTRL) + body)

    def send_packet(self, sid: int, p: Pkt) -> None:
        t = self.transport
        if t is not None and t.get_write_buffer_size() > WRITE_HIGH:
            self.dropped += 1
            return
        self.packets_out += 1
        self._queue(b"".join((HEADER.pack(PACKET_HEAD.size + len(p.payload) + 1, PACKET),
                              PACKET_HEAD.pack(sid, p.seq, p.ts, p.marker | p.key, p.pid, p.pos), p.payload)))

    # reading
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        size = len(buf)
        now = time.monotonic()
        while size - pos >= HEADER.size:
            length, kind = HEADER.unpack_from(buf, pos)
            if length > MAX_RECORD:
                log.error("pipe record too large; closing")
                self.transport.close()
                return
            end = pos + HEADER.size + length - 1
            if end > size:
                break
            start = pos + HEADER.size
            if kind == PACKET:
                sid, seq, ts, flags, pid, pos = PACKET_HEAD.unpack_from(buf, start)
                self.packets_in += 1
                self.cluster.packet_received(self, sid, Pkt(seq, ts, flags & MARKER,
                                                            bytes(buf[start + PACKET_HEAD.size:end]),
                                                            bool(flags & KEY), pid, pos, now))
            else:
                try:
                    self.cluster.control_received(self, json.loads(bytes(buf[start:end])))
                except Exception:
                    log.exception("bad control record from shard %s", self.peer)
            pos = end
        if pos:
            del buf[:pos]

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.cluster.pipe_lost(self)


class PipeSink:
    """Stands in, among a local source's sinks, for all subscribers of one other shard."""

    def __init__(self, pipe: Pipe, sid: int) -> None:
        self.pipe = pipe
        self.sid = sid

    def push(self, p: Pkt) -> None:
        self.pipe.send_packet(self.sid, p)

    def source_closed(self, source: Source) -> None:
        pass


class RemoteSource(Source):
    """A stream published on another shard; subscribed there while it has sinks here."""

    def __init__(self, cluster: Cluster, pipe: Pipe, sid: int, kind: str, label: str) -> None:
        super().__init__(kind, label, request_keyframe=lambda: pipe.send("pli", sid=sid))
        self.cluster = cluster
        self.pipe = pipe
        self.sid = sid

    def attach(self, sink) -> None:
        first = not self.sinks
        super().attach(sink)
        if first and self.sinks:
            self.pipe.send("sub", sid=self.sid)

    def detach(self, sink) -> None:
        super().detach(sink)
        if not self.sinks and not self.closed:
            self.pipe.send("unsub", sid=self.sid)


# -- the shard side ------------------------------------------------------------------------------

class Cluster:
    """Links this shard's worker with the other shards of the node."""

    def __init__(self, index: int, count: int, rundir: Path) -> None:
        self.index = index
        self.count = count
        self.rundir = rundir
        self.worker = None
        self.pipes: dict[int, Pipe] = {}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task] = []
        self._next_sid = 1
        self.local_sources: dict[int, tuple[int, int, str, Source]] = {}  # sid → (meeting, member, name, source)
        self.sid_of: dict[tuple[int, int, str], int] = {}
        self.remote_sources: dict[tuple[int, int], RemoteSource] = {}     # (peer, sid) → source
        self.sinks: dict[tuple[int, int], PipeSink] = {}                   # (peer, sid) → sink in a local source
        self.remote_members: dict[int, set[tuple[int, int]]] = {}          # peer → {(meeting, member)}

    def pipe_path(self, i: int) -> str:
        return str(self.rundir / f"pipe-{i}.sock")

    async def start(self, worker) -> None:
        self.worker = worker
        for msg in read_revocations(self.rundir):  # those sent before this shard (re)started
            if msg["op"] == "drop":
                worker.revocations.drop(msg["meeting"], msg["account"], msg["at"], msg["message"])
            else:
                worker.revocations.end(msg["meeting"], msg["at"], msg["message"])
        loop = asyncio.get_running_loop()
        path = self.pipe_path(self.index)
        if os.path.exists(path):
            os.unlink(path)
        self._server = await loop.create_unix_server(lambda: Pipe(self), path)
        for j in range(self.count):
            if j != self.index:
                self._tasks.append(asyncio.ensure_future(self._dial(j)))

    async def _dial(self, j: int) -> None:
        """The shard with the higher index dials; both sides then say hello."""
        if j > self.index:
            return
        loop = asyncio.get_running_loop()
        while True:
            if j not in self.pipes:
                try:
                    _, pipe = await loop.create_unix_connection(lambda: Pipe(self), self.pipe_path(j))
                    self._hello(pipe)
                except OSError:
                    pass
            await asyncio.sleep(0.3)

    def _hello(self, pipe: Pipe) -> None:
        pipe.send("hello", shard=self.index)

    def _roster_to(self, pipe: Pipe) -> None:
        from media.members import Participant

        for meeting in self.worker.meetings.values():
            for m in meeting.participants():
                if isinstance(m, Participant):
                    pipe.send("join", meeting=meeting.id, member=self._member(m))
                    for name in m.sources:
                        sid = self.sid_of.get((meeting.id, m.id, name))
                        if sid:
                            pipe.send("source", meeting=meeting.id, id=m.id, name=name, sid=sid,
                                      kind=m.sources[name].kind)
                    if m.speaking:
                        pipe.send("speaking", meeting=meeting.id, id=m.id, speaking=True)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._server:
            self._server.close()
        for p in list(self.pipes.values()):
            if p.transport:
                p.transport.close()

    # -- events of local participants (called by the worker) ---------------------------------
    @staticmethod
    def _member(m) -> dict:
        return dict(m.public(), order=m.order)

    def _broadcast(self, op: str, **fields) -> None:
        for pipe in self.pipes.values():
            pipe.send(op, **fields)

    def meeting_opened(self, meeting) -> None:
        pass

    def announce(self, meeting, event: str, participant) -> None:
        if event in ("join", "state"):
            self._broadcast(event, meeting=meeting.id, member=self._member(participant))
        elif event == "leave":
            self._broadcast("leave", meeting=meeting.id, id=participant.id)
        elif event == "speaking":
            self._broadcast("speaking", meeting=meeting.id, id=participant.id, speaking=participant.speaking)

    def announce_source(self, meeting, participant, name: str, source: Source) -> None:
        sid = self._next_sid
        self._next_sid += 1
        self.local_sources[sid] = (meeting.id, participant.id, name, source)
        self.sid_of[(meeting.id, participant.id, name)] = sid
        self._broadcast("source", meeting=meeting.id, id=participant.id, name=name, sid=sid, kind=source.kind)

    def withdraw_source(self, meeting, participant, name: str) -> None:
        sid = self.sid_of.pop((meeting.id, participant.id, name), None)
        if sid is None:
            return
        self.local_sources.pop(sid, None)
        for key in [k for k in self.sinks if k[1] == sid]:
            del self.sinks[key]
        self._broadcast("unsource", sid=sid)

    # -- records from other shards ------------------------------------------------------------
    def control_received(self, pipe: Pipe, msg: dict) -> None:
        op = msg.get("op")
        if op == "hello":
            pipe.peer = int(msg["shard"])
            old = self.pipes.get(pipe.peer)
            if old is not None and old is not pipe and old.transport:
                old.transport.close()
            self.pipes[pipe.peer] = pipe
            if pipe.peer < self.index:
                pass  # we dialled and said hello first; they answer with theirs
            else:
                self._hello(pipe)
            self._roster_to(pipe)
            return
        if pipe.peer is None:
            return
        handler = getattr(self, f"_on_{op}", None)
        if handler:
            handler(pipe, msg)

    def _remote(self, pipe: Pipe, meeting_id: int, member_id: int):
        from media.members import RemoteMember

        meeting = self.worker.meetings.get(meeting_id)
        m = meeting.members.get(member_id) if meeting else None
        return m if isinstance(m, RemoteMember) and getattr(m, "shard", None) == pipe.peer else None

    def _on_join(self, pipe: Pipe, msg: dict) -> None:
        from media.members import RemoteMember

        data = msg["member"]
        meeting = self.worker.meeting(int(msg["meeting"]))
        m = self._remote(pipe, meeting.id, data["id"])
        if m is None:
            m = RemoteMember(meeting, data["id"], data["name"], data["role"])
            m.shard = pipe.peer
            m.order = data.get("order", m.order)
            self._apply_state(m, data)
            self.remote_members.setdefault(pipe.peer, set()).add((meeting.id, m.id))
            meeting.add_remote(m)
        else:
            self._apply_state(m, data)

    @staticmethod
    def _apply_state(m, data: dict) -> None:
        m.audio, m.video, m.screen = bool(data["audio"]), bool(data["video"]), bool(data["screen"])

    def _on_state(self, pipe: Pipe, msg: dict) -> None:
        m = self._remote(pipe, int(msg["meeting"]), msg["member"]["id"])
        if m is not None:
            self._apply_state(m, msg["member"])
            m.meeting.member_changed(m)

    def _on_leave(self, pipe: Pipe, msg: dict) -> None:
        m = self._remote(pipe, int(msg["meeting"]), int(msg["id"]))
        if m is not None:
            self.remote_members.get(pipe.peer, set()).discard((m.meeting.id, m.id))
            self._drop_remote_sources(pipe, m)
            asyncio.ensure_future(m.meeting.remove(m))

    def _drop_remote_sources(self, pipe: Pipe, m) -> None:
        for key, src in list(self.remote_sources.items()):
            if key[0] == pipe.peer and src.label.startswith(f"{m.meeting.id}:{m.id}:"):
                del self.remote_sources[key]

    def _on_speaking(self, pipe: Pipe, msg: dict) -> None:
        m = self._remote(pipe, int(msg["meeting"]), int(msg["id"]))
        if m is not None:
            m.set_speaking(bool(msg["speaking"]), time.monotonic())

    def _on_source(self, pipe: Pipe, msg: dict) -> None:
        m = self._remote(pipe, int(msg["meeting"]), int(msg["id"]))
        if m is None:
            return
        name, sid = msg["name"], int(msg["sid"])
        src = RemoteSource(self, pipe, sid, msg["kind"], f"{m.meeting.id}:{m.id}:{name}")
        old = m.sources.get(name)
        if old is not None:
            old.close()
        m.sources[name] = src
        self.remote_sources[(pipe.peer, sid)] = src
        m.meeting.source_added(m, name, src)

    def _on_unsource(self, pipe: Pipe, msg: dict) -> None:
        src = self.remote_sources.pop((pipe.peer, int(msg["sid"])), None)
        if src is None:
            return
        for meeting in self.worker.meetings.values():
            for m in meeting.members.values():
                for name, s in list(m.sources.items()):
                    if s is src:
                        del m.sources[name]
                        meeting.schedule_update()
        src.close()

    def _on_sub(self, pipe: Pipe, msg: dict) -> None:
        sid = int(msg["sid"])
        entry = self.local_sources.get(sid)
        if entry is None:
            return
        sink = self.sinks.get((pipe.peer, sid))
        if sink is None:
            sink = self.sinks[(pipe.peer, sid)] = PipeSink(pipe, sid)
        entry[3].attach(sink)  # a video source asks its publisher for a keyframe

    def _on_unsub(self, pipe: Pipe, msg: dict) -> None:
        sid = int(msg["sid"])
        sink = self.sinks.pop((pipe.peer, sid), None)
        entry = self.local_sources.get(sid)
        if sink is not None and entry is not None:
            entry[3].detach(sink)

    def _on_pli(self, pipe: Pipe, msg: dict) -> None:
        entry = self.local_sources.get(int(msg["sid"]))
        if entry is not None:
            entry[3].request_keyframe()

    def packet_received(self, pipe: Pipe, sid: int, p: Pkt) -> None:
        src = self.remote_sources.get((pipe.peer, sid))
        if src is not None:
            src.feed(p)

    def pipe_lost(self, pipe: Pipe) -> None:
        peer = pipe.peer
        if peer is None or self.pipes.get(peer) is not pipe:
            return
        del self.pipes[peer]
        log.warning("lost the pipe to shard %s", peer)
        for key in [k for k in self.sinks if k[0] == peer]:
            sink = self.sinks.pop(key)
            entry = self.local_sources.get(key[1])
            if entry is not None:
                entry[3].detach(sink)
        for key in [k for k in self.remote_sources if k[0] == peer]:
            self.remote_sources.pop(key).close()
        for meeting_id, member_id in self.remote_members.pop(peer, set()):
            meeting = self.worker.meetings.get(meeting_id)
            m = meeting.members.get(member_id) if meeting else None
            if m is not None and getattr(m, "shard", None) == peer:
                asyncio.ensure_future(meeting.remove(m))

    def status(self) -> dict:
        return self.worker.status() if self.worker else {}


def run_shard(index: int, count: int, rundir: str) -> int:
    """Entry point of one shard process (started by the node)."""
    from media import selftest
    from media.config import WorkerConfig
    from media.worker import serve

    config = WorkerConfig.from_env()
    config.self_test = "quick"  # the node ran the full self-test before starting its shards
    path = Path(rundir) / f"signal-{index}.sock"
    if path.exists():
        path.unlink()
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(512)
    cluster = Cluster(index, count, Path(rundir))
    try:
        from media import net

        net.run(serve(config, sock=sock, cluster=cluster))
    except selftest.SelfTestError as err:
        log.critical("SELF-TEST FAILED in shard %s: %s", index, err)
        return 3
    return 0


REVOKED = "revoked.json"


def read_revocations(rundir: Path) -> list[dict]:
    try:
        return json.loads((rundir / REVOKED).read_text())
    except (OSError, ValueError):
        return []


# -- the node (parent) ----------------------------------------------------------------------------

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
        if b"upgrade: websocket" not in head.lower() and path in (b"/status", b"/health", b"/control"):
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
        if path == b"/health":
            return (200 if ready else 503), {"ok": ready}
        try:
            msg = self.gate.check(query, op="status" if path == b"/status" else ("drop", "end"))
        except control.Refused as err:
            return err.status, {}
        if path == b"/status":
            return 200, {"participants": sum(self.connections), "processes": self.count, "ready": ready,
                         "connections": self.connections}
        self.remember(msg)
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
    from media import selftest

    if config.self_test:
        try:
            log.info("%s", selftest.run_sync())
        except selftest.SelfTestError as err:
            log.critical("SELF-TEST FAILED, not starting: %s", err)
            return 3
    from media import net

    net.run(Node(config, config.processes).run())
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("COLLAB_MEDIA_LOG", "INFO"),
                        format=f"%(asctime)s %(levelname)s shard-{sys.argv[1]} %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    sys.exit(run_shard(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
