"""One media worker process: the signalling WebSocket server and its meetings.

`serve()` runs the start-up self-test, configures where media sockets live,
then accepts participants until stopped. A plain HTTP GET on the same port
answers `/health` and `/healthz` (open: they say nothing but "up"), `/readyz` (open: ready or not, no
detail), and two requests signed by
the web app (media/control.py): `/status` (load, for the web app's choice of
worker) and `/control` ("drop" one account from a meeting, "end" a meeting:
their sessions close now and their older tokens are refused from then on).
"""
from __future__ import annotations

import asyncio
import gc
import http
import json
import logging
import re
import signal
import time
from collections.abc import Callable

from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from media import control, internals, net, selftest, signalling, simulcast
from media.captions.service import captions_for
from media.config import WorkerConfig
from media.meeting import Meeting
from media.recorder import Recorder

log = logging.getLogger(__name__)


class Worker:
    """Meetings of this process. `cluster` (optional) links it to sibling processes."""

    def __init__(self, config: WorkerConfig, cluster=None) -> None:
        self.config = config
        self.meetings: dict[int, Meeting] = {}
        self.cluster = cluster
        self.gate = control.Gate(config.secret_key)
        self.revocations = control.Revocations()
        self.captions = captions_for(config)  # None when COLLAB_CAPTIONS_ENGINE is off
        self.recorder = Recorder(config.recordings_dir, getattr(cluster, "index", 0))

    def meeting(self, meeting_id: int) -> Meeting:
        m = self.meetings.get(meeting_id)
        if m is None:
            m = self.meetings[meeting_id] = Meeting(self, meeting_id)
            if self.cluster:
                self.cluster.meeting_opened(m)
        return m

    def meeting_empty(self, meeting: Meeting) -> None:
        if self.meetings.get(meeting.id) is meeting and not meeting.members:
            del self.meetings[meeting.id]

    # hooks for the cluster (no-ops in a single process)
    def announce(self, meeting: Meeting, event: str, participant) -> None:
        if self.cluster:
            self.cluster.announce(meeting, event, participant)

    def announce_source(self, meeting: Meeting, participant, name: str, source) -> None:
        if name == "audio" and self.captions is not None:  # captions: media/captions/service.py
            self.captions.listen(meeting, participant, source)
        self.recorder.source_added(meeting, participant, name, source)
        if self.cluster:
            self.cluster.announce_source(meeting, participant, name, source)

    def relay(self, meeting: Meeting, message: dict) -> None:
        """Pass a message for the meeting's members to the worker's other processes (media.cluster)."""
        if self.cluster:
            self.cluster.relay(meeting, message)

    def withdraw_source(self, meeting: Meeting, participant, name: str) -> None:
        self.recorder.source_removed(meeting, participant, name)
        if self.cluster:
            self.cluster.withdraw_source(meeting, participant, name)

    def status(self) -> dict:
        """Load (the web app picks the least loaded worker) and what monitoring shows: meetings, people,
        streams forwarded (each published stream to each receiver) and this process's CPU seconds."""
        participants = [p for m in self.meetings.values() for p in m.participants()]
        streams = sum(len(src.sinks) for p in participants for src in p.sources.values())
        return {"meetings": len(self.meetings), "participants": len(participants), "streams": streams,
                "cpu_seconds": round(time.process_time(), 3)}

    def speaking(self, meeting: Meeting) -> None:
        """Who speaks changed (a recording's timeline notes it)."""
        self.recorder.speaking(meeting)

    async def obey(self, msg: dict) -> int:
        """Carry out a checked control message; the number of sessions closed here ("drop", "end",
        "unwatch", "whep_stop"), or of streams now recorded here ("record", "record_stop")."""
        meeting_id, op = msg["meeting"], msg["op"]
        if op in control.RECORDING:
            return self.recorder.obey(msg, self.meetings.get(meeting_id))
        if op == "end":
            self.recorder.stop(meeting_id)
        message = msg["message"]
        self.revocations.apply(msg)
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            return 0
        gone = [p for p in meeting.participants()
                if op == "end" or (op == "unwatch" and p.viewer) or (op == "drop" and p.account == msg["account"])
                or (op == "whep_stop" and p.whep is not None and p.whep == msg["session"])]
        for p in gone:
            await meeting.remove(p, message, code=msg["reason"])
        log.info("%s for meeting %s: closed %s session(s)", msg["op"], meeting_id, len(gone))
        return len(gone)


def _answer(status: int, body: dict | None = None) -> Response:
    data = json.dumps(body if body is not None else {}).encode()
    return Response(status, http.HTTPStatus(status).phrase, Headers([("Content-Type", "application/json"),
                                                                     ("Content-Length", str(len(data))),
                                                                     ("Cache-Control", "no-store")]), data)


_PLAIN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _process_request(worker: Worker, status: Callable[[], dict]):
    async def process_request(connection, request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path, _, query = request.path.partition("?")
        if path in ("/health", "/healthz"):
            return _answer(200, {"ok": True})
        if path == "/readyz":  # one process: serving this answer is being ready; no detail without the secret
            return _answer(200, {"ready": True})
        if path in ("/status", "/control"):
            try:
                msg = worker.gate.check(query, op="status" if path == "/status" else control.CONTROL)
            except control.Refused as err:
                return _answer(err.status)
            if path == "/status":
                return _answer(200, status())
            rid = request.headers.get("X-Request-Id", "")
            if _PLAIN_ID.match(rid):  # the web request that asked (collab/logs.py), checked: it reaches our log
                log.info("%s for meeting %s asked by web request %s", msg["op"], msg["meeting"], rid)
            return _answer(200, {"ok": True, "closed": await worker.obey(msg)})
        return None  # websockets answers 426 Upgrade Required
    return process_request


def prepare(config: WorkerConfig) -> None:
    """Configure the media sockets of this process (host candidates, UDP port range) and make the
    forwarding path cheaper: no receive-side bandwidth estimation, fewer garbage-collector passes."""
    net.use_addresses(config.addresses)
    net.use_port_range(asyncio.get_running_loop(), config.port_range)
    internals.drop_abs_send_time()
    internals.request_opus_dtx()
    simulcast.negotiate_stream_ids()
    # Every packet allocates a few short-lived objects; the default threshold (700) makes the cyclic
    # collector run hundreds of times a second. Objects alive at start-up are frozen out of it.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def serve(config: WorkerConfig, *, sock=None, stop: asyncio.Future | None = None,
                on_ready: Callable[[int], None] | None = None, cluster=None) -> None:
    """Run one worker until `stop` completes (or SIGTERM/SIGINT)."""
    if config.self_test == "quick":
        selftest.check_structure()
        log.info("aiortc internals: names and signatures OK (quick self-test)")
    elif config.self_test:
        report = await selftest.run()
        log.info("%s", report)
    prepare(config)
    worker = Worker(config, cluster)
    if cluster:
        await cluster.start(worker)
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
    origins = (list(config.origins) + [None]) if config.origins else None
    status = cluster.status if cluster else worker.status
    kwargs = {"sock": sock} if sock is not None else {"host": config.host, "port": config.port}
    async with ws_serve(lambda ws: signalling.handle(worker, ws), origins=origins,
                        max_size=signalling.MAX_MESSAGE, compression=None, ping_interval=10, ping_timeout=10,
                        process_request=_process_request(worker, status), **kwargs) as server:
        name = server.sockets[0].getsockname() if server.sockets else (config.host, config.port)
        port = name[1] if isinstance(name, tuple) else config.port
        log.info("media worker listening on %s", f"{name[0]}:{name[1]}" if isinstance(name, tuple) else name)
        if on_ready:
            on_ready(port)
        await stop
        for meeting in list(worker.meetings.values()):
            for p in meeting.participants():
                await meeting.remove(p, "The media server is restarting; reconnecting…")
        if worker.captions is not None:
            worker.captions.close()
        worker.recorder.close()
    if cluster:
        await cluster.stop()
