"""One media worker as several processes ("shards"), so one meeting can use
more than one CPU core — the way mediasoup pipes a room between workers. This
module is the shard side (run as `python -m media.cluster` by the node).

    browser ──WebSocket──▶ node (parent: TCP port, supervision)
                              │ proxies each connection to the first shard with fewer than
                              │ `fill` (COLLAB_MEDIA_FILL, 16), else to the one with the fewest
                              ▼
                  shard 0 ◀──pipes──▶ shard 1 ◀──▶ …   (Unix sockets in a private folder)

- The parent (media/node.py) accepts signalling connections on the public port and relays the
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
  back the same way. Captions, made on the speaker's shard, are relayed to the
  others ("say") for the members there.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import sys
import time
from pathlib import Path

from media import net, selftest
from media.config import WorkerConfig
from media.forwarding import Pkt, Source
from media.members import Participant, RemoteMember
from media.worker import serve

log = logging.getLogger(__name__)

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
            worker.revocations.apply(msg)
        for meeting_id, recording_id in read_recordings(self.rundir).items():   # recordings under way
            worker.recorder.obey({"op": "record", "meeting": int(meeting_id), "recording": recording_id}, None)
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
        for meeting in self.worker.meetings.values():
            for m in meeting.participants():
                if isinstance(m, Participant):
                    pipe.send("join", meeting=meeting.id, member=self._member(m))
                    for (meeting_id, member_id, name), sid in list(self.sid_of.items()):
                        if (meeting_id, member_id) == (meeting.id, m.id):   # its sources and low layers
                            pipe.send("source", meeting=meeting.id, id=m.id, name=name, sid=sid,
                                      kind=self.local_sources[sid][3].kind)
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

    def relay(self, meeting, message: dict) -> None:
        self._broadcast("say", meeting=meeting.id, message=message)

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
        meeting = self.worker.meetings.get(meeting_id)
        m = meeting.members.get(member_id) if meeting else None
        return m if isinstance(m, RemoteMember) and getattr(m, "shard", None) == pipe.peer else None

    def _on_join(self, pipe: Pipe, msg: dict) -> None:
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

    def _on_say(self, pipe: Pipe, msg: dict) -> None:
        """A message from another process for this meeting's members here (a caption)."""
        meeting = self.worker.meetings.get(int(msg["meeting"]))
        if meeting is not None and isinstance(msg.get("message"), dict):
            meeting.broadcast(msg["message"])

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
    config = WorkerConfig.from_env()
    config.self_test = "quick"  # the node ran the full self-test before starting its shards
    path = Path(rundir) / f"signal-{index}.sock"
    if path.exists():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(512)
    cluster = Cluster(index, count, Path(rundir))
    try:
        net.run(serve(config, sock=sock, cluster=cluster))
    except selftest.SelfTestError as err:
        log.critical("SELF-TEST FAILED in shard %s: %s", index, err)
        return 3
    return 0


REVOKED = "revoked.json"
RECORDING = "recording.json"   # meeting → recording under way, for a shard that (re)starts meanwhile


def read_revocations(rundir: Path) -> list[dict]:
    try:
        return json.loads((rundir / REVOKED).read_text())
    except (OSError, ValueError):
        return []


def read_recordings(rundir: Path) -> dict[str, int]:
    try:
        found = json.loads((rundir / RECORDING).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("COLLAB_MEDIA_LOG", "INFO"),
                        format=f"%(asctime)s %(levelname)s shard-{sys.argv[1]} %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    sys.exit(run_shard(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
