"""Opus packets as the worker receives them, to the 16 kHz mono 16-bit PCM the engines want.

The worker forwards Opus without decoding it; only captions decode, one speaker at a time, in the
captions thread pool (service.py), never on the event loop."""
from __future__ import annotations

import logging
from fractions import Fraction

import av

from media.captions.engine import RATE

log = logging.getLogger(__name__)


class OpusToPcm:
    """A decoder and resampler for one stream (keeps the decoder's state between packets)."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = 48000
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)

    def decode(self, payloads: list[bytes]) -> bytes:
        out = bytearray()
        for payload in payloads:
            if not payload:
                continue
            try:
                frames = self._decoder.decode(av.Packet(payload))
            except (av.error.InvalidDataError, ValueError):  # a damaged packet: skip it, keep the stream
                continue
            for frame in frames:
                frame.pts = None
                for f in self._resampler.resample(frame):
                    out += bytes(f.planes[0])[:f.samples * 2]
        return bytes(out)


def wav_to_pcm(path: str) -> bytes:
    """A sound file (WAV from espeak-ng, any rate) as 16 kHz mono PCM."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    out = bytearray()
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            frame.pts = None
            for f in resampler.resample(frame):
                out += bytes(f.planes[0])[:f.samples * 2]
    for f in resampler.resample(None):
        out += bytes(f.planes[0])[:f.samples * 2]
    return bytes(out)


def wav_to_opus(path: str, *, silence_after: float = 0.0) -> tuple[bytes, ...]:
    """A sound file as 20 ms Opus frames at 48 kHz (what a browser sends), with `silence_after` seconds
    of silence appended: for synthetic participants (media/synthetic.py ClipTrack) in tests and bench."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    pcm = bytearray()
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            frame.pts = None
            for f in resampler.resample(frame):
                pcm += bytes(f.planes[0])[:f.samples * 2]
    pcm += bytes(int(48000 * silence_after) * 2)
    pcm += bytes((-len(pcm)) % 1920)
    enc = av.CodecContext.create("libopus", "w")
    enc.bit_rate, enc.format, enc.layout, enc.sample_rate = 32000, "s16", "mono", 48000
    enc.time_base = Fraction(1, 48000)
    out: list[bytes] = []
    for i in range(0, len(pcm), 1920):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.sample_rate = 48000
        frame.planes[0].update(bytes(pcm[i:i + 1920]))
        frame.pts = i // 2
        frame.time_base = Fraction(1, 48000)
        out.extend(bytes(p) for p in enc.encode(frame))
    out.extend(bytes(p) for p in enc.encode(None))
    return tuple(out)
