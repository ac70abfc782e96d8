"""Media benchmark (issue 5): the meetings SFU under N synthetic participants,
and the same fan-out through Janus VideoRoom for comparison.

    .venv/bin/python bench/media.py                       # N = 2, 10, 25, 50 + largest N at >= 98 %, Janus
    .venv/bin/python bench/media.py --sizes 2,4 --window 8 --no-janus --no-search   # a quick look
    .venv/bin/python bench/media.py --write               # also replace "## Media (issue 5)" in docs/benchmarks.md
    .venv/bin/python bench/media.py --simulcast 25,50 --write   # only the simulcast comparison (issue 15), its section

Each participant is an aiortc client in a separate process from the SFU (several
participants share a client process). It sends a VP8 320×240 15 fps clip and
Opus that were encoded once with PyAV (no encoding while running), marks two of
the participants as speakers (RFC 6464 audio level), and counts the frames it
receives without decoding them (the same decoder-queue tap the SFU uses).

Measured per N, over a steady window after everyone joined:
- SFU CPU: user+system time of every worker process / window (% of one core, and of the machine);
- frames delivered: received / expected for every (subscriber, forwarded stream) pair that stayed
  assigned during the window (video 15/s, Opus 50/s); the worst subscriber is reported too;
- join-to-first-frame: from opening the WebSocket to the first video frame received.

Traffic stays on 127.0.0.1 (the SFU run) or inside a network namespace this
script creates and removes (the Janus run: Janus and its clients on a veth pair
that exists only inside the namespace). Nothing is sent to any other address.
"""
from __future__ import annotations

import sys
from pathlib import Path

import support  # noqa: F401  (first: takes bench/ off sys.path (bench/http.py), puts the repository on it)

import argparse
import asyncio
import json
import math
import os
import pickle
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

from support import ROOT, cpu_seconds, write_section  # noqa: E402
from tests.liveserver import free_port  # noqa: E402

PY = sys.executable
SECRET = "bench-media-secret"
VIDEO_FPS = 15
AUDIO_FPS = 50
NETNS_JANUS, NETNS_CLIENTS = "collab-bench-janus", "collab-bench-clients"  # two namespaces, one veth pair
NS_JANUS, NS_CLIENT = "10.77.0.1", "10.77.0.2"
PER_CLIENT_PROCESS = 3  # synthetic participants per client process


# -- helpers ----------------------------------------------------------------------------------

def runqueue_wait(pids: list[int]) -> float:
    """Seconds these processes spent runnable but waiting for a CPU (/proc/<pid>/schedstat)."""
    total = 0.0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")  # every thread (Janus has many)
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
    return total


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def wait_for_quiet(threshold: float | None, longest: float) -> None:
    """Wait (at most `longest` s) until the 1-minute load average is below `threshold`."""
    if not threshold:
        return
    deadline = time.time() + longest
    while float(loadavg().split()[0]) >= threshold and time.time() < deadline:
        time.sleep(5)


def encode_media(path: Path) -> None:
    from media.synthetic import opus_clip, vp8_clip

    video = vp8_clip(seconds=4.0, fps=VIDEO_FPS, width=320, height=240, bitrate=250_000)
    low = vp8_clip(seconds=4.0, fps=VIDEO_FPS, width=160, height=120, bitrate=80_000)   # simulcast's low layer
    audio = opus_clip(seconds=1.0)
    path.write_bytes(pickle.dumps({"video": video, "low": low, "audio": audio}))


# -- client processes -------------------------------------------------------------------------------

class ClientProcess:
    """A process hosting some synthetic participants, driven over stdin/stdout JSON lines."""

    def __init__(self, args: list[str], netns: bool = False) -> None:
        cmd = [PY, str(Path(__file__).resolve()), "client", *args]
        if netns:
            cmd = ["ip", "netns", "exec", NETNS_CLIENTS, *cmd]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def ask(self, cmd: str, timeout: float = 120) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def read(self, timeout: float = 120) -> dict:
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("client process did not answer")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"client process exited ({self.proc.poll()})")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.ask("stop", timeout=20)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def client_main(opts) -> None:
    """Runs inside a client process."""
    from media import internals, net

    net.use_addresses([opts.address])
    internals.drop_abs_send_time()  # same for both servers: no receive-side REMB estimation in the clients
    media = pickle.loads(Path(opts.media).read_bytes())
    speakers = {int(x) for x in opts.speakers.split(",") if x}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    parts = []

    def out(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            break
        cmd, _, arg = line.partition(" ")
        if cmd == "join":
            pid = int(arg)
            if opts.target == "sfu":
                from media import tokens
                from media.client import SyntheticParticipant

                tok = tokens.mint(SECRET, meeting=1, account=pid, name=f"P{pid}", role=opts.role, ttl=600)
                if opts.role == "viewer":   # a broadcast's viewer: sends nothing, receives the stage and audio
                    p = SyntheticParticipant(opts.url, tok)
                    if opts.light:   # bench/light_viewer.py: counted off the wire once connected
                        count_only = support.local("light_viewer").count_only

                        async def lighten(p=p, count_only=count_only):
                            await p.connected.wait()
                            count_only(p)
                        asyncio.ensure_future(lighten())
                elif opts.simulcast:   # both layers, as a browser publishes (one when the worker offers one)
                    p = SyntheticParticipant(opts.url, tok, audio=media["audio"], speaking=pid in speakers,
                                             layers={"l": media["low"], "h": media["video"]})
                else:
                    p = SyntheticParticipant(opts.url, tok, video=media["video"], audio=media["audio"],
                                             speaking=pid in speakers)
                p.bench_id = pid
                await p.start()
            else:
                p = JanusParticipant(opts.url, opts.room, pid, media, speaking=pid in speakers,
                                     simulcast=opts.simulcast)
                await p.publish()
            parts.append(p)
            out({"joined": pid})
        elif cmd == "subscribe":  # Janus only: the feeds each participant should receive
            plan = json.loads(arg)
            # a camera nobody receives is paused, as the SFU's clients (and browsers) pause one the worker
            # says nobody is shown: both servers then take in the same cameras
            shown = {s[0] for streams in plan.values() for s in streams if s[1] == "video"}
            for p in parts:
                for track in p.video_tracks:
                    track.paused = p.pid not in shown
            await asyncio.gather(*(p.subscribe(plan[str(p.pid)]) for p in parts))
            out({"subscribed": len(parts)})
        elif cmd == "mark":
            snaps = {}
            for p in parts:
                snap = snapshot(p)
                snap["packets_sent"] = await packets_sent(p)
                snap["rx_bytes"], snap["tx_bytes"] = await transport_bytes(p)
                snaps[str(getattr(p, "bench_id", getattr(p, "pid", 0)))] = snap
            out({"t": time.time(), "parts": snaps})
    for p in parts:
        try:
            await (p.leave() if hasattr(p, "leave") else p.close())
        except Exception:  # noqa: BLE001
            pass
    out({"stopped": True})


async def packets_sent(p) -> int | None:
    pc = getattr(p, "pc", None)
    if pc is None or getattr(p, "video_track", None) is None:
        return None
    for t in pc.getTransceivers():
        if t.sender.track is p.video_track:
            stats = await t.sender.getStats()
            return sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")
    return None


async def transport_bytes(p) -> tuple[int | None, int | None]:
    """Bytes this participant's connection received and sent (its DTLS transport's count: RTP, RTCP and all)."""
    pcs = getattr(p, "pcs", None) or ([p.pc] if getattr(p, "pc", None) is not None else [])
    if not pcs:
        return None, None
    received = sent = 0
    for pc in pcs:   # Janus: one connection to publish, one to subscribe
        for s in (await pc.getStats()).values():
            if s.type == "transport":
                received, sent = received + s.bytesReceived, sent + s.bytesSent
    layered = sum(layer.bytes_sent for layer in getattr(p, "layers", ()))   # written past the transport's count
    return received, sent + layered


def snapshot(p) -> dict:
    assigned = []
    if hasattr(p, "slots"):
        assigned = [f"{s['participant']}:{s['source']}" for s in p.slots.values() if s]
    else:
        assigned = list(p.assigned)
    video = getattr(p, "video_track", None)
    return {"frames": {f"{k[0]}:{k[1]}": v for k, v in p.frames.items()}, "assigned": assigned,
            "widths": {f"{k[0]}:{k[1]}": v for k, v in getattr(p, "widths", {}).items()},
            "sent_video": video.sent if video else None,
            "joined_at": p.joined_at, "first_video": min((t for k, t in p.first_frame_at.items()
                                                          if k[1] == "video"), default=None)}


# -- Janus VideoRoom client (bench only) ----------------------------------------------------------------

class JanusParticipant:
    """Publishes the same pre-encoded clips to Janus VideoRoom and subscribes to chosen feeds."""

    def __init__(self, url: str, room: int, pid: int, media: dict, speaking: bool, simulcast: bool = False) -> None:
        from collections import defaultdict

        from media.client import LayerSender

        self.url, self.room, self.pid = url, room, pid
        self.media = media
        self.speaking = speaking
        # simulcast: the same two layers the SFU's publishers send ("l" 160×120, "h" 320×240), each with its
        # RID in the rtp-stream-id extension (media.client.LayerSender, as a browser sends them). Listed high
        # first: Janus reads a=simulcast's RIDs from high to low (as janus.js offers them); listed low first,
        # its substream 0 was the 320×240 layer.
        self.layers = [LayerSender("h", media["video"]), LayerSender("l", media["low"])] if simulcast else []
        self._layer_tasks: list = []
        self.substreams: dict[int, int] = {}   # feed → the substream asked for (simulcast only)
        self.widths: dict = {}                  # (feed, "video") → width of the last keyframe received
        self.frames = defaultdict(int)
        self.first_frame_at: dict = {}
        self.assigned: set[str] = set()
        self.joined_at = None
        self._tx = 0
        self._waiting: dict[str, asyncio.Future] = {}
        self.pcs = []
        self.video_tracks: list = []   # what this participant's camera sends (one clip, or its layers)

    async def _request(self, payload: dict, want_event: bool = False) -> dict:
        self._tx += 1
        tx = f"t{self._tx}"
        payload = dict(payload, transaction=tx)
        if hasattr(self, "session"):
            payload.setdefault("session_id", self.session)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[tx] = fut
        fut.want_event = want_event  # type: ignore[attr-defined]
        await self.ws.send(json.dumps(payload))
        return await asyncio.wait_for(fut, 60)

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            tx = msg.get("transaction")
            fut = self._waiting.get(tx)
            if fut is None or fut.done():
                continue
            if msg.get("janus") == "ack" and fut.want_event:  # type: ignore[attr-defined]
                continue
            self._waiting.pop(tx, None)
            fut.set_result(msg)

    async def publish(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        from aiortc.rtcconfiguration import RTCBundlePolicy
        from websockets.asyncio.client import connect

        from media import internals, simulcast
        from media.client import SyntheticParticipant
        from media.forwarding import IdleTrack
        from media.synthetic import ClipTrack

        if self.layers:
            simulcast.negotiate_stream_ids()
        self.ws = await connect(self.url, subprotocols=["janus-protocol"], max_size=2**22, compression=None)
        self.joined_at = time.time()
        self._reader = asyncio.ensure_future(self._read())
        self.session = (await self._request({"janus": "create"}))["data"]["id"]
        self.pub = (await self._request({"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
        await self._request({"janus": "message", "handle_id": self.pub, "body": {
            "request": "join", "room": self.room, "ptype": "publisher", "id": self.pid, "display": f"P{self.pid}"}},
            want_event=True)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pcs.append(pc)
        audio = ClipTrack("audio", self.media["audio"], silent=lambda: not self.speaking)
        ta = pc.addTransceiver(audio, direction="sendonly")
        if self.layers:   # the layers write their own RTP once the (idle) sender starts
            self.video_tracks = [layer.track for layer in self.layers]
            tv = pc.addTransceiver(IdleTrack("video"), direction="sendonly")
            SyntheticParticipant._start_layers(self, tv)
        else:
            video = ClipTrack("video", self.media["video"])
            self.video_tracks = [video]
            tv = pc.addTransceiver(video, direction="sendonly")
            internals.on_keyframe_request(tv.sender, video.restart_gop)
        # pre-encoded Opus carries no level; add it as a browser would (same helper as the SFU client)
        SyntheticParticipant._send_audio_level(self, ta.sender)
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        if self.layers:   # what a browser's offer says when it sends simulcast (aiortc's does not)
            sdp = SyntheticParticipant._promise_layers(self, sdp, tv.mid)
        ev = await self._request({"janus": "message", "handle_id": self.pub,
                                  "body": {"request": "publish", "audio": True, "video": True},
                                  "jsep": {"type": "offer", "sdp": sdp}}, want_event=True)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="answer"))
        await self._trickle_done(self.pub)
        for _ in range(400):  # Janus lists a feed once its media is up
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"publisher {self.pid} did not connect to Janus ({pc.connectionState})")

    async def subscribe(self, streams: list[list]) -> None:
        """streams: [[feed id, "audio"|"video"], …] or, with simulcast, [feed id, "video", substream]
        (0 the low layer, 1 the high one)."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        from aiortc.rtcconfiguration import RTCBundlePolicy

        from media import internals
        from media.client import vp8_width

        if not streams:
            return
        handle = (await self._request({"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
        ev = await self._request({"janus": "message", "handle_id": handle, "body": {
            "request": "join", "room": self.room, "ptype": "subscriber",
            "streams": [{"feed": s[0], "mid": "0" if s[1] == "audio" else "1"} for s in streams]}},
            want_event=True)
        data = ev["plugindata"]["data"]
        if "jsep" not in ev:
            raise RuntimeError(f"Janus refused the subscription: {data}")
        by_mid = {s["mid"]: (s.get("feed_id"), s["type"]) for s in data.get("streams", [])}
        self.assigned = {f"{f}:{'audio' if t == 'audio' else 'video'}" for f, t in by_mid.values() if f}
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track):
            t = next(x for x in pc.getTransceivers() if x.receiver.track is track)
            feed, kind = by_mid.get(t.mid, (None, None))
            key = (feed, "audio" if kind == "audio" else "video")

            def on_frame(codec, frame, key=key):
                self.frames[key] += 1
                self.first_frame_at.setdefault(key, time.time())
                width = vp8_width(frame.data) if key[1] == "video" and frame is not None else None
                if width:   # a keyframe
                    self.widths[key] = width

            internals.tap_receiver(t.receiver, on_frame)
            if track.kind == "video":  # like a browser, do not wait ~17 s behind a lost packet
                internals.skip_video_holes(t.receiver)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._request({"janus": "message", "handle_id": handle, "body": {"request": "start"},
                             "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}}, want_event=True)
        await self._trickle_done(handle)
        wanted = {s[0]: s[2] for s in streams if len(s) > 2}
        if wanted:   # Janus starts every subscriber on the highest substream
            mids = {feed: mid for mid, (feed, kind) in by_mid.items() if kind == "video"}
            self.substreams = wanted
            await self._request({"janus": "message", "handle_id": handle, "body": {
                "request": "configure",
                "streams": [{"mid": mids[f], "substream": sub} for f, sub in wanted.items() if f in mids]}},
                want_event=True)

    async def _trickle_done(self, handle: int) -> None:
        """aiortc puts every candidate in the SDP: tell Janus there are no more to come."""
        await self._request({"janus": "trickle", "handle_id": handle, "candidate": {"completed": True}})

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        await self.ws.close()


# -- one measured run ---------------------------------------------------------------------------------

def evaluate(first: dict, second: dict, window: float, kind_rates=None) -> dict:
    """Delivery from two snapshots of all participants."""
    kind_rates = kind_rates or {"video": VIDEO_FPS, "screen": VIDEO_FPS, "audio": AUDIO_FPS}
    received = expected = 0
    worst = 1.0
    streams = {"video": 0, "audio": 0}
    hist = [0, 0, 0]  # (subscriber, stream) pairs below 50 %, 50-90 %, at least 90 % of expected frames
    for pid, a in first.items():
        b = second[pid]
        stable = set(a["assigned"]) & set(b["assigned"])
        got = exp = 0
        for key in stable:
            kind = key.split(":")[1]
            streams["audio" if kind == "audio" else "video"] += 1
            g = b["frames"].get(key, 0) - a["frames"].get(key, 0)
            e = kind_rates[kind] * window
            hist[0 if g < 0.5 * e else 1 if g < 0.9 * e else 2] += 1
            got += g
            exp += e
        if exp:
            worst = min(worst, got / exp)
        received += got
        expected += exp
    return {"received": received, "expected": round(expected), "delivered": received / expected if expected else 0,
            "worst": worst, "video_streams": streams["video"], "audio_streams": streams["audio"],
            "pairs_below_50_50to90_above_90": hist}


VIEWER_BASE = 100_000        # viewers' account ids start here
VIEWERS_PER_PROCESS = 25


def _run_sfu(n: int, processes: int, window: float, media_file: Path, *, video_slots: int = 9,
            client_procs: int | None = None, warmup: float = 6.0, simulcast: bool = False, viewers: int = 0,
            light: bool = False) -> dict:
    port = free_port()
    env = dict(os.environ, COLLAB_SECRET_KEY=SECRET, COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", COLLAB_MEDIA_VIDEO_SLOTS=str(video_slots),
               COLLAB_MEDIA_PROCESSES=str(processes), COLLAB_MEDIA_SIMULCAST="on" if simulcast else "off",
               COLLAB_CAPTIONS_ENGINE="off")   # forwarding only, as Janus does: captions have their own figures
    env.pop("COLLAB_PUBLIC_URL", None)
    sfu = subprocess.Popen([PY, "-m", "media", "--skip-self-test", "--log-level", "WARNING"], cwd=ROOT, env=env,
                           start_new_session=True)
    clients: list[ClientProcess] = []
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or sfu.poll() is not None:
                    raise RuntimeError("the SFU did not start")
                time.sleep(0.2)
        sfu_pids = [sfu.pid, *children(sfu.pid)]
        speakers = [1, 2] if n >= 3 else [1]
        k = client_procs or max(1, math.ceil(n / PER_CLIENT_PROCESS))
        groups = [list(range(1, n + 1))[i::k] for i in range(k)]
        clients = [ClientProcess(["--target", "sfu", "--url", f"ws://127.0.0.1:{port}/", "--ids",
                                  ",".join(map(str, g)), "--speakers", ",".join(map(str, speakers)),
                                  "--media", str(media_file), "--address", "127.0.0.1",
                                  *(["--simulcast"] if simulcast else [])]) for g in groups]
        owner = {pid: c for c, g in zip(clients, groups) for pid in g}
        for pid in range(1, n + 1):  # join one by one, a little apart, as people do
            owner[pid].ask(f"join {pid}")
            time.sleep(0.15)
        ids = list(range(VIEWER_BASE + 1, VIEWER_BASE + viewers + 1))
        vk = math.ceil(viewers / VIEWERS_PER_PROCESS)
        vgroups = [ids[i::vk] for i in range(vk)]
        watchers = [ClientProcess(["--target", "sfu", "--url", f"ws://127.0.0.1:{port}/", "--ids", ",".join(map(str, g)),
                                   "--media", str(media_file), "--address", "127.0.0.1", "--role", "viewer",
                                   *(["--light"] if light else [])])
                    for g in vgroups]
        clients += watchers
        for group, c in zip(vgroups, watchers):
            for vid in group:
                c.ask(f"join {vid}")
                time.sleep(0.03)
        time.sleep(warmup + viewers / 50)   # every viewer's keyframe, then a steady window
        return measure(clients, sfu_pids, window, n, extra={"processes": processes, "simulcast": simulcast,
                                                           "viewers": viewers})
    finally:
        for c in clients:
            c.close()
        os.killpg(sfu.pid, signal.SIGTERM)
        try:
            sfu.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(sfu.pid, signal.SIGKILL)
            sfu.wait()


def measure(clients: list[ClientProcess], server_pids: list[int], window: float, n: int, extra: dict) -> dict:
    client_pids = [c.proc.pid for c in clients] + [p for c in clients for p in children(c.proc.pid)]
    load_before = loadavg()
    c0, k0, t0 = cpu_seconds(server_pids), cpu_seconds(client_pids), time.time()
    w0s, w0c = runqueue_wait(server_pids), runqueue_wait(client_pids)
    first = {}
    for c in clients:
        first.update(c.ask("mark")["parts"])
    time.sleep(window)
    second = {}
    for c in clients:
        second.update(c.ask("mark")["parts"])
    elapsed = time.time() - t0
    c1, k1 = cpu_seconds(server_pids), cpu_seconds(client_pids)
    waited_server = (runqueue_wait(server_pids) - w0s) / elapsed
    waited_clients = (runqueue_wait(client_pids) - w0c) / elapsed
    viewing = {k for k in first if int(k) >= VIEWER_BASE}
    result = evaluate({k: v for k, v in first.items() if k not in viewing},
                      {k: v for k, v in second.items() if k not in viewing}, window)
    if viewing:   # the broadcast's viewers, apart from the participants
        result["viewer"] = evaluate({k: first[k] for k in viewing}, {k: second[k] for k in viewing}, window)
    sent = [b["sent_video"] - first[k]["sent_video"] for k, b in second.items() if b.get("sent_video") is not None]
    result["sent_fps"] = round(sum(sent) / len(sent) / elapsed, 2) if sent else None
    pk = [b["packets_sent"] - first[k]["packets_sent"] for k, b in second.items() if b.get("packets_sent") is not None]
    result["sent_video_pps"] = round(sum(pk) / len(pk) / elapsed, 2) if pk else None
    # What the server sent to all subscribers (egress) and received from all publishers, bits per second.
    for field, name in (("rx_bytes", "egress_bps"), ("tx_bytes", "ingress_bps")):
        got = [b[field] - first[k][field] for k, b in second.items()
               if b.get(field) is not None and first.get(k, {}).get(field) is not None]
        result[name] = 8 * sum(got) / elapsed if got else None
    widths: dict[str, int] = {}   # received cameras by the width of their last keyframe (which layer arrived)
    for b in second.values():
        for w in b.get("widths", {}).values():
            widths[str(w)] = widths.get(str(w), 0) + 1
    result["widths"] = widths
    joins = sorted(second.items(), key=lambda kv: kv[1]["joined_at"])
    ttff = [p["first_video"] - p["joined_at"] for _, p in joins[1:] if p["first_video"]]
    missing = sum(1 for _, p in joins[1:] if not p["first_video"])
    ncpu = os.cpu_count() or 1
    streams = result["video_streams"] + result["audio_streams"]
    result.update(extra, n=n, window=round(elapsed, 1),
                  sfu_core=(c1 - c0) / elapsed, sfu_machine=(c1 - c0) / elapsed / ncpu,
                  clients_core=(k1 - k0) / elapsed, per_stream=(c1 - c0) / elapsed / streams if streams else None,
                  ttff_median=statistics.median(ttff) if ttff else None, ttff_max=max(ttff) if ttff else None,
                  ttff_missing=missing, load_before=load_before, load_after=loadavg(),
                  server_waited=waited_server, clients_waited=waited_clients)
    return result


# -- Janus --------------------------------------------------------------------------------------------

JANUS_JCFG = """general: {{
    configs_folder = "{conf}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{empty}"
    loggers_folder = "{empty}"
    log_to_stdout = true
    debug_level = {debug}
    session_timeout = 0
    server_name = "collab-bench"
    interface = "{ip}"
}}
media: {{
    ipv6 = false
    rtp_port_range = "20000-40000"
}}
nat: {{
    ice_enforce_list = "m5a"
    full_trickle = false
}}
plugins: {{
}}
transports: {{
}}
events: {{
    broadcast = false
}}
"""
JANUS_WS = """general: {{
    json = "compact"
    ws = true
    ws_port = {port}
    ws_ip = "{ip}"
}}
admin: {{
    admin_ws = false
}}
"""
JANUS_VIDEOROOM = """general: {
}
"""


def netns_up() -> None:
    """Janus in one namespace, its clients in another, joined by a veth pair: nothing else can be reached."""
    netns_down()
    for cmd in (["ip", "netns", "add", NETNS_JANUS],
                ["ip", "netns", "add", NETNS_CLIENTS],
                ["ip", "-n", NETNS_JANUS, "link", "set", "lo", "up"],
                ["ip", "-n", NETNS_CLIENTS, "link", "set", "lo", "up"],
                ["ip", "-n", NETNS_JANUS, "link", "add", "m5a", "type", "veth", "peer", "name", "m5b", "netns",
                 NETNS_CLIENTS],
                ["ip", "-n", NETNS_JANUS, "addr", "add", f"{NS_JANUS}/24", "dev", "m5a"],
                ["ip", "-n", NETNS_CLIENTS, "addr", "add", f"{NS_CLIENT}/24", "dev", "m5b"],
                ["ip", "-n", NETNS_JANUS, "link", "set", "m5a", "up"],
                ["ip", "-n", NETNS_CLIENTS, "link", "set", "m5b", "up"]):
        subprocess.run(cmd, check=True)


def netns_down() -> None:
    for ns in (NETNS_JANUS, NETNS_CLIENTS):
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def run_janus(n: int, window: float, media_file: Path, *, video_slots: int = 9, warmup: float = 6.0,
              simulcast: bool = False) -> dict:
    """The same fan-out as the SFU run of size n: each participant receives the cameras of the
    first `video_slots` other participants (speakers first) and the speakers' audio. With simulcast every
    participant publishes both layers and receives the first of those cameras (a speaker's: the stage) in
    the high one, the others in the low one, as the SFU forwards them."""
    tmp = Path(tempfile.mkdtemp(prefix="collab-janus-"))
    for d in ("conf", "plugins", "transports", "empty"):
        (tmp / d).mkdir()
    lib = Path("/usr/lib/x86_64-linux-gnu/janus")
    (tmp / "plugins" / "libjanus_videoroom.so").symlink_to(lib / "plugins" / "libjanus_videoroom.so")
    (tmp / "transports" / "libjanus_websockets.so").symlink_to(lib / "transports" / "libjanus_websockets.so")
    port = 8188
    (tmp / "conf" / "janus.jcfg").write_text(JANUS_JCFG.format(debug=os.environ.get("BENCH_JANUS_DEBUG", "3"), ip=NS_JANUS, conf=tmp / "conf", plugins=tmp / "plugins",
                                                               transports=tmp / "transports", empty=tmp / "empty"))
    (tmp / "conf" / "janus.transport.websockets.jcfg").write_text(JANUS_WS.format(port=port, ip=NS_JANUS))
    (tmp / "conf" / "janus.plugin.videoroom.jcfg").write_text(JANUS_VIDEOROOM)
    netns_up()
    log = open(tmp / "janus.log", "w")
    janus = subprocess.Popen(["ip", "netns", "exec", NETNS_JANUS, "janus", "-F", str(tmp / "conf"), "-C",
                              str(tmp / "conf" / "janus.jcfg")], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    clients: list[ClientProcess] = []
    try:
        time.sleep(2)
        janus_pids = [p for p in [janus.pid, *children(janus.pid)]]
        room = 4242
        url = f"ws://{NS_JANUS}:{port}/"
        create_room(url, room)
        speakers = [1, 2] if n >= 3 else [1]
        k = max(1, math.ceil(n / PER_CLIENT_PROCESS))
        groups = [list(range(1, n + 1))[i::k] for i in range(k)]
        clients = [ClientProcess(["--target", "janus", "--url", url, "--room", str(room), "--ids",
                                  ",".join(map(str, g)), "--speakers", ",".join(map(str, speakers)),
                                  "--media", str(media_file), "--address", NS_CLIENT,
                                  *(["--simulcast"] if simulcast else [])], netns=True) for g in groups]
        owner = {pid: c for c, g in zip(clients, groups) for pid in g}
        for pid in range(1, n + 1):
            owner[pid].ask(f"join {pid}")
            time.sleep(0.15)
        # the same selection the SFU makes: speakers first, then earliest joiners; speakers' audio
        order = speakers + [p for p in range(1, n + 1) if p not in speakers]
        plan = {}
        for pid in range(1, n + 1):
            vids = [p for p in order if p != pid][:video_slots]
            plan[str(pid)] = ([[p, "video", int(i == 0)] if simulcast else [p, "video"] for i, p in enumerate(vids)]
                              + [[s, "audio"] for s in speakers if s != pid])
        for c in clients:
            c.ask("subscribe " + json.dumps(plan), timeout=300)
        time.sleep(warmup)
        janus_pids = [janus.pid, *children(janus.pid)]
        return measure(clients, janus_pids, window, n, extra={"processes": 1, "simulcast": simulcast})
    except Exception:
        log.flush()
        print("Janus log (last lines):\n" + (tmp / "janus.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        for c in clients:
            c.close()
        os.killpg(janus.pid, signal.SIGTERM)
        try:
            janus.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(janus.pid, signal.SIGKILL)
            janus.wait()
        log.close()
        netns_down()
        shutil.rmtree(tmp, ignore_errors=True)


def create_room(url: str, room: int) -> None:
    """Create the VideoRoom (from inside the namespace, through a client process)."""
    code = ("import asyncio, json, sys\n"
            "from websockets.asyncio.client import connect\n"
            "async def main():\n"
            f"    async with connect({url!r}, subprotocols=['janus-protocol']) as ws:\n"
            "        async def req(p):\n"
            "            await ws.send(json.dumps(p))\n"
            "            while True:\n"
            "                m = json.loads(await ws.recv())\n"
            "                if m.get('transaction') == p['transaction'] and m.get('janus') != 'ack':\n"
            "                    return m\n"
            "        s = (await req({'janus': 'create', 'transaction': 'a'}))['data']['id']\n"
            "        h = (await req({'janus': 'attach', 'plugin': 'janus.plugin.videoroom', 'session_id': s,"
            " 'transaction': 'b'}))['data']['id']\n"
            f"        r = await req({{'janus': 'message', 'session_id': s, 'handle_id': h, 'transaction': 'c',"
            f" 'body': {{'request': 'create', 'room': {room}, 'publishers': 200, 'videocodec': 'vp8',"
            f" 'audiocodec': 'opus', 'bitrate': 0, 'notify_joining': False}}}})\n"
            "        print(json.dumps(r))\n"
            "asyncio.run(main())\n")
    out = subprocess.run(["ip", "netns", "exec", NETNS_CLIENTS, PY, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=30)
    if "created" not in out.stdout:
        raise RuntimeError(f"could not create the Janus room: {out.stdout} {out.stderr}")


# -- report ----------------------------------------------------------------------------------------

def fmt_pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def table(results: list[dict]) -> str:
    lines = ["| N | server processes | forwarded streams (video + audio) | server CPU, % of one core (of machine) "
             "| CPU per forwarded stream | frames delivered: all / worst subscriber | stream pairs < 50 % / "
             "50–90 % / ≥ 90 % | join → first frame, median / max | clients' CPU, % of one core "
             "| waited for a CPU, server / clients (s per s) | load average before → after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ttff = "–" if r["ttff_median"] is None else f"{r['ttff_median']:.2f} s / {r['ttff_max']:.2f} s"
        if r.get("ttff_missing"):
            ttff += f" ({r['ttff_missing']} without video)"
        per = "–" if r["per_stream"] is None else f"{100 * r['per_stream']:.3f} %"
        hist = " / ".join(str(x) for x in r.get("pairs_below_50_50to90_above_90", []))
        lines.append(
            f"| {r['n']} | {r['processes']} | {r['video_streams'] + r['audio_streams']} ({r['video_streams']} + "
            f"{r['audio_streams']}) | {fmt_pct(r['sfu_core'])} ({fmt_pct(r['sfu_machine'])}) | {per} | "
            f"{fmt_pct(min(r['delivered'], 1.0))} / {fmt_pct(min(r['worst'], 1.0))} | {hist} | {ttff} | "
            f"{fmt_pct(r['clients_core'])} | {r.get('server_waited', 0):.2f} / {r.get('clients_waited', 0):.2f} | "
            f"{r['load_before']} → {r['load_after']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    c = sub.add_parser("client")
    c.add_argument("--target", choices=["sfu", "janus"], required=True)
    c.add_argument("--url", required=True)
    c.add_argument("--room", type=int, default=0)
    c.add_argument("--ids", required=True)
    c.add_argument("--speakers", default="")
    c.add_argument("--media", required=True)
    c.add_argument("--address", required=True)
    c.add_argument("--simulcast", action="store_true")
    c.add_argument("--role", choices=["member", "viewer"], default="member")
    c.add_argument("--light", action="store_true", help="viewers counted off the wire (bench/light_viewer.py)")
    ap.add_argument("--sizes", default="2,10,25,50")
    ap.add_argument("--processes", default="2", help="SFU processes for the meeting (1, 2, … or auto)")
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--no-janus", action="store_true")
    ap.add_argument("--janus-sizes", default="10,25")
    ap.add_argument("--no-search", action="store_true", help="skip the search for the largest N at >= 98 %%")
    ap.add_argument("--simulcast", metavar="SIZES",
                    help="only compare the SFU with simulcast off and on at these N (e.g. 25,50): egress, CPU, delivery")
    ap.add_argument("--viewers", metavar="SIZES",
                    help="only the broadcast: a 20-person meeting and this many viewers (e.g. 50,100,200; issue 16)")
    ap.add_argument("--light-viewers", action="store_true",
                    help="with --viewers: viewers counted off the wire (bench/light_viewer.py), so the load "
                         "generator fits beside the worker")
    ap.add_argument("--write", action="store_true", help="replace the Media section of docs/benchmarks.md")
    ap.add_argument("--json", help="also save raw results here")
    ap.add_argument("--quiet-load", type=float, default=None,
                    help="before each run wait until the 1-minute load average is below this (shared machines)")
    ap.add_argument("--quiet-wait", type=float, default=300, help="longest wait for --quiet-load, seconds")
    opts = ap.parse_args()
    if opts.mode == "client":
        from media import net

        net.run(client_main(opts))  # uvloop, like the worker
        return 0

    import logging

    logging.basicConfig(level=logging.WARNING)
    processes = os.cpu_count() if opts.processes == "auto" else int(opts.processes)
    tmp = Path(tempfile.mkdtemp(prefix="collab-bench-media-"))
    media_file = tmp / "clips.pickle"
    encode_media(media_file)
    started = time.strftime("%Y-%m-%d %H:%M")
    if opts.simulcast:
        return simulcast_comparison(opts, processes, media_file, tmp, started)
    if opts.viewers:
        return viewers_run(opts, processes, media_file, tmp, started)
    results: list[dict] = []
    def run_sfu(n, *args, **kwargs):  # noqa: F811 - the same run, after waiting for a quieter machine
        wait_for_quiet(opts.quiet_load, opts.quiet_wait)
        return _run_sfu(n, *args, **kwargs)

    for n in [int(x) for x in opts.sizes.split(",")]:
        r = run_sfu(n, processes, opts.window, media_file)
        print(json.dumps(r), flush=True)
        results.append(r)
    largest = None
    if not opts.no_search:
        ok = [r["n"] for r in results if r["worst"] >= 0.98]
        bad = [r["n"] for r in results if r["worst"] < 0.98]
        lo, hi = (max(ok) if ok else 1), (min(n for n in bad if n > (max(ok) if ok else 1)) if bad else None)
        if hi is None:  # everything passed: go further up
            n = lo
            while n < 120:
                n += 10
                r = run_sfu(n, processes, opts.window, media_file)
                print(json.dumps(r), flush=True)
                results.append(r)
                if r["worst"] < 0.98:
                    break
                lo = n
            largest = lo
        else:
            while hi - lo > 5:
                mid = (lo + hi) // 2
                r = run_sfu(mid, processes, opts.window, media_file)
                print(json.dumps(r), flush=True)
                results.append(r)
                lo, hi = (mid, hi) if r["worst"] >= 0.98 else (lo, mid)
            largest = lo
    janus_results: list[dict] = []
    if not opts.no_janus:
        if shutil.which("janus") is None:
            print("janus is not installed (apt-get install janus): no comparison", flush=True)
        else:
            for n in [int(x) for x in opts.janus_sizes.split(",")]:
                wait_for_quiet(opts.quiet_load, opts.quiet_wait)
                r = run_janus(n, opts.window, media_file)
                print(json.dumps(dict(r, server="janus")), flush=True)
                janus_results.append(r)
    shutil.rmtree(tmp, ignore_errors=True)
    report = render(results, janus_results, largest, processes, opts, started)
    print(report)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"sfu": results, "janus": janus_results, "largest": largest}, indent=1))
    if opts.write:
        write_section("## Media (issue 5)", report)
    return 0


def simulcast_comparison(opts, processes: int, media_file: Path, tmp: Path, started: str) -> int:
    """The same meeting with simulcast off and then on, at each N (issue 15)."""
    rows = []
    janus = not opts.no_janus and shutil.which("janus") is not None
    if not opts.no_janus and not janus:
        print("janus is not installed (apt-get install janus): no comparison", flush=True)
    for n in [int(x) for x in opts.simulcast.split(",")]:
        for on in (False, True):
            wait_for_quiet(opts.quiet_load, opts.quiet_wait)
            r = dict(_run_sfu(n, processes, opts.window, media_file, simulcast=on), server="sfu")
            print(json.dumps(r), flush=True)
            rows.append(r)
        if janus:   # the same simulcast cameras, the same layers to the same subscribers
            wait_for_quiet(opts.quiet_load, opts.quiet_wait)
            r = dict(run_janus(n, opts.window, media_file, simulcast=True), server="janus")
            print(json.dumps(r), flush=True)
            rows.append(r)
    shutil.rmtree(tmp, ignore_errors=True)
    report = render_simulcast(rows, processes, opts, started)
    print(report)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"simulcast": rows}, indent=1))
    if opts.write:
        write_section(SIMULCAST_SECTION, report)
    return 0


SIMULCAST_SECTION = "### Simulcast: egress and CPU with and without (issue 15)"
VIEWERS_SECTION = "### Broadcast viewers beside a 20-person meeting (issue 16)"
MEETING = 20


def viewers_run(opts, processes: int, media_file: Path, tmp: Path, started: str) -> int:
    """A 20-person meeting (9 cameras shown, two speakers) and V broadcast viewers, for each V."""
    rows = []
    for v in [int(x) for x in opts.viewers.split(",")]:
        wait_for_quiet(opts.quiet_load, opts.quiet_wait)
        r = _run_sfu(MEETING, processes, opts.window, media_file, simulcast=True, viewers=v, light=opts.light_viewers)
        print(json.dumps(r), flush=True)
        rows.append(r)
    shutil.rmtree(tmp, ignore_errors=True)
    report = render_viewers(rows, processes, opts, started)
    print(report)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"viewers": rows}, indent=1))
    if opts.write:
        write_section(VIEWERS_SECTION, report)
    return 0


def render_viewers(rows: list[dict], processes: int, opts, started: str) -> str:
    out = [VIEWERS_SECTION, "",
           f"Measured {started} with `bench/media.py --viewers {opts.viewers}"
           f"{' --light-viewers' if opts.light_viewers else ''}` ({os.cpu_count()} cores; {processes} "
           f"worker processes; window {opts.window:.0f} s; simulcast on, captions off). The meeting: {MEETING} "
           f"participants as in the Media table (two speaking, every camera shown to the nine most recent speakers' "
           f"subscribers); then V viewers (token role \"viewer\"), {VIEWERS_PER_PROCESS} per client process, each "
           f"receiving the stage (the active speaker's camera, high layer) and the speakers' audio. The viewers are "
           f"spread over the worker's processes (COLLAB_MEDIA_FILL), so most of them receive the stage through the "
           f"pipe between processes. *Delivered* counts frames against 15 video and 50 audio frames per second per "
           f"stream."
           + (" The viewers are light (bench/light_viewer.py): signalling, ICE, DTLS and SRTP decryption as any "
              "viewer, each packet counted per stream off the wire, without aiortc's frame reassembly or receiver "
              "reports, so that the load generator fits beside the worker." if opts.light_viewers else ""), "",
           "| viewers | server CPU, % of one core | CPU per added viewer (from the row above) | "
           "viewers' frames delivered: all / worst | "
           "participants' frames: all / worst | clients' CPU, % of one core | waited for a CPU, server / clients "
           "(s per s) | load average before → after |",
           "|---|---|---|---|---|---|---|---|"]
    previous = None
    for r in rows:
        v = r.get("viewer") or {}
        per = ((r["sfu_core"] - previous["sfu_core"]) / (r["viewers"] - previous["viewers"])
               if previous and r["viewers"] > previous["viewers"] else None)
        previous = r
        out.append(f"| {r['viewers']} | {fmt_pct(r['sfu_core'])} | {'–' if per is None else f'{100 * per:.2f} %'} | "
                   f"{fmt_pct(v.get('delivered', 0))} / {fmt_pct(min(v.get('worst', 0), 1.0))} | "
                   f"{fmt_pct(min(r['delivered'], 1.0))} / {fmt_pct(min(r['worst'], 1.0))} | "
                   f"{fmt_pct(r['clients_core'])} | {r.get('server_waited', 0):.2f} / {r.get('clients_waited', 0):.2f} | "
                   f"{r['load_before']} → {r['load_after']} |")
    out.append("")
    return "\n".join(out)


def render_simulcast(rows: list[dict], processes: int, opts, started: str) -> str:
    out = [SIMULCAST_SECTION, "",
           f"Measured {started} with `bench/media.py --simulcast {opts.simulcast}` ({os.cpu_count()} cores; "
           f"{processes} worker processes; window {opts.window:.0f} s). The meeting of the Media table above, run "
           f"twice per N on the SFU: publishers send one VP8 layer 320×240 (~250 kbit/s) with simulcast off, and that "
           f"layer plus a 160×120 one (~80 kbit/s) with it on; the worker gives the stage (the active speaker) the "
           f"high layer and the other eight thumbnails the low one. Then Janus VideoRoom 1.1.2 with the same "
           f"simulcast cameras (both layers, RIDs in the rtp-stream-id extension, every participant publishing, as "
           f"on the SFU) and each subscriber asking for the same layers (`configure` with `substream`: a speaker's "
           f"camera high, the other eight low), in two network namespaces as in the Media section. Egress is what "
           f"every subscriber's connections received (RTP and RTCP, from their transports), ingress what every "
           f"publisher's sent; *layers received* counts the cameras subscribers received by the width of their last "
           f"keyframe.", "",
           "| N | server | simulcast | egress, Mbit/s (per subscriber) | ingress, Mbit/s | forwarded streams "
           "(video + audio) | layers received: 320 / 160 | server CPU, % of one core | CPU per forwarded stream "
           "| frames delivered: all / worst | load average before → after |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        eg, ing = r.get("egress_bps"), r.get("ingress_bps")
        per_sub = f"{eg / r['n'] / 1e6:.2f}" if eg else "–"
        per = "–" if r["per_stream"] is None else f"{100 * r['per_stream']:.3f} %"
        widths = r.get("widths") or {}
        out.append(f"| {r['n']} | {'Janus' if r.get('server') == 'janus' else 'SFU'} | "
                   f"{'on' if r['simulcast'] else 'off'} | "
                   f"{'–' if eg is None else f'{eg / 1e6:.1f}'} ({per_sub}) | {'–' if ing is None else f'{ing / 1e6:.1f}'} | "
                   f"{r['video_streams'] + r['audio_streams']} ({r['video_streams']} + {r['audio_streams']}) | "
                   f"{widths.get('320', 0)} / {widths.get('160', 0)} | "
                   f"{fmt_pct(r['sfu_core'])} | {per} | {fmt_pct(min(r['delivered'], 1.0))} / "
                   f"{fmt_pct(min(r['worst'], 1.0))} | {r['load_before']} → {r['load_after']} |")
    by = {(r["n"], r.get("server", "sfu"), r["simulcast"]): r for r in rows}
    out.append("")
    for n in sorted({r["n"] for r in rows}):
        off, on, janus = by.get((n, "sfu", False)), by.get((n, "sfu", True)), by.get((n, "janus", True))
        if off and on and off.get("egress_bps") and on.get("egress_bps"):
            out.append(f"- N = {n}: simulcast sends {on['egress_bps'] / off['egress_bps']:.2f}× the egress of "
                       f"one layer; the server's CPU {on['sfu_core'] / off['sfu_core']:.2f}×.")
        if on and janus and on["per_stream"] and janus["per_stream"]:
            out.append(f"- N = {n}, simulcast on both: SFU CPU per forwarded stream {on['per_stream'] / janus['per_stream']:.2f}× "
                       f"Janus's ({100 * on['per_stream']:.3f} % against {100 * janus['per_stream']:.3f} %; "
                       f"issue 15's bar: ≤ 1.3×).")
    out.append("")
    return "\n".join(out)


def render(results, janus_results, largest, processes, opts, started) -> str:
    ncpu = os.cpu_count()
    out = ["## Media (issue 5)", "",
           f"Measured {started} with `bench/media.py` on this machine ({ncpu} cores, shared with other work: the load "
           f"average before and after each run is in the table). Each run: N aiortc participants in separate client "
           f"processes, each sending pre-encoded VP8 320×240 15 fps (~220 kbps) and Opus; two of them speaking; "
           f"every participant receives the 9 most recent speakers' cameras (fewer when N ≤ 10) and the "
           f"speakers' audio. Window {opts.window:.0f} s after everyone joined. The synthetic participants behave as "
           f"the meeting page makes browsers behave: a silent microphone sends Opus DTX (a packet per 400 ms) and a "
           f"camera nobody is shown is paused when the worker asks. *Waited for a CPU* is the time the processes "
           f"were ready to run but had no core (`/proc/<pid>/schedstat`), in seconds per second summed over the "
           f"processes: on this shared machine it is the price of other people's work, and where it is high the "
           f"delivery figures measure the machine, not the SFU.", "",
           f"### The SFU ({processes} worker process{'es' if processes > 1 else ''} for the meeting)", "",
           table(sorted(results, key=lambda r: r["n"])), ""]
    if largest is not None:
        out += [f"Largest N at which every subscriber still got ≥ 98 % of its expected frames: **{largest}**"
                f"{' (searched up to 120)' if largest >= 120 else ''}.", ""]
    if janus_results:
        out += ["### Janus VideoRoom 1.1.2, the same fan-out", "",
                "Janus and its clients ran in two private network namespaces joined by a veth pair (nothing else "
                "reachable); "
                "each client subscribed to exactly the streams the SFU forwarded to it at the same N.", "",
                table(janus_results), "", "| N | SFU CPU per forwarded stream | Janus CPU per forwarded stream | ratio |",
                "|---|---|---|---|"]
        for j in janus_results:
            ours = next((r for r in results if r["n"] == j["n"]), None)
            if ours and ours["per_stream"] and j["per_stream"]:
                out.append(f"| {j['n']} | {100 * ours['per_stream']:.3f} % | {100 * j['per_stream']:.3f} % | "
                           f"{ours['per_stream'] / j['per_stream']:.2f}× |")
        out.append("")
    return "\n".join(out)



if __name__ == "__main__":
    sys.exit(main())
