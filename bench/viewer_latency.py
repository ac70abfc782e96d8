#!/usr/bin/env python
"""Latency to a broadcast's viewer (issue 16): `.venv/bin/python bench/viewer_latency.py [--viewers 1,20] [--write]`.

A media worker (`python -m media`, 2 processes, captions off) on loopback; one participant publishing a
pre-encoded VP8 camera (320×240, 15 fps) and speaking; one participant receiving it (the comparison) and V
viewers (token role "viewer"), all in this process, so one clock times both ends. A frame's latency is
from the moment the publisher's track hands it to its sender to the moment the receiver has the whole frame
(its last RTP packet arrives): network, the worker's forwarding (and, for viewers on the other process, the
pipe between processes). It is not glass-to-glass in the
strict sense: the clip is encoded beforehand and nothing is decoded or shown, so a browser's capture,
encoding, decoding and rendering (typically 50–150 ms together) come on top. Frames are matched by their
first bytes (the worker forwards them unchanged; each frame of the clip starts differently).
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from media import internals, net, tokens  # noqa: E402
from media.recorder import vp8_payload_start  # noqa: E402
from media.client import SyntheticParticipant  # noqa: E402
from media.synthetic import opus_clip, vp8_clip  # noqa: E402
from support import ROOT, commit, loadavg, pct, write_section  # noqa: E402
from tests.liveserver import free_port  # noqa: E402

SECRET = "bench-viewer-latency"
SECTION = "### Latency to a viewer (issue 16)"


PREFIX = 48   # bytes of a frame's start that identify it in the clip


class Clock:
    """When each frame of the publisher's clip was last handed to its sender."""

    def __init__(self, clip: tuple[bytes, ...]) -> None:
        self.index = {frame[:PREFIX]: i for i, frame in enumerate(clip)}
        assert len(self.index) == len(clip), "the clip's frames must be told apart by their first bytes"
        self.sent_at: dict[int, float] = {}

    def watch(self, track) -> None:
        original = track.recv

        async def recv():
            packet = await original()
            self.sent_at[self.index[bytes(packet)[:PREFIX]]] = time.monotonic()
            return packet

        track.recv = recv


def _frame_start(payload: bytes) -> bytes | None:
    """The first bytes of the frame in the first RTP packet of a VP8 frame (RFC 7741: S=1, partition 0)."""
    if not (payload[0] & 0x10) or (payload[0] & 0x07):
        return None
    i = vp8_payload_start(payload)
    return payload[i:i + PREFIX]


def measure_on(p: SyntheticParticipant, clock: Clock, out: list[float]) -> None:
    """Time every video frame `p` receives, from its sending to the arrival of its last packet (the marker
    bit), as RTP packets arrive (aiortc's own frame assembly waits for the next frame's first packet: a
    frame interval that a browser, which reads the marker bit, does not wait)."""
    pending: dict[int, int] = {}   # RTP timestamp → the clip's frame index

    def on_packet(packet) -> None:
        start = _frame_start(packet.payload) if packet.payload else None
        if start is not None and start in clock.index:
            pending[packet.timestamp] = clock.index[start]
        if packet.marker:
            i = pending.pop(packet.timestamp, None)
            if i is not None and i in clock.sent_at:
                out.append(time.monotonic() - clock.sent_at[i])

    original = p._on_track

    def on_track(track) -> None:   # wraps the client's own handler, before the peer connection exists
        original(track)
        if track.kind == "video":
            t = next(x for x in p.pc.getTransceivers() if x.receiver.track is track)
            internals.tap_packets(t.receiver, on_packet)

    p._on_track = on_track


async def run(url: str, viewers: int, window: float) -> dict:
    net.use_addresses(["127.0.0.1"])
    clip = vp8_clip(seconds=4.0, fps=15, width=320, height=240, bitrate=250_000)
    clock = Clock(clip)

    def mint(account: int, role: str) -> str:
        return tokens.mint(SECRET, meeting=1, account=account, name=f"P{account}", role=role, ttl=600)

    speaker = SyntheticParticipant(url, mint(1, "member"), video=clip, audio=opus_clip(), speaking=True)
    clock.watch(speaker.video_track)
    await speaker.start()
    participant_ms: list[float] = []
    listener = SyntheticParticipant(url, mint(2, "member"))
    measure_on(listener, clock, participant_ms)
    await listener.start()
    viewer_ms: list[list[float]] = []
    watchers = []
    for i in range(viewers):
        out: list[float] = []
        v = SyntheticParticipant(url, mint(1000 + i, "viewer"))
        measure_on(v, clock, out)
        await v.start()
        viewer_ms.append(out)
        watchers.append(v)
        await asyncio.sleep(0.05)
    await asyncio.sleep(6)   # keyframes and the first seconds are not counted
    participant_ms.clear()
    for out in viewer_ms:
        out.clear()
    await asyncio.sleep(window)
    for p in (speaker, listener, *watchers):
        await p.close()
    every = [x for out in viewer_ms for x in out]
    return {"viewers": viewers, "participant": participant_ms, "viewer": every,
            "frames_expected": round(15 * window)}


def worker(port: int) -> subprocess.Popen:
    env = dict(os.environ, COLLAB_SECRET_KEY=SECRET, COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", COLLAB_MEDIA_PROCESSES="2", COLLAB_MEDIA_FILL="1",
               COLLAB_CAPTIONS_ENGINE="off")
    env.pop("COLLAB_PUBLIC_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "media", "--skip-self-test", "--log-level", "WARNING"], cwd=ROOT,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the media worker did not start") from None
            time.sleep(0.2)


def ms(values: list[float], p: float) -> str:
    return "–" if not values else f"{1000 * pct(values, p):.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", default="1,20", help="viewer counts, one run each")
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in docs/benchmarks.md")
    args = ap.parse_args()
    started = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    rows = []
    for v in [int(x) for x in args.viewers.split(",")]:
        port = free_port()
        proc = worker(port)
        try:
            before = loadavg()
            r = net.run(run(f"ws://127.0.0.1:{port}/", v, args.window))
            r["load"] = f"{before} → {loadavg()}"
            rows.append(r)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        print(f"{v} viewers: participant p50 {ms(r['participant'], 50)} ms, viewers p50 {ms(r['viewer'], 50)} "
              f"p95 {ms(r['viewer'], 95)} max {ms(r['viewer'], 100)}", flush=True)
    lines = [SECTION, "",
             f"Measured {started}, commit {commit()}, with `bench/viewer_latency.py --viewers {args.viewers}` "
             f"(2 cores; the worker as 2 processes, joins alternating between them; window {args.window:.0f} s). "
             "From the publisher handing a frame to its sender to the arrival of the frame's last packet at the "
             "receiver: loopback and the worker's forwarding (for viewers on the other process, the pipe too). "
             "Not counted: "
             "a browser's capture, encoding, decoding and display (the clip is pre-encoded), typically 50–150 ms "
             "more.", "",
             "| viewers | participant: p50 / p95 / max, ms | viewers: p50 / p95 / max, ms | frames timed per viewer "
             "(of 15/s) | load average before → after |", "|---|---|---|---|---|"]
    for r in rows:
        per = len(r["viewer"]) / max(1, r["viewers"])
        lines.append(f"| {r['viewers']} | {ms(r['participant'], 50)} / {ms(r['participant'], 95)} / "
                     f"{ms(r['participant'], 100)} | {ms(r['viewer'], 50)} / {ms(r['viewer'], 95)} / "
                     f"{ms(r['viewer'], 100)} | {per:.0f} of {r['frames_expected']} | {r['load']} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        write_section(SECTION, report)


if __name__ == "__main__":
    main()
