"""Recording benchmark (issue 16): what recording a meeting costs the media worker, and what composing it costs.

    .venv/bin/python bench/recording.py                                  # N = 10, 20; 3 rounds of 10 s windows
    .venv/bin/python bench/recording.py --participants 10 --rounds 1 --no-write   # a quick look

Why it exists: media/recorder.py records a meeting inside the live worker by muxing the RTP payloads it already
forwards into WebM files, opening no codec. That claim decides whether a 2-core server can record beside its
meetings, so this script measures it against the same worker not recording, in the same run:

- a real worker (bench/media.py's way: `python -m media`, 2 processes, simulcast on as in production, captions off,
  COLLAB_RECORDINGS_DIR in a temporary folder) and N synthetic participants (bench/media.py's client processes:
  pre-encoded VP8 in two simulcast layers and Opus; two speaking, the others' microphones silent, sending DTX);
- per round, on the same connections: a window with recording off, then `record` (the signed /control message
  the web app sends), 2 s for the cameras' keyframes, the same window with it on, `record_stop`, 4.5 s for the
  cameras nobody is shown to be paused again; worker CPU from /proc (bench/media.py `measure`);
- every file written decoded with PyAV in this process (frames counted, decode CPU timed): the check that the
  files are sound, and the price of decoding those streams, next to the price of recording them;
- the largest N's last recording composed as the web app does (`nice python -m rooms.meetings.recording_compose`).
"""
from __future__ import annotations

import support  # noqa: F401  (first: takes bench/ off sys.path, puts the repository on it)

import argparse
import importlib.util
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import av

from rooms.meetings import media_control
from support import ROOT, commit, machine, write_section
from tests.liveserver import free_port

SECTION = "## Recording (issue 16)"
SPEAKERS = (1, 2)
AFTER_RECORD, AFTER_STOP = 2.0, 4.5   # keyframes after `record`; a camera nobody is shown is paused 3 s after stop


def _bench_media():
    """bench/media.py, imported under another name (`media` is the worker's package)."""
    spec = importlib.util.spec_from_file_location("bench_media", Path(__file__).with_name("media.py"))
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bm = _bench_media()


# -- the worker and the meeting --------------------------------------------------------------------------

def start_worker(port: int, processes: int, recordings: Path) -> subprocess.Popen:
    env = dict(os.environ, COLLAB_SECRET_KEY=bm.SECRET, COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", COLLAB_MEDIA_PROCESSES=str(processes),
               COLLAB_MEDIA_SIMULCAST="on", COLLAB_CAPTIONS_ENGINE="off", COLLAB_RECORDINGS_DIR=str(recordings),
               COLLAB_MEDIA_LOG="WARNING")   # the shards' level too (--log-level is the first process's)
    env.pop("COLLAB_PUBLIC_URL", None)
    worker = subprocess.Popen([bm.PY, "-m", "media", "--skip-self-test", "--log-level", "WARNING"], cwd=ROOT,
                              env=env, start_new_session=True)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return worker
        except OSError:
            if time.time() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start")
            time.sleep(0.2)


def join(n: int, port: int, media_file: Path) -> list:
    """N participants, PER_CLIENT_PROCESS to a client process, joining 0.15 s apart (as bench/media.py)."""
    k = -(-n // bm.PER_CLIENT_PROCESS)
    groups = [list(range(1, n + 1))[i::k] for i in range(k)]
    clients = [bm.ClientProcess(["--target", "sfu", "--url", f"ws://127.0.0.1:{port}/", "--ids", ",".join(map(str, g)),
                                 "--speakers", ",".join(map(str, SPEAKERS)), "--media", str(media_file),
                                 "--address", "127.0.0.1", "--simulcast"]) for g in groups]
    for pid in range(1, n + 1):
        clients[(pid - 1) % k].ask(f"join {pid}")
        time.sleep(0.15)
    return clients


def control(port: int, op: str, recording: int) -> int:
    """Send the signed record / record_stop; the worker answers how many streams its processes now record."""
    url = media_control.control_url(f"ws://127.0.0.1:{port}/", bm.SECRET, {"op": op, "meeting": 1,
                                                                         "recording": recording})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["closed"]


def run_meeting(n: int, opts, media_file: Path, recordings: Path) -> dict:
    port = free_port()
    worker = start_worker(port, opts.processes, recordings)
    clients = []
    try:
        pids = [worker.pid, *bm.children(worker.pid)]
        clients = join(n, port, media_file)
        time.sleep(6.0)   # every keyframe, then steady
        rounds = []
        for r in range(1, opts.rounds + 1):
            off = bm.measure(clients, pids, opts.seconds, n, {})
            started = time.time()
            streams = control(port, "record", r)
            time.sleep(AFTER_RECORD)
            on = bm.measure(clients, pids, opts.seconds, n, {})
            control(port, "record_stop", r)
            rounds.append({"off": off, "on": on, "streams": streams, "started": started, "ended": time.time(),
                           "folder": str(recordings / "1" / str(r))})
            print(json.dumps({"n": n, "round": r, "streams": streams, "off": off["sfu_core"], "on": on["sfu_core"]}),
                  flush=True)
            time.sleep(AFTER_STOP)
        return {"n": n, "rounds": rounds}
    finally:
        for c in clients:
            c.close()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(15)


# -- the files -----------------------------------------------------------------------------------------------

def decode_file(path: Path) -> dict:
    """Decode every frame of a recorded file: frames, packets that failed, seconds of media, CPU seconds."""
    frames = errors = 0
    first = last = None
    cpu = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams[0]
        for packet in container.demux(stream):
            try:
                for frame in stream.codec_context.decode(packet):
                    frames += 1
                    first = frame.time if first is None else first
                    last = frame.time
            except av.FFmpegError:
                errors += 1
    return {"frames": frames, "errors": errors, "cpu": time.process_time() - cpu,
            "media": (last - first) if frames > 1 else 0.0}


def stream_class(path: Path) -> str:
    account, kind = path.name.split("-")[:2]
    return "camera" if kind == "video" else "speaking mic" if int(account) in SPEAKERS else "silent mic"


def check_files(meeting: dict) -> dict:
    """Every file of every round decoded; per class of stream: bytes, recorded and media seconds, decode CPU."""
    classes: dict[str, dict] = {}
    files = frames = errors = 0
    for rnd in meeting["rounds"]:
        span = rnd["ended"] - rnd["started"]
        for path in sorted(Path(rnd["folder"]).glob("*.webm")):
            try:
                d = decode_file(path)
            except (av.FFmpegError, OSError, IndexError):   # counted as one failure; the others still checked
                d = {"frames": 0, "errors": 1, "cpu": 0.0, "media": 0.0}
            files, frames, errors = files + 1, frames + d["frames"], errors + d["errors"]
            for name in (stream_class(path), "all"):
                c = classes.setdefault(name, {"files": 0, "bytes": 0, "span": 0.0, "media": 0.0, "cpu": 0.0,
                                              "frames": 0})
                for key, value in (("files", 1), ("bytes", path.stat().st_size), ("span", span),
                                   ("media", d["media"]), ("cpu", d["cpu"]), ("frames", d["frames"])):
                    c[key] += value
    return {"files": files, "frames": frames, "errors": errors, "classes": classes}


def compose(meeting: dict, out: Path) -> dict:
    """The last round's recording composed in a child process, as rooms/meetings/recording_processing.py does."""
    rnd = meeting["rounds"][-1]
    job = {"directory": rnd["folder"], "started_at": rnd["started"], "ended_at": rnd["ended"], "out_path": str(out)}
    before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.run(["nice", "-n", "10", bm.PY, "-m", "rooms.meetings.recording_compose", json.dumps(job)],
                          cwd=ROOT, capture_output=True, text=True)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - wall
    if proc.returncode != 0:
        raise RuntimeError(f"composition failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1].removeprefix("done "))
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return dict(result, n=meeting["n"], cpu=cpu, wall=wall, check=decode_file(out))


# -- the figures -------------------------------------------------------------------------------------------

def summary(meeting: dict) -> dict:
    rounds = meeting["rounds"]
    streams = statistics.median(r["streams"] for r in rounds)
    per = sorted((r["on"]["sfu_core"] - r["off"]["sfu_core"]) / r["streams"] for r in rounds)
    med = lambda key, side: statistics.median(r[side][key] for r in rounds)  # noqa: E731
    return {"n": meeting["n"], "streams": streams, "per": statistics.median(per), "lo": per[0], "hi": per[-1],
            "off": med("sfu_core", "off"), "on": med("sfu_core", "on"), "in_off": med("ingress_bps", "off"),
            "in_on": med("ingress_bps", "on"), "delivered": min(r["on"]["delivered"] for r in rounds),
            "worst": min(r["on"]["worst"] for r in rounds), "waited": max(r["on"]["server_waited"] for r in rounds),
            "load": f"{rounds[0]['off']['load_before']} → {rounds[-1]['on']['load_after']}"}


def kbps(c: dict | None) -> str:
    return f"{8 * c['bytes'] / c['span'] / 1000:.1f}" if c and c["span"] else "–"


def merged(checks: list[dict]) -> dict:
    """The classes of stream over every meeting's files."""
    out: dict[str, dict] = {}
    for chk in checks:
        for name, c in chk["classes"].items():
            for key, value in c.items():
                out.setdefault(name, {}).setdefault(key, 0)
                out[name][key] += value
    return out


def render(meetings: list[dict], checks: list[dict], composed: dict, opts, started: str) -> str:
    pct = bm.fmt_pct
    rows = [summary(m) for m in meetings]
    out = [SECTION, "",
           f"Measured {started} with `bench/recording.py --participants {opts.participants} --seconds {opts.seconds:g} "
           f"--rounds {opts.rounds}` at commit {commit()}; {machine(('aiortc', 'av'))}. A real worker "
           f"({opts.processes} processes, simulcast on, captions off) on 127.0.0.1 and N synthetic participants "
           f"(bench/media.py's client processes, {bm.PER_CLIENT_PROCESS} to a process, on the same 2 cores), each "
           f"publishing pre-encoded VP8 in two layers (320×240 and 160×120, 15 fps) and Opus (a looped tone); "
           f"participants 1 and 2 speak, the other microphones are silent and send DTX (a packet per 400 ms); each "
           f"participant is shown 9 cameras. Per round, on the same connections: a {opts.seconds:g} s window with "
           f"recording off (the baseline: the same worker forwarding), then `record`, {AFTER_RECORD:g} s, the same "
           f"window with it on, `record_stop`; {opts.rounds} rounds. Worker CPU is from /proc (10 ms ticks). A "
           f"*recorded stream* is one file the worker writes: each participant's microphone and its camera's "
           f"160×120 layer (2 N, as the worker's answer to `record` counted them); *per stream* is (worker CPU on − "
           f"off) / streams, cameras and microphones together: the median of the rounds, and their range. Recording "
           f"makes every camera wanted, so a camera nobody is shown (paused while not recording) is sent again: the "
           f"ingress column shows it, and receiving it is part of the figure. *Written*: file sizes / the time from "
           f"`record` to `record_stop`, per stream (files on ext4, through the page cache).",
           "",
           "| N | recorded streams | worker CPU off → on, % of one core (medians) | recording's cost per stream, "
           "median (range) | ingress off → on, Mbit/s | written per stream, kbit/s: camera / speaking mic / "
           "silent mic | files decoded: files / frames / failed packets | frames delivered while recording: "
           "all / worst | load average before → after |",
           "|---|---|---|---|---|---|---|---|---|"]
    for s, chk in zip(rows, checks):
        cl = chk["classes"]
        out.append(f"| {s['n']} | {s['streams']:g} | {pct(s['off'])} → {pct(s['on'])} | {100 * s['per']:.3f} % "
                   f"({100 * s['lo']:.3f} to {100 * s['hi']:.3f} %) | {s['in_off'] / 1e6:.1f} → {s['in_on'] / 1e6:.1f} | "
                   f"{kbps(cl.get('camera'))} / {kbps(cl.get('speaking mic'))} / {kbps(cl.get('silent mic'))} | "
                   f"{chk['files']} / {chk['frames']:,} / {chk['errors']} | {pct(min(s['delivered'], 1))} / "
                   f"{pct(min(s['worst'], 1))} | {s['load']} |")
    dec = merged(checks)
    cost = {"camera": dec["camera"]["cpu"] / dec["camera"]["media"],
            "speaking mic": dec["speaking mic"]["cpu"] / dec["speaking mic"]["media"],
            "all": dec["all"]["cpu"] / dec["all"]["span"]}
    out += ["", "Decoding the same files with PyAV in the benchmark's process after the meetings (every file above; "
                "CPU seconds per second of media, for one stream), against recording's cost per stream:", "",
            "| decoding, per stream | % of one core | " + " | ".join(f"÷ recording's cost at N = {s['n']}" for s in rows)
            + " |", "|---|---|" + "---|" * len(rows)]
    for name, label in (("camera", "a recorded camera (VP8 160×120, 15 fps)"),
                        ("speaking mic", "a speaking microphone (Opus, 50 frames/s)"),
                        ("all", "everything recorded (the mix of the table above)")):
        out.append(f"| {label} | {100 * cost[name]:.3f} % | "
                   + " | ".join(f"{cost[name] / s['per']:.1f}×" if s["per"] > 0 else "–" for s in rows) + " |")
    speed = composed["duration"] / composed["cpu"]
    out += ["", f"Composition as the web app runs it (`nice -n 10 python -m rooms.meetings.recording_compose`, one "
                f"encoding thread): the N = {composed['n']} meeting's last recording, {composed['duration']:.1f} s with "
                f"{composed['tracks']} tracks, into 640×360 10 fps VP8 + Opus: {composed['cpu']:.2f} CPU s "
                f"({composed['wall']:.2f} s wall), **{speed:.1f} s of recording per CPU second**; "
                f"{composed['size'] / 1000:.0f} kB ({8 * composed['size'] / composed['duration'] / 1000:.0f} kbit/s), "
                f"{composed['check']['frames']} frames decoded back ({composed['check']['errors']} failed packets).",
            "", "Conclusion: " + ", ".join(f"at N = {s['n']} recording cost {100 * s['per']:.3f} % of one core per "
                                          f"stream ({100 * s['lo']:.3f} to {100 * s['hi']:.3f} %)" for s in rows)
            + f"; decoding the recorded camera alone costs {100 * cost['camera']:.3f} %, composing runs at "
              f"{speed:.1f}× real time per CPU second."]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", default="10,20", help="meeting sizes N, comma-separated")
    ap.add_argument("--seconds", type=float, default=10.0, help="each measured window (off, then on)")
    ap.add_argument("--rounds", type=int, default=3, help="off/on pairs per N, on the same connections")
    ap.add_argument("--processes", type=int, default=2, help="worker processes")
    ap.add_argument("--json", help="also save the raw figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (the recordings, composed.webm)")
    ap.add_argument("--no-write", action="store_true", help="print the section; leave docs/benchmarks.md alone")
    opts = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tmp = Path(tempfile.mkdtemp(prefix="collab-bench-recording-"))
    media_file = tmp / "clips.pickle"
    bm.encode_media(media_file)
    meetings = [run_meeting(n, opts, media_file, tmp / f"n{n}") for n in map(int, opts.participants.split(","))]
    checks = [check_files(m) for m in meetings]
    composed = compose(meetings[-1], tmp / "composed.webm")
    report = render(meetings, checks, composed, opts, started)
    print(report)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"meetings": meetings, "checks": checks, "composed": composed}, indent=1))
    if opts.keep:
        print(f"recordings kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if not opts.no_write:
        write_section(SECTION, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
