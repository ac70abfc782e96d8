"""One shareable file from a meeting recording (issue 16).

The media worker never decodes: it muxes the RTP payloads it forwards into one WebM file per published track
(media/recorder.py) and notes in timeline-<process>.jsonl when each file starts and ends and who is speaking.
Composition is the one place a recording is decoded and re-encoded: in the background, the web app makes one
WebM (VP8, Opus) of the whole meeting, to keep or to send.

- Audio: each microphone placed at its time and mixed (audioop, a window at a time: memory stays bounded).
- Video: a live screen share, else the camera of the latest speaker whose camera is live, else any live camera,
  else a dark frame. While a slide is current (and no screen is shared) it fills the picture with that camera
  small in the corner, as in BigBlueButton's playback.

CPU matters (a 2-core server, beside the live meetings): VP8 at realtime speed on one thread, a small picture
at a low frame rate, and a picture composed again only when one of its parts changed.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop   # in the standard library up to Python 3.12; numpy is not a dependency

log = logging.getLogger(__name__)

RATE = 48000          # the mix and the output: 48 kHz stereo (s16 while mixing)
SAMPLE_BYTES = 4      # one stereo s16 sample
WINDOW = 2            # seconds mixed and composed at a time
SNAP = RATE // 500    # an audio frame within 2 ms of where the previous one ended follows it exactly
STALE_AFTER = 1.0     # a file that stops early (worker killed) shows its last frame this much longer
DARK = (16, 128, 128)   # Y, U, V of the empty picture
CORNER = 4            # the camera beside a slide is this many times smaller than the picture
FIELDS = {"track": {"account": int, "name": str, "file": str}, "end": {"file": str}, "speaking": {"ids": list}}


@dataclass
class Track:
    """A track file where the timeline puts it: seconds from the start of the composition."""
    path: Path
    account: int
    name: str         # audio, video or screen
    start: float
    end: float


def _number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _valid(entry: object) -> bool:
    """A timeline line is an object with a numeric "at", an "event" and that event's fields."""
    if not (isinstance(entry, dict) and _number(entry.get("at")) and isinstance(entry.get("event"), str)):
        return False
    fields = FIELDS.get(entry["event"], {})
    return (all(type(entry.get(key)) is kind for key, kind in fields.items())
            and all(type(account) is int for account in entry.get("ids", []) if "ids" in fields))


def read_timeline(directory: str | Path) -> list[dict]:
    """All timeline-*.jsonl merged and sorted by "at": lines that are not valid entries skipped, and a
    "speaking" event repeating the previous one's ids (several processes see the same speakers) dropped."""
    entries = []
    for path in sorted(Path(directory).glob("timeline-*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if _valid(entry):
                entries.append(entry)
    merged, last_ids = [], None
    for entry in sorted(entries, key=lambda e: e["at"]):
        if entry["event"] == "speaking":
            if entry["ids"] == last_ids:
                continue
            last_ids = entry["ids"]
        merged.append(entry)
    return merged


def speaker_spans(timeline: list[dict], started_at: float, ended_at: float) -> list[tuple[float, float, int]]:
    """(start, end, account) of each stretch someone spoke, in seconds from started_at, sorted by start."""
    length, speaking, spans = ended_at - started_at, {}, []
    for entry in sorted((e for e in timeline if e["event"] == "speaking"), key=lambda e: e["at"]):
        at = min(max(entry["at"] - started_at, 0.0), length)
        for account in [a for a in speaking if a not in entry["ids"]]:
            spans.append((speaking.pop(account), at, account))
        for account in entry["ids"]:
            speaking.setdefault(account, at)
    spans += [(start, length, account) for account, start in speaking.items()]
    return sorted(span for span in spans if span[1] > span[0])


def track_files(timeline: list[dict], directory: Path, started_at: float, length: float) -> list[Track]:
    """The track files of the timeline that overlap the composition, in the order they started."""
    ends: dict[str, float] = {}
    for entry in (e for e in timeline if e["event"] == "end"):
        ends.setdefault(entry["file"], entry["at"] - started_at)
    found: dict[str, Track] = {}
    for entry in (e for e in timeline if e["event"] == "track" and e["file"] not in found):
        track = Track(directory / Path(entry["file"]).name, entry["account"], entry["name"],
                      entry["at"] - started_at, ends.get(entry["file"], math.inf))
        if track.start < length and track.end > max(track.start, 0):
            found[entry["file"]] = track
    return list(found.values())


def decode(path: Path, kind: str) -> Iterator[av.AudioFrame | av.VideoFrame]:
    """The frames of a file's first `kind` stream, as far as they decode; a broken file logs a warning."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        log.warning("recording file %s skipped: %s", path.name, err)
        return
    with container:
        stream = next((s for s in container.streams if s.type == kind), None)
        try:
            for packet in container.demux(stream) if stream else ():
                try:
                    frames = stream.codec_context.decode(packet)
                except av.FFmpegError:
                    continue   # a damaged packet, or one that needs a frame lost before it
                yield from frames
        except (av.FFmpegError, OSError) as err:
            log.warning("recording file %s ends early: %s", path.name, err)


class Microphone:
    """An audio track, decoded as the mix reaches it."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.chunks: Iterator[tuple[int, bytes]] | None = None
        self.pending: tuple[int, bytes] | None = None
        self.used = False

    def _chunks(self) -> Iterator[tuple[int, bytes]]:
        """(position in samples, s16 stereo bytes) of each decoded frame, placed by its pts."""
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
        start, expected = round(self.track.start * RATE), None
        for frame in decode(self.track.path, "audio"):
            pos = start + round(frame.time * RATE) if frame.time is not None else (expected or start)
            if expected is not None and abs(pos - expected) <= SNAP:
                pos = expected
            for out in resampler.resample(frame):
                self.used = True
                yield pos, bytes(out.planes[0])[:out.samples * SAMPLE_BYTES]
                pos += out.samples
            expected = pos

    def add_to(self, mix: bytearray, start: int) -> None:
        """Add this track's sound to the window `mix`, which begins at sample `start`."""
        end = start + len(mix) // SAMPLE_BYTES
        if end <= self.track.start * RATE:
            return
        self.chunks = self.chunks or self._chunks()
        while True:
            self.pending = self.pending or next(self.chunks, None)
            if self.pending is None or self.pending[0] >= end:
                return
            pos, data = self.pending
            stop = pos + len(data) // SAMPLE_BYTES
            if stop > start:
                part = data[(max(pos, start) - pos) * SAMPLE_BYTES:(min(stop, end) - pos) * SAMPLE_BYTES]
                at = (max(pos, start) - start) * SAMPLE_BYTES
                mix[at:at + len(part)] = audioop.add(mix[at:at + len(part)], part, 2)
            self.pending = (end, data[(end - pos) * SAMPLE_BYTES:]) if stop > end else None

    def close(self) -> None:
        if self.chunks is not None:
            self.chunks.close()


class Camera:
    """A camera or screen track, decoded forward as time passes, holding its last frame between frames."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.frames: Iterator[av.VideoFrame] | None = None
        self.held: av.VideoFrame | None = None
        self.held_at = -math.inf
        self.next: tuple[float, av.VideoFrame] | None = None

    def _pull(self) -> tuple[float, av.VideoFrame] | None:
        frame = next(self.frames, None)
        return None if frame is None else (self.track.start + (frame.time or 0.0), frame)

    def advance(self, t: float) -> None:
        if t >= self.track.end:
            self.held = None
            self.close()
        elif t >= self.track.start:
            if self.frames is None:
                self.frames = decode(self.track.path, "video")
                self.next = self._pull()
            while self.next is not None and self.next[0] <= t:
                self.held_at, self.held = self.next
                self.next = self._pull()

    def picture(self, t: float) -> av.VideoFrame | None:
        """The frame to show at t: the track is live and has frames around t."""
        return None if self.next is None and t > self.held_at + STALE_AFTER else self.held

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()
            self.next = None


class Director:
    """Who is on screen: a screen share, else the camera of the most recent speaker who has one live."""

    def __init__(self, timeline: list[dict], started_at: float, videos: list[Camera]) -> None:
        self.speaking = [(e["at"] - started_at, e["ids"]) for e in timeline if e["event"] == "speaking" and e["ids"]]
        self.seen = 0
        self.recent: list[int] = []   # accounts, the latest speaker first
        self.videos = videos
        self.screens = [v for v in videos if v.track.name == "screen"][::-1]   # the latest first
        self.cameras = [v for v in videos if v.track.name != "screen"][::-1]

    def screen(self, t: float) -> av.VideoFrame | None:
        return next((p for s in self.screens if (p := s.picture(t)) is not None), None)

    def camera(self, t: float) -> av.VideoFrame | None:
        for _, ids in self.speaking[self.seen:bisect_right(self.speaking, t, key=lambda s: s[0])]:
            self.recent = ids + [account for account in self.recent if account not in ids]
            self.seen += 1
        live = [(c.track.account, p) for c in self.cameras if (p := c.picture(t)) is not None]
        speaker = next((p for account in self.recent for owner, p in live if owner == account), None)
        return speaker if speaker is not None or not live else live[-1][1]


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The even size of a width x height picture scaled to fit in box_w x box_h."""
    scale = min(box_w / width, box_h / height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def blank(size: tuple[int, int]) -> av.VideoFrame:
    frame = av.VideoFrame(size[0], size[1], "yuv420p")
    for plane, value in zip(frame.planes, DARK):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def paste(canvas: av.VideoFrame, frame: av.VideoFrame, box: tuple[int, int, int, int]) -> av.VideoFrame:
    """Draw frame on canvas (yuv420p), scaled to fit the box (x, y, width, height) and centred in it."""
    w, h = fit(frame.width, frame.height, box[2], box[3])
    x, y = box[0] + (box[2] - w) // 4 * 2, box[1] + (box[3] - h) // 4 * 2
    small = frame.reformat(width=w, height=h, format="yuv420p", dst_color_range="MPEG")
    for i, (dst, src) in enumerate(zip(canvas.planes, small.planes)):
        shift, dst_view, src_view = 1 if i else 0, memoryview(dst), memoryview(src)
        for row in range(h >> shift):
            at, start = ((y >> shift) + row) * dst.line_size + (x >> shift), row * src.line_size
            dst_view[at:at + (w >> shift)] = src_view[start:start + (w >> shift)]
    return canvas


class Slides:
    """The slide current at each time (from its time until the next one's), loaded one at a time."""

    def __init__(self, slides: list[tuple[float, str]], started_at: float, size: tuple[int, int]) -> None:
        self.items = sorted((at - started_at, path) for at, path in slides)
        self.size, self.index, self.image = size, -1, None

    def at(self, t: float) -> av.VideoFrame | None:
        index = bisect_right(self.items, t, key=lambda item: item[0]) - 1
        if index != self.index:
            self.index, self.image = index, None
            try:
                if index >= 0:
                    with av.open(self.items[index][1]) as image:
                        self.image = paste(blank(self.size), next(image.decode(video=0)), (0, 0, *self.size))
            except (av.FFmpegError, OSError, StopIteration) as err:
                log.warning("slide %s skipped: %s", self.items[index][1], err)
        return self.image


def picture(size: tuple[int, int], main: av.VideoFrame | None, slide: av.VideoFrame | None) -> av.VideoFrame:
    """The output picture: the slide with `main` small in its corner, or `main` alone, letterboxed."""
    if slide is not None and main is not None:
        w, h, margin = size[0] // CORNER // 2 * 2, size[1] // CORNER // 2 * 2, max(2, size[1] // 80 * 2)
        return paste(paste(blank(size), slide, (0, 0, *size)), main, (size[0] - w - margin, size[1] - h - margin, w, h))
    if main is None:
        return blank(size) if slide is None else slide
    if fit(main.width, main.height, *size) == size:   # a camera of the picture's shape: scaled, nothing drawn
        return main.reformat(width=size[0], height=size[1], format="yuv420p", dst_color_range="MPEG")
    return paste(blank(size), main, (0, 0, *size))


def _check(started_at: float, ended_at: float, max_seconds: float, fps: int, size: tuple[int, int]) -> float:
    if not (_number(started_at) and _number(ended_at)) or ended_at <= started_at:
        raise ValueError(f"a recording must end after it starts (started {started_at}, ended {ended_at})")
    if ended_at - started_at > max_seconds:
        raise ValueError(f"a recording of {ended_at - started_at:.0f} s is longer than the {max_seconds:.0f} s allowed")
    if not (type(fps) is int and 1 <= fps <= 60) or len(size) != 2 or any(n < 16 or n % 2 for n in size):
        raise ValueError(f"fps must be 1 to 60 and the size even, at least 16x16 (fps {fps}, size {size})")
    return ended_at - started_at


def compose(directory: str | Path, started_at: float, ended_at: float, out_path: str | Path, *,
            progress: Callable[[float], None] | None = None, slides: list[tuple[float, str]] | None = None,
            fps: int = 10, size: tuple[int, int] = (640, 360), max_seconds: float = 6 * 3600) -> dict:
    """Write the recording in `directory` from started_at to ended_at (epoch seconds) to out_path, one WebM file
    (VP8, Opus) written as a temporary file beside it and renamed when complete."""
    length = _check(started_at, ended_at, max_seconds, fps, size)
    timeline = read_timeline(directory)
    found = track_files(timeline, Path(directory), started_at, length)
    mics = [Microphone(t) for t in found if t.name == "audio"]
    videos = [Camera(t) for t in found if t.name != "audio"]
    out_path = Path(out_path)
    handle, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent)
    os.close(handle)
    try:
        with av.open(tmp, "w", format="webm") as out:
            _write(out, length, mics, Director(timeline, started_at, videos), Slides(slides or [], started_at, size),
                   fps, size, progress or (lambda fraction: None))
        os.replace(tmp, out_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        for source in mics + videos:
            source.close()
    if progress:
        progress(1.0)
    audio_used, video_used = sum(m.used for m in mics), sum(v.held_at > -math.inf for v in videos)
    return {"duration": length, "size": out_path.stat().st_size, "tracks": audio_used + video_used,
            "audio_tracks": audio_used, "video_tracks": video_used}


def _write(out: av.container.OutputContainer, length: float, mics: list[Microphone], director: Director,
           slides: Slides, fps: int, size: tuple[int, int], progress: Callable[[float], None]) -> None:
    """Mix and compose a window at a time, so audio and video stay interleaved and memory stays bounded."""
    audio = out.add_stream("libopus", rate=RATE, layout="stereo")
    audio.bit_rate = 64000
    video = out.add_stream("libvpx", rate=fps, options={"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"})
    video.width, video.height, video.pix_fmt, video.bit_rate = size[0], size[1], "yuv420p", size[0] * size[1] * fps // 8
    video.codec_context.gop_size = fps * 10      # a keyframe every 10 s, to seek in the file
    video.codec_context.thread_count = 1         # a background job: the other core is for the meetings
    samples, frames = round(length * RATE), max(1, round(length * fps))
    last: tuple = ()   # the main picture and the slide last composed, and the picture composed of them
    reported = 0.0
    progress(0.0)
    for window in range(math.ceil(length / WINDOW)):
        first = window * WINDOW * RATE
        mix = bytearray(max(0, min(WINDOW * RATE, samples - first)) * SAMPLE_BYTES)
        for mic in mics:
            mic.add_to(mix, first)
        if mix:
            chunk = av.AudioFrame(format="s16", layout="stereo", samples=len(mix) // SAMPLE_BYTES)
            chunk.planes[0].update(bytes(mix))
            chunk.sample_rate, chunk.pts, chunk.time_base = RATE, first, Fraction(1, RATE)
            out.mux(audio.encode(chunk))
        for index in range(window * WINDOW * fps, min((window + 1) * WINDOW * fps, frames)):
            t = index / fps
            for source in director.videos:
                source.advance(t)
            main, slide = director.screen(t), None
            if main is None:
                main, slide = director.camera(t), slides.at(t)
            if not last or main is not last[0] or slide is not last[1]:
                last = (main, slide, picture(size, main, slide))
            last[2].pts, last[2].time_base = index, Fraction(1, fps)
            out.mux(video.encode(last[2]))
            if index / frames - reported >= 0.01:
                reported = index / frames
                progress(reported)
    out.mux(audio.encode(None))
    out.mux(video.encode(None))


def main(argv: list[str]) -> None:
    """`python -m rooms.meetings.recording_compose '<job as JSON>'`, as rooms/meetings/recording_processing.py runs
    it (a child process at low priority): prints "progress <fraction>" lines, then "done <result as JSON>"; bad
    arguments end it with a ValueError."""
    job = json.loads(argv[0])
    result = compose(job["directory"], job["started_at"], job["ended_at"], job["out_path"],
                     slides=[(at, path) for at, path in job.get("slides") or []],
                     progress=lambda fraction: print(f"progress {fraction:.4f}", flush=True))
    print("done " + json.dumps(result), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main(sys.argv[1:])
