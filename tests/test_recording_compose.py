"""Issue 16's composition of a recording into one file, on real files encoded here with PyAV the way the media
worker writes them (Opus and VP8 packets muxed into WebM, one file per track, timeline-<process>.jsonl beside
them): the mix places each microphone at its time, the picture follows the speaker, a screen share and the
slides, a damaged recording still composes, and bad arguments leave nothing behind."""
from __future__ import annotations

import array
import json
import math
import shutil
import struct
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import av
import pytest

from rooms.meetings.recording_compose import compose, read_timeline, speaker_spans

ROOT = Path(__file__).resolve().parent.parent

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

T0 = 1765000000.0
LENGTH = 6.0
OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)
RED, GREEN, BLUE, YELLOW = (200, 40, 40), (40, 180, 60), (40, 60, 200), (220, 200, 40)


def yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The YUV of a flat RGB colour, as PyAV converts it."""
    frame = av.VideoFrame(16, 16, "rgb24")
    frame.planes[0].update(bytes(rgb) * (frame.planes[0].buffer_size // 3))
    return tuple(bytes(p)[0] for p in frame.reformat(format="yuv420p").planes)


def flat(rgb: tuple[int, int, int], width: int, height: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, yuv(rgb)):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def mux(path: Path, stream_of, packets) -> None:
    """Mux encoded (payload, pts, key) into a WebM file as the worker does, pts in the stream's clock."""
    with av.open(str(path), "w", format="webm") as out:
        stream, clock = stream_of(out)
        for payload, pts, key in packets:
            packet = av.Packet(payload)
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, pts, pts, clock
            packet.is_keyframe = key
            out.mux(packet)


def write_audio(path: Path, hertz: float, spans: list[tuple[float, float]]) -> None:
    """An Opus track: a sine at `hertz` during each (start, end) of spans (seconds from its first packet), no
    packets between them (a muted microphone)."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.open()
    packets = []
    for start, end in spans:
        for first in range(round(start * 48000), round(end * 48000), 960):
            samples = array.array("h")
            for n in range(first, first + 960):
                value = int(8000 * math.sin(2 * math.pi * hertz * n / 48000))
                samples.extend((value, value))
            frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
            frame.planes[0].update(samples.tobytes())
            frame.sample_rate, frame.pts = 48000, first
            packets += [(bytes(p), first, True) for p in encoder.encode(frame)]

    def stream_of(out):
        stream = out.add_stream("opus", rate=48000)
        stream.codec_context.extradata = OPUS_HEAD
        return stream, Fraction(1, 48000)
    mux(path, stream_of, packets)


def write_video(path: Path, rgb: tuple[int, int, int], seconds: float, size=(320, 180), fps: int = 15) -> None:
    """A VP8 track of one flat colour, pts on the 90 kHz RTP clock, the first packet a keyframe."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], "yuv420p"
    encoder.time_base, encoder.bit_rate = Fraction(1, fps), 200_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    encoder.open()
    frame, packets = flat(rgb, *size), []
    for index in range(round(seconds * fps)):
        frame.pts = index
        packets += [(bytes(p), index * 90000 // fps, p.is_keyframe) for p in encoder.encode(frame)]
    packets += [(bytes(p), round(seconds * 90000), p.is_keyframe) for p in encoder.encode(None)]
    assert packets[0][2]

    def stream_of(out):
        stream = out.add_stream("vp8")
        stream.width, stream.height = size
        return stream, Fraction(1, 90000)
    mux(path, stream_of, packets)


def write_timeline(folder: Path, process: int, lines: list) -> None:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    (folder / f"timeline-{process}.jsonl").write_text(text)


def track(at: float, account: int, name: str) -> dict:
    return {"at": T0 + at, "event": "track", "account": account, "name": name,
            "file": f"{account}-{name}-{int((T0 + at) * 1000)}.webm"}


def end(at: float, start: dict) -> dict:
    return {"at": T0 + at, "event": "end", "file": start["file"]}


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """Account 1 speaks (440 Hz) from 0 s to 2 s, muted from 1.0 to 1.5; account 2 (880 Hz) from 2 s to 5 s;
    both cameras on, account 2's from 0.5 s to 5.5 s; account 2 shares a 4:3 screen from 3.5 s to 4.5 s."""
    folder = tmp_path_factory.mktemp("recording")
    mic1, mic2 = track(0.0, 1, "audio"), track(2.0, 2, "audio")
    cam1, cam2, screen = track(0.0, 1, "video"), track(0.5, 2, "video"), track(3.5, 2, "screen")
    write_audio(folder / mic1["file"], 440, [(0.0, 1.0), (1.5, 2.0)])
    write_audio(folder / mic2["file"], 880, [(0.0, 3.0)])
    write_video(folder / cam1["file"], RED, 6.0)
    write_video(folder / cam2["file"], GREEN, 5.0, size=(640, 360))
    write_video(folder / screen["file"], YELLOW, 1.0, size=(480, 360), fps=5)
    write_timeline(folder, 0, [
        {"at": T0 - 1, "event": "start", "recording": 7}, mic1, cam1, cam2,
        {"at": T0 + 0.1, "event": "speaking", "ids": [1]}, end(2.0, mic1),
        {"at": T0 + 2.0, "event": "speaking", "ids": [2]}, screen, end(4.5, screen),
        {"at": T0 + 5.0, "event": "speaking", "ids": []}, end(5.5, cam2),
    ])
    write_timeline(folder, 1, [   # another worker process: one of its participants, the same speakers
        mic2, {"at": T0 + 2.01, "event": "speaking", "ids": [2]}, end(5.0, mic2),
        "not json", '{"at": "soon", "event": "track"}', '{"event": "speaking", "ids": [1]}', "[1, 2]",
        '{"at": 1765000001, "event": "track", "account": "1", "name": "audio", "file": "x.webm"}',
        '{"at": 1765000001, "event": "speaking", "ids": ["1"]}', '{"at": 1765000001, "event": "end"}',
    ])
    return folder


@pytest.fixture(scope="module")
def composed(recording, tmp_path_factory) -> tuple[Path, dict, list[float]]:
    out = tmp_path_factory.mktemp("out") / "meeting.webm"
    seen: list[float] = []
    result = compose(recording, T0, T0 + LENGTH, out, progress=seen.append)
    return out, result, seen


def mono(path: Path) -> bytes:
    """The file's audio as 48 kHz mono s16, from its first sample."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    with av.open(str(path)) as container:
        chunks = [bytes(f.planes[0])[:f.samples * 2] for frame in container.decode(audio=0)
                  for f in resampler.resample(frame)]
    return b"".join(chunks)


def window(audio: bytes, start: float, end: float) -> bytes:
    return audio[round(start * 48000) * 2:round(end * 48000) * 2]


def hertz(fragment: bytes) -> float:
    return audioop.cross(fragment, 2) / 2 / (len(fragment) / 2 / 48000)


def pictures(path: Path) -> list[tuple[float, av.VideoFrame]]:
    with av.open(str(path)) as container:
        return [(frame.time, frame) for frame in container.decode(video=0)]


def at(frames: list[tuple[float, av.VideoFrame]], t: float) -> av.VideoFrame:
    return min(frames, key=lambda item: abs(item[0] - t))[1]


def colour(frame: av.VideoFrame, x0: float, y0: float, x1: float, y1: float) -> tuple[int, ...]:
    """Mean Y, U, V over a rectangle given in fractions of the picture."""
    means = []
    for i, plane in enumerate(frame.planes):
        w, h, data = frame.width >> (i > 0), frame.height >> (i > 0), bytes(plane)
        rows = range(int(y0 * h), int(y1 * h))
        cells = [data[r * plane.line_size + c] for r in rows for c in range(int(x0 * w), int(x1 * w))]
        means.append(round(sum(cells) / len(cells)))
    return tuple(means)


def near(found: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 8) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(found, expected))


CENTRE = (0.4, 0.4, 0.6, 0.6)
DARK = (16, 128, 128)


def test_the_file_lasts_the_meeting_and_says_what_it_used(composed):
    out, result, _ = composed
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["audio", "video"]
        assert container.streams.audio[0].codec_context.name == "opus"
        assert container.streams.video[0].codec_context.name in ("vp8", "libvpx")
        assert abs(container.duration / 1e6 - LENGTH) <= 0.3
    assert abs(len(mono(out)) / 2 / 48000 - LENGTH) <= 0.3
    assert abs(len(pictures(out)) / 10 - LENGTH) <= 0.3
    assert result == {"duration": LENGTH, "size": out.stat().st_size, "tracks": 5, "audio_tracks": 2,
                      "video_tracks": 3}
    assert [p.name for p in out.parent.iterdir()] == ["meeting.webm"]   # no temporary file left beside it


def test_each_microphone_is_heard_at_its_time(composed):
    audio = mono(composed[0])
    assert audioop.rms(window(audio, 0.1, 0.9), 2) > 1000
    assert abs(hertz(window(audio, 0.1, 0.9)) - 440) < 40
    assert audioop.rms(window(audio, 1.1, 1.4), 2) < 100        # muted: no packets, silence
    assert abs(hertz(window(audio, 1.6, 1.9)) - 440) < 40
    assert audioop.rms(window(audio, 2.1, 4.9), 2) > 1000
    assert abs(hertz(window(audio, 2.1, 4.9)) - 880) < 40
    assert audioop.rms(window(audio, 5.2, 6.0), 2) < 100        # nobody after 5 s


def test_the_picture_follows_the_speaker_and_the_screen(composed):
    frames = pictures(composed[0])
    assert all(f.width == 640 and f.height == 360 for _, f in frames)
    assert near(colour(at(frames, 1.0), *CENTRE), yuv(RED))       # account 1 speaks
    assert near(colour(at(frames, 3.0), *CENTRE), yuv(GREEN))     # account 2 speaks from 2 s
    screen = at(frames, 4.0)                                      # a 4:3 screen, letterboxed in 16:9
    assert near(colour(screen, *CENTRE), yuv(YELLOW))
    assert near(colour(screen, 0.0, 0.3, 0.08, 0.7), DARK)
    assert near(colour(at(frames, 5.3), *CENTRE), yuv(GREEN))     # nobody speaks: still the last speaker
    assert near(colour(at(frames, 5.8), *CENTRE), yuv(RED))       # account 2's camera has ended


def test_progress_rises_to_one_in_small_steps(composed):
    seen = composed[2]
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen)
    assert max(b - a for a, b in zip(seen, seen[1:])) <= 0.05


def test_a_slide_fills_the_picture_with_the_speaker_in_the_corner(recording, tmp_path):
    slide = tmp_path / "slide.png"
    flat(BLUE, 400, 300).reformat(format="rgb24").save(str(slide))
    out = tmp_path / "slides.webm"
    compose(recording, T0, T0 + 4, out, slides=[(T0 + 1.0, str(slide)), (T0 + 3.0, str(tmp_path / "gone.png"))])
    frames = pictures(out)
    assert near(colour(at(frames, 0.5), *CENTRE), yuv(RED))                 # before the first slide
    shown = at(frames, 2.5)
    assert near(colour(shown, *CENTRE), yuv(BLUE))
    assert near(colour(shown, 0.78, 0.78, 0.95, 0.95), yuv(GREEN))         # account 2 speaks, in the corner
    assert near(colour(shown, 0.02, 0.3, 0.1, 0.7), DARK)                  # a 4:3 slide, letterboxed
    assert near(colour(at(frames, 3.2), *CENTRE), yuv(GREEN))               # an unreadable slide: no slide


def test_a_damaged_recording_still_composes(recording, tmp_path):
    folder = tmp_path / "damaged"
    shutil.copytree(recording, folder)
    timeline = read_timeline(folder)
    files = {(e["account"], e["name"]): folder / e["file"] for e in timeline if e["event"] == "track"}
    for path in (files[2, "audio"], files[2, "video"]):   # the worker was killed while writing these
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    files[1, "video"].write_bytes(b"not a webm file at all")
    broken = track(0.0, 3, "audio")
    write_timeline(folder, 2, [broken, track(0.0, 4, "video")])
    (folder / broken["file"]).write_bytes(b"\x1a\x45\xdf\xa3" + bytes(100))
    out = tmp_path / "damaged.webm"
    result = compose(folder, T0, T0 + LENGTH, out)
    assert result["audio_tracks"] == 2 and result["video_tracks"] == 2
    audio = mono(out)
    assert abs(len(audio) / 2 / 48000 - LENGTH) <= 0.3
    assert abs(hertz(window(audio, 2.1, 2.9)) - 880) < 40       # the first half of account 2's microphone
    assert audioop.rms(window(audio, 4.0, 4.9), 2) < 100        # the lost half: silence
    frames = pictures(out)
    assert near(colour(at(frames, 2.5), *CENTRE), yuv(GREEN))
    assert near(colour(at(frames, 5.5), *CENTRE), DARK)          # no camera left


def test_the_timeline_is_merged_and_bad_lines_skipped(recording):
    timeline = read_timeline(recording)
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert [e["event"] for e in timeline] == ["start", "track", "track", "speaking", "track", "end", "speaking",
                                              "track", "track", "end", "speaking", "end", "end"]
    assert [e["ids"] for e in timeline if e["event"] == "speaking"] == [[1], [2], []]   # [2] twice: once
    assert speaker_spans(timeline, T0, T0 + LENGTH) == [(pytest.approx(0.1), 2.0, 1), (2.0, 5.0, 2)]
    assert speaker_spans(timeline, T0 + 3, T0 + 4) == [(0.0, 1.0, 2)]
    assert read_timeline(recording / "nowhere") == []


@pytest.mark.parametrize("started, ended, limit", [(T0, T0, 3600), (T0 + 5, T0, 3600), (T0, T0 + 7200, 3600),
                                                   (T0, math.nan, 3600)])
def test_bad_arguments_are_refused_and_leave_nothing(recording, tmp_path, started, ended, limit):
    out = tmp_path / "refused.webm"
    with pytest.raises(ValueError):
        compose(recording, started, ended, out, max_seconds=limit)
    assert list(tmp_path.iterdir()) == []


def test_the_child_process_reports_progress_and_its_result(recording, tmp_path):
    """rooms/meetings/recording_processing.py runs the composer as `python -m` and reads its lines."""
    def run(job: dict) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rooms.meetings.recording_compose", json.dumps(job)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    job = {"directory": str(recording), "started_at": T0, "ended_at": T0 + 2, "out_path": str(tmp_path / "c.webm"),
           "slides": [[T0 + 1, str(tmp_path / "missing.png")]]}
    done = run(job)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    fractions = [float(line.split()[1]) for line in lines if line.startswith("progress ")]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert lines[-1].startswith("done ") and json.loads(lines[-1][5:])["size"] == (tmp_path / "c.webm").stat().st_size
    refused = run(dict(job, ended_at=T0 - 1, out_path=str(tmp_path / "refused.webm")))
    assert refused.returncode != 0 and refused.stderr.splitlines()[-1].startswith("ValueError: ")
    assert not (tmp_path / "refused.webm").exists()
