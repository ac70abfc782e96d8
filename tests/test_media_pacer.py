"""The per-subscriber pacer of issue 15 (media/pacer.py): audio never waits behind video; video leaves at
the estimate; a queue longer than MAX_DELAY leaves faster instead of being dropped; lifting the estimate
drains what waits at the last rate before pacing ends; a weak line's audio goes twice."""
from __future__ import annotations

import asyncio

from media.bandwidth import OVERHEAD
from media.pacer import AUDIO_AGAIN, MAX_DELAY, PACE, Pacer


class Line:
    """What left the pacer, and when (loop time)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, bytes]] = []
        self.again: list[float | None] = []

    def video(self, data: bytes) -> None:
        self.sent.append((asyncio.get_running_loop().time(), "video", data))

    def audio(self, data: bytes, again_after: float | None = None) -> None:
        self.sent.append((asyncio.get_running_loop().time(), "audio", data))
        self.again.append(again_after)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_without_an_estimate_nothing_waits_and_audio_goes_once():
    async def go():
        line, pacer = Line(), Pacer()
        video, audio = pacer.video(line.video), pacer.audio(line.audio)
        for i in range(50):
            video(bytes(1200))
        audio(b"a" * 100)
        assert len(line.sent) == 51 and line.again == [None]
    run(go())


def test_video_leaves_at_the_estimate_and_audio_never_waits_behind_it():
    async def go():
        line, pacer = Line(), Pacer()
        pacer.set_rate(500_000)
        video, audio = pacer.video(line.video), pacer.audio(line.audio)
        start = asyncio.get_running_loop().time()
        for _ in range(30):                      # a keyframe: 30 packets at once, ~290 kbit
            video(bytes(1200))
        audio(b"a" * 100)
        assert line.sent[-1][1] == "audio"       # sent at once, ahead of the waiting video
        assert line.again == [AUDIO_AGAIN]       # and once more a little later: the line is weak
        assert sum(1 for _, kind, _ in line.sent if kind == "video") < 5
        while sum(1 for _, kind, _ in line.sent if kind == "video") < 30:
            await asyncio.sleep(0.01)
        took = line.sent[-1][0] - start
        bits = 30 * (1200 + OVERHEAD) * 8 + 2 * (100 + OVERHEAD) * 8
        assert took >= 0.8 * bits / (500_000 * PACE)  # paced, not a burst
        assert pacer.delayed > 0
    run(go())


def test_a_queue_longer_than_max_delay_leaves_faster_and_nothing_is_dropped():
    async def go():
        line, pacer = Line(), Pacer()
        pacer.set_rate(50_000)                   # far below what is pushed
        video = pacer.video(line.video)
        start = asyncio.get_running_loop().time()
        for _ in range(100):                     # ~1 Mbit: 18 s at the rate
            video(bytes(1200))
        while len(line.sent) < 100:
            await asyncio.sleep(0.02)
        assert line.sent[-1][0] - start < 5 * MAX_DELAY   # not the 18 s the rate alone would take
    run(go())


def test_lifting_the_estimate_drains_at_the_last_rate_then_stops_pacing():
    async def go():
        line, pacer = Line(), Pacer()
        pacer.set_rate(400_000)
        video = pacer.video(line.video)
        for _ in range(20):
            video(bytes(1200))
        waiting = 20 - len(line.sent)
        assert waiting > 10
        pacer.set_rate(None)
        await asyncio.sleep(0)
        assert len(line.sent) < 20               # not all at once
        while len(line.sent) < 20:
            await asyncio.sleep(0.01)
        assert pacer.rate is None
        video(bytes(1200))
        assert len(line.sent) == 21              # unpaced again
    run(go())


def test_close_forgets_what_waits():
    async def go():
        line, pacer = Line(), Pacer()
        pacer.set_rate(100_000)
        video = pacer.video(line.video)
        for _ in range(20):
            video(bytes(1200))
        sent = len(line.sent)
        pacer.close()
        await asyncio.sleep(0.3)
        assert len(line.sent) == sent
    run(go())
