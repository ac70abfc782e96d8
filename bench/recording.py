"""Recording benchmark (issue 16): what recording a meeting costs the media worker, and what composing it costs.

    .venv/bin/python bench/recording.py                    # N = 10, 20; 4 rounds of 10 s windows; writes the section
    .venv/bin/python bench/recording.py --participants 4 --rounds 1 --seconds 4 --no-write   # a quick look

Why: media/recorder.py records inside the live worker by muxing the RTP payloads it forwards, opening no codec;
whether a 2-core server can record beside its meetings rests on that. In one run: a real worker and N synthetic
participants (bench/media.py's), each round a window with recording off (the baseline) and one with it on, on the
same connections (worker CPU from /proc: the difference / recorded streams); every file written decoded with PyAV
(frames counted; decode CPU) and replayed through media/recorder.py's TrackWriter (the recorder's own CPU, without
the worker's noise); the largest N's last recording composed as the web app does.
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
from types import SimpleNamespace

import av

from media.forwarding import CLOCK_RATE, Pkt
from media.recorder import MeetingRecording, TrackWriter
from rooms.meetings import media_control
from support import ROOT, commit, machine, write_section
from tests.liveserver import free_port

SECTION = "## Recording (issue 16)"
SPEAKERS = (1, 2)
AFTER_RECORD, AFTER_STOP = 2.0, 4.5   # keyframes after `record`; cameras nobody is shown are paused 3 s after stop
CLASSES = {"camera": "camera (VP8 160×120, 15 fps)", "speaking mic": "speaking microphone (Opus, 50 packets/s)",
           "silent mic": "silent microphone (Opus DTX)", "all": "every recorded stream (the mix above, per stream)"}


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
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", COLLAB_MEDIA_PROCESSES=str(processes), COLLAB_MEDIA_SIMULCAST="on",
               COLLAB_CAPTIONS_ENGINE="off", COLLAB_RECORDINGS_DIR=str(recordings), COLLAB_MEDIA_LOG="WARNING")
    env.pop("COLLAB_PUBLIC_URL", None)
    worker = subprocess.Popen([bm.PY, "-m", "media", "--skip-self-test"], cwd=ROOT, env=env, start_new_session=True)
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
    """N participants with simulcast cameras, PER_CLIENT_PROCESS to a client process, joining 0.15 s apart."""
    k = -(-n // bm.PER_CLIENT_PROCESS)
    clients = [bm.ClientProcess(["--target", "sfu", "--url", f"ws://127.0.0.1:{port}/", "--ids",
                                 ",".join(map(str, range(i + 1, n + 1, k))), "--speakers", ",".join(map(str, SPEAKERS)),
                                 "--media", str(media_file), "--address", "127.0.0.1", "--simulcast"])
               for i in range(k)]
    for pid in range(1, n + 1):
        clients[(pid - 1) % k].ask(f"join {pid}")
        time.sleep(0.15)
    return clients


def control(port: int, op: str, recording: int) -> int:
    """The signed record / record_stop; the worker answers how many streams its processes now record."""
    message = {"op": op, "meeting": 1, "recording": recording}
    url = media_control.control_url(f"ws://127.0.0.1:{port}/", bm.SECRET, message)
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())["closed"]


def run_meeting(n: int, opts, media_file: Path, recordings: Path) -> dict:
    port = free_port()
    worker = start_worker(port, opts.processes, recordings)
    clients = []
    try:
        pids = [worker.pid, *bm.children(worker.pid)]
        clients = join(n, port, media_file)
        time.sleep(6.0)   # every keyframe, then steady
        rounds = []
        for r in range(1, opts.rounds + 1):   # off, on; then on, off: a drift over the run cancels out
            first_off = r % 2 == 1
            off = bm.measure(clients, pids, opts.seconds, n, {}) if first_off else None
            started = time.time()
            streams = control(port, "record", r)
            time.sleep(AFTER_RECORD)
            on = bm.measure(clients, pids, opts.seconds, n, {})
            control(port, "record_stop", r)
            ended = time.time()
            time.sleep(AFTER_STOP)
            off = off or bm.measure(clients, pids, opts.seconds, n, {})
            rounds.append({"off": off, "on": on, "streams": streams, "started": started, "ended": ended,
                           "folder": str(recordings / "1" / str(r))})
            print(json.dumps({"n": n, "round": r, "streams": streams, "off": off["sfu_core"], "on": on["sfu_core"]}),
                  flush=True)
        return {"n": n, "rounds": rounds}
    finally:
        for c in clients:
            c.close()
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


# -- the files -----------------------------------------------------------------------------------------------

def decode_file(path: Path) -> dict:
    """Decode every frame of a file: frames, packets that failed, seconds of media, CPU seconds."""
    frames = errors = 0
    first = last = None
    cpu = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams[0]
        for packet in container.demux(stream):
            try:
                for frame in stream.codec_context.decode(packet):
                    frames, first, last = frames + 1, frame.time if first is None else first, frame.time
            except av.FFmpegError:
                errors += 1
    return {"frames": frames, "errors": errors, "decode": time.process_time() - cpu,
            "media": (last - first) if frames > 1 else 0.0}


def rtp_packets(path: Path) -> tuple[str, list[Pkt]]:
    """A file's frames cut back into RTP payloads as the worker receives them (VP8: a 1-byte descriptor)."""
    out: list[Pkt] = []
    with av.open(str(path)) as container:
        stream = container.streams[0]
        for packet in container.demux(stream):
            if packet.pts is None:
                continue   # the demuxer's last, empty packet
            data, ts = bytes(packet), round(packet.pts * packet.time_base * CLOCK_RATE[stream.type])
            chunks = [data] if stream.type == "audio" else [data[i:i + 1100] for i in range(0, len(data), 1100)]
            for i, chunk in enumerate(chunks):
                payload = chunk if stream.type == "audio" else bytes([0x10 if i == 0 else 0]) + chunk
                out.append(Pkt(len(out) & 0xFFFF, ts & 0xFFFFFFFF, 0x80 if i == len(chunks) - 1 else 0, payload,
                               key=packet.is_keyframe and i == 0))
        return stream.type, out


def replay(path: Path, folder: Path) -> float:
    """CPU seconds media/recorder.py's TrackWriter takes to mux this file's packets again, one by one."""
    kind, packets = rtp_packets(path)
    recording = MeetingRecording(folder, 1, 1, 0)
    source = SimpleNamespace(kind=kind, detach=lambda sink: None, request_keyframe=lambda: None)
    writer = TrackWriter(folder / path.name, source, 0, kind, recording)
    cpu = time.process_time()
    for p in packets:
        writer.push(p)
    writer.close()
    cpu = time.process_time() - cpu
    recording.close()
    return cpu


def check_files(meeting: dict, scratch: Path) -> dict:
    """Every file of every round decoded and replayed; by class of stream: bytes, seconds, CPU."""
    classes = {name: dict.fromkeys(("bytes", "span", "media", "decode", "mux"), 0.0) for name in CLASSES}
    files = frames = errors = 0
    for rnd in meeting["rounds"]:
        for path in sorted(Path(rnd["folder"]).glob("*.webm")):
            try:
                d = dict(decode_file(path), mux=replay(path, scratch))
            except (av.FFmpegError, OSError, IndexError):   # one failure; the other files are still checked
                d = {"frames": 0, "errors": 1, "decode": 0.0, "media": 0.0, "mux": 0.0}
            files, frames, errors = files + 1, frames + d["frames"], errors + d["errors"]
            account, kind = path.name.split("-")[:2]
            name = "camera" if kind == "video" else "speaking mic" if int(account) in SPEAKERS else "silent mic"
            for c in (classes[name], classes["all"]):
                for key, value in (("bytes", path.stat().st_size), ("span", rnd["ended"] - rnd["started"]),
                                   ("media", d["media"]), ("decode", d["decode"]), ("mux", d["mux"])):
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
    per = sorted((r["on"]["sfu_core"] - r["off"]["sfu_core"]) / r["streams"] for r in rounds)
    last = "off" if len(rounds) % 2 == 0 else "on"   # the run's last window
    side = {s: sorted(r[s]["sfu_core"] for r in rounds) for s in ("off", "on")}
    return {"n": meeting["n"], "streams": statistics.median(r["streams"] for r in rounds),
            "per": statistics.median(per), "lo": per[0], "hi": per[-1], "side": side,
            "ingress": [statistics.median(r[s]["ingress_bps"] for r in rounds) / 1e6 for s in ("off", "on")],
            "delivered": min(r["on"]["delivered"] for r in rounds), "worst": min(r["on"]["worst"] for r in rounds),
            "waited": max(r[s]["server_waited"] for r in rounds for s in ("off", "on")),
            "load": f"{rounds[0]['off']['load_before']} → {rounds[-1][last]['load_after']}",
            "span": statistics.median(r["ended"] - r["started"] for r in rounds)}


def render_meetings(rows: list[dict], checks: list[dict], opts, started: str) -> list[str]:
    cpu = lambda v: f"{100 * statistics.median(v):.1f} % ({100 * v[0]:.1f}–{100 * v[-1]:.1f})"  # noqa: E731
    kbps = lambda c: f"{8 * c['bytes'] / c['span'] / 1000:.1f}" if c["span"] else "–"  # noqa: E731
    out = [SECTION, "", " ".join(f"""
Measured {started} by `bench/recording.py --participants {opts.participants} --seconds {opts.seconds:g} --rounds
{opts.rounds}` at commit {commit()} (and the working tree); {machine(('aiortc', 'av'))}; the machine is shared (load
average in the table). A real worker ({opts.processes} processes, simulcast on, captions off) on 127.0.0.1 and N
synthetic participants (bench/media.py's client processes, on the same 2 cores) publishing pre-encoded VP8 in two
layers (320×240, 160×120; 15 fps) and Opus (a looped tone); participants 1 and 2 speak, the other microphones are
silent (DTX: a packet per 400 ms); each participant is shown 9 cameras. Per round, on the same connections: a
{opts.seconds:g} s window with recording off (the baseline: the same worker forwarding), `record`, {AFTER_RECORD:g}
s, the same window with recording on, `record_stop` ({AFTER_STOP:g} s later the next window; the even rounds in the
opposite order, so a drift over the run cancels out). Worker CPU: user + system from /proc (10 ms ticks), median of
the rounds (range in brackets). A *recorded stream* is one file: a participant's microphone, or its camera's 160×120
layer (2 N, as the worker's answer to `record` counted them); *per stream* = (CPU on − CPU off) / streams. Recording
makes every camera wanted: one nobody is shown, paused otherwise, is sent again (the ingress column), and receiving
it is part of the difference. *Written* = file sizes / time from `record` to `record_stop` (ext4, page cache).
""".split()), "",
           "| N | recorded streams | worker CPU off → on, % of one core | recording's cost per stream, median (range) "
           "| ingress off → on, Mbit/s | written per stream, kbit/s: camera / speaking mic / silent mic "
           "| files decoded: files / frames / failed | frames delivered while recording: all / worst "
           "| worker waited for a CPU, s per s (most) | load average before → after |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for s, chk in zip(rows, checks):
        cl = chk["classes"]
        out.append(f"| {s['n']} | {s['streams']:g} | {cpu(s['side']['off'])} → {cpu(s['side']['on'])} | "
                   f"{100 * s['per']:.3f} % ({100 * s['lo']:.3f} to {100 * s['hi']:.3f}) | {s['ingress'][0]:.1f} → "
                   f"{s['ingress'][1]:.1f} | {kbps(cl['camera'])} / {kbps(cl['speaking mic'])} / "
                   f"{kbps(cl['silent mic'])} | {chk['files']} / {chk['frames']:,} / {chk['errors']} | "
                   f"{bm.fmt_pct(min(s['delivered'], 1))} / {bm.fmt_pct(min(s['worst'], 1))} | {s['waited']:.2f} | "
                   f"{s['load']} |")
    return out


def decoding(checks: list[dict]) -> dict:
    """Per class of stream, over every file: decode and TrackWriter CPU seconds per second of media (the mix:
    per second recorded)."""
    total = {name: {k: sum(c["classes"][name][k] for c in checks) for k in ("media", "span", "decode", "mux")}
             for name in CLASSES}
    return {name: {k: c[k] / (c["span"] if name == "all" else c["media"]) for k in ("decode", "mux")}
             for name, c in total.items() if c["media"]}


def in_worker(s: dict) -> str:
    """One N's recording cost in the worker, said as measured: distinct from zero only if every round was above."""
    text = (f"at N = {s['n']} {100 * s['per']:.3f} % per stream, every round above zero ({100 * s['lo']:.3f} to "
            f"{100 * s['hi']:.3f})" if s["lo"] > 0 else f"at N = {s['n']} not distinguishable from zero "
            f"({100 * s['per']:.3f} %, rounds {100 * s['lo']:.3f} to {100 * s['hi']:.3f})")
    if s["ingress"][1] > 1.2 * s["ingress"][0]:
        text += (f", including the cameras nobody was shown, sent again while recording (ingress {s['ingress'][0]:.1f} "
                 f"→ {s['ingress'][1]:.1f} Mbit/s: a camera only recorded sends its low layer alone, as a thumbnail's "
                 f"does)")
    return text


def render(meetings: list[dict], checks: list[dict], composed: dict, opts, started: str) -> str:
    rows, per_s = [summary(m) for m in meetings], decoding(checks)
    out = render_meetings(rows, checks, opts, started)
    out += ["", f"Every file above (each about {rows[0]['span']:.0f} s long), after the meetings, in the benchmark's "
                "process: decoded with PyAV, and its packets replayed one by one through media/recorder.py's "
                "TrackWriter (the recorder's own work: reassembling VP8 frames, muxing, writing, opening and closing "
                "the file; none of the worker's other work or noise). CPU per second of media, for one stream:", "",
            "| stream | recording (TrackWriter), % of one core | decoding, % of one core | decoding ÷ recording |",
            "|---|---|---|---|"]
    for name, c in per_s.items():
        out.append(f"| {CLASSES[name]} | {100 * c['mux']:.4f} % | {100 * c['decode']:.4f} % | "
                   f"{c['decode'] / c['mux']:.1f}× |")
    mux, dec = per_s["all"]["mux"], per_s["all"]["decode"]
    out += ["", "In the worker (first table): " + "; ".join(in_worker(s) for s in rows)
            + f". The recorder's own code takes {100 * mux:.4f} % per stream; decoding the same streams would take "
              f"{100 * dec:.4f} % ({dec / mux:.1f}×)."]
    speed = composed["duration"] / composed["cpu"]
    out += ["", f"Composition as the web app runs it (`nice -n 10 python -m rooms.meetings.recording_compose`, one "
                f"encoding thread): the N = {composed['n']} meeting's last recording, {composed['duration']:.1f} s "
                f"with {composed['tracks']} tracks, into 640×360 10 fps VP8 + Opus in {composed['cpu']:.2f} CPU s "
                f"({composed['wall']:.2f} s wall): **{speed:.1f} s of recording per CPU second**; "
                f"{composed['size'] / 1000:.0f} kB ({8 * composed['size'] / composed['duration'] / 1000:.0f} kbit/s), "
                f"{composed['check']['frames']} frames decoded back ({composed['check']['errors']} failed).", "",
            f"Conclusion: recording muxes at {100 * mux:.4f} % of one core per stream, {dec / mux:.1f}× less than "
            f"decoding the same streams ({per_s['camera']['decode'] / per_s['camera']['mux']:.1f}× for a camera); "
            f"in the worker " + "; ".join(
                f"N = {s['n']}: {100 * s['per']:.3f} % per stream ("
                + ("every round above zero" if s["lo"] > 0 else "not distinguishable from zero")
                + (", with cameras sent again" if s["ingress"][1] > 1.2 * s["ingress"][0] else "") + ")" for s in rows)
            + f"; composing runs at {speed:.1f}× real time per CPU second."]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", default="10,20", help="meeting sizes N, comma-separated")
    ap.add_argument("--seconds", type=float, default=10.0, help="each measured window (off, then on)")
    ap.add_argument("--rounds", type=int, default=4, help="off/on pairs per N (odd: off first; even: on first)")
    ap.add_argument("--processes", type=int, default=2, help="worker processes")
    ap.add_argument("--json", help="also save the raw figures here")
    ap.add_argument("--no-write", action="store_true", help="print the section; leave docs/benchmarks.md alone")
    opts = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tmp = Path(tempfile.mkdtemp(prefix="collab-bench-recording-"))
    bm.encode_media(tmp / "clips.pickle")
    sizes = [int(n) for n in opts.participants.split(",")]
    meetings = [run_meeting(n, opts, tmp / "clips.pickle", tmp / f"n{n}") for n in sizes]
    checks = [check_files(m, tmp / "replay") for m in meetings]
    composed = compose(meetings[-1], tmp / "composed.webm")
    report = render(meetings, checks, composed, opts, started)
    print(report)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"meetings": meetings, "checks": checks, "composed": composed}, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    if not opts.no_write:
        write_section(SECTION, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
