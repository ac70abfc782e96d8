"""Pre-encoded media for the self-test, the tests and the benchmark.

A clip is encoded once with PyAV (VP8 320×240 at 15 fps, Opus 20 ms frames);
`ClipTrack` then replays its packets in real time through aiortc's
`sender.pack` path, so a synthetic participant costs no encoding at all.
"""
from __future__ import annotations

import asyncio
import math
import random
import struct
import time
from fractions import Fraction
from functools import lru_cache

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.forwarding import STEP, TIME_BASE, is_vp8_keyframe

VIDEO_FPS = 15
AUDIO_FRAME_SECONDS = 0.02


def _picture(width: int, height: int, index: int, frames: int) -> av.VideoFrame:
    """A test picture with camera-like detail: a field of random blocks drifting
    sideways, light noise on top, and a bright bar sweeping across."""
    frame = av.VideoFrame(width, height, "yuv420p")
    blocks = random.Random(0)
    field = [blocks.randbytes(width // 8 + 64) for _ in range(height // 8 + 1)]
    noise = random.Random(index)
    shift = index * 2
    bar = int(index * width / frames)
    y = frame.planes[0]
    rows = []
    for r in range(height):
        src = field[r // 8]
        row = bytearray(src[(c + shift) // 8] & 0xF0 | (noise.getrandbits(3)) for c in range(width))
        row[bar:bar + width // 10] = b"\xeb" * len(row[bar:bar + width // 10])
        rows.append(bytes(row) + b"\x00" * (y.line_size - width))
    y.update(b"".join(rows))
    for plane, value in ((frame.planes[1], 0x60 + index % 64), (frame.planes[2], 0x80)):
        plane.update(bytes([value]) * (plane.line_size * (height // 2)))
    return frame


@lru_cache(maxsize=4)
def vp8_clip(seconds: float = 2.0, fps: int = VIDEO_FPS, width: int = 320, height: int = 240,
             bitrate: int = 250_000) -> tuple[bytes, ...]:
    """Encoded VP8 frames, one keyframe first, then only delta frames."""
    count = max(2, int(seconds * fps))
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps)
    ctx.bit_rate = bitrate
    ctx.gop_size = count + 1
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1",
                   "minrate": str(bitrate), "maxrate": str(bitrate), "bufsize": str(bitrate)}
    out: list[bytes] = []
    for i in range(count):
        frame = _picture(width, height, i, count)
        frame.pts = i
        frame.time_base = ctx.time_base
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    if not out or not is_vp8_keyframe(out[0]):
        raise RuntimeError("the VP8 encoder did not start with a keyframe")
    return tuple(out)


def tone(samples: int, start: int, freq: float = 440.0, volume: float = 0.3, rate: int = 48000) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    frame.sample_rate = rate
    amp = int(32767 * volume)
    frame.planes[0].update(struct.pack(f"<{samples}h", *(
        int(amp * math.sin(2 * math.pi * freq * (start + i) / rate)) for i in range(samples))))
    frame.pts = start
    frame.time_base = Fraction(1, rate)
    return frame


@lru_cache(maxsize=4)
def opus_clip(seconds: float = 1.0, freq: float = 440.0) -> tuple[bytes, ...]:
    """Encoded 20 ms Opus frames of a tone."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.bit_rate, ctx.format, ctx.layout, ctx.sample_rate = 32000, "s16", "mono", 48000
    ctx.time_base = Fraction(1, 48000)
    out: list[bytes] = []
    for i in range(int(seconds / AUDIO_FRAME_SECONDS)):
        out.extend(bytes(p) for p in ctx.encode(tone(960, i * 960, freq)))
    return tuple(out)


class ClipTrack(MediaStreamTrack):
    """Replays encoded frames in real time as `av.Packet`s (no encoding).

    `paused` stops sending (as a browser does when the worker pauses an unwatched camera);
    `silent`, for audio, emulates Opus DTX while it returns True: one packet per 400 ms."""

    DTX_EVERY = 20

    def __init__(self, kind: str, clip: tuple[bytes, ...], *, fps: float | None = None, silent=None) -> None:
        super().__init__()
        self.kind = kind
        self.clip = clip
        self.interval = 1.0 / (fps or (VIDEO_FPS if kind == "video" else 1 / AUDIO_FRAME_SECONDS))
        self.step = round(self.interval / TIME_BASE[kind]) if kind == "video" else STEP["audio"]
        self.index = 0
        self.tick = 0
        self.sent = 0
        self.paused = False
        self.silent = silent
        self.keyframes_requested = 0
        self.first_sent_at: float | None = None
        self._start: float | None = None

    def restart_gop(self) -> None:
        """Send the clip's keyframe next (our answer to a PLI)."""
        self.keyframes_requested += 1
        self.index = 0

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self._start is None:
                self._start = now
                self.first_sent_at = time.time()
            due = self._start + self.tick * self.interval
            if due > now:
                await asyncio.sleep(due - now)
            tick = self.tick
            self.tick += 1
            if self.paused:
                continue
            if self.silent is not None and tick % self.DTX_EVERY and self.silent():
                continue
            data = self.clip[self.index]
            self.index = (self.index + 1) % len(self.clip)
            packet = av.Packet(data)
            packet.pts = tick * self.step
            packet.time_base = TIME_BASE[self.kind]
            self.sent += 1
            return packet


class ToneTrack(MediaStreamTrack):
    """Raw audio frames (aiortc encodes them and adds the audio-level header extension)."""

    kind = "audio"

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self.freq = freq
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._samples / 48000
        if due > now:
            await asyncio.sleep(due - now)
        frame = tone(960, self._samples, self.freq)
        self._samples += 960
        return frame
