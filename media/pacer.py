"""One subscriber's outgoing packets, paced to their downlink estimate, audio first (issue 15).

The worker forwards packets as they arrive, and a camera's packets arrive in bursts:
a keyframe is tens of packets at once. On a line near its limit such a burst fills
the line's queue (tbf's, a home router's), and what comes behind it in that queue,
the speaker's audio too, waits or is dropped. SFUs put a pacer in front of each
subscriber for this (libwebrtc's PacedSender, mediasoup's and Jitsi's pacers): video
leaves no faster than the estimate, so the line's queue stays short, while audio
never waits behind video: it is sent at once, and only counted against the rate.
On a weak line audio is also sent twice (the way Jitsi and Chromium send Opus with
redundancy, RED, to lossy receivers): a few tens of kbit/s buy the speech that a
random loss or a moment of overflow would have taken.

Video waits and is never dropped here: a packet dropped by the pacer is a loss the
subscriber reports, and the estimate would take it for the line's (and cut again, and
the pacer drop more). The allocation keeps what is chosen within the rate, so the wait
is a burst's; a queue longer than `MAX_DELAY` leaves faster. With no estimate (the line
has shown no limit) nothing waits: packets go out as they come, as before.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from media.bandwidth import OVERHEAD

MAX_DELAY = 1.0    # seconds of video the pacer holds at most: a longer queue leaves faster
BURST = 0.01       # seconds of the rate that may leave at once (a packet or two)
AUDIO_AGAIN = 0.06  # seconds after which a weak line's audio packet is sent again (well within a jitter buffer)
PACE = 1.1         # × the estimate: what is chosen fits the estimate on average; this smooths its bursts

Send = Callable[[bytes], None]


class Pacer:
    """Paces one subscriber's video to `rate` bits/s (None: no pacing); audio goes at once."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.rate: float | None = None
        self._free_at = 0.0                       # when the line, as paced, has sent everything given it
        self._queue: deque[tuple[Send, bytes]] = deque()
        self._queued_bits = 0
        self._timer: asyncio.TimerHandle | None = None
        self.delayed = 0                          # video packets that waited at all
        self._lifting = False                     # no estimate any more: pacing ends once the queue is empty
        self._catch_up = 0.0                      # bits/s that empty a queue longer than MAX_DELAY in time

    # -- what the forwarders call ------------------------------------------------------------------
    def audio(self, send: Callable[..., None]) -> Send:
        """`send` for an audio slot (`media.internals.rtp_writer`'s): never waits, only counts against the
        rate. On a line that has shown a limit each packet also goes a second time `AUDIO_AGAIN` s later:
        what a random loss or an overflow took is there in time to play, and the copy costs the subscriber
        nothing when the first arrived (SRTP's replay check drops it)."""
        def paced(data: bytes) -> None:
            if self.rate is None:
                send(data)
                return
            self._account(len(data))
            self._account(len(data))
            send(data, AUDIO_AGAIN)
        return paced

    def video(self, send: Send) -> Send:
        """`send` for a video slot: waits its turn at the rate, dropped if that is too long."""
        def paced(data: bytes) -> None:
            self._push(send, data)
        return paced

    def set_rate(self, estimate: float | None) -> None:
        """The estimate changed. When it is lifted, what waits still leaves at the last rate (all at once
        would be a burst the line, or the subscriber's socket, drops); pacing ends once it has left."""
        if estimate is None:
            self._lifting = bool(self._queue)
            if not self._lifting:
                self.rate = None
            return
        self._lifting = False
        self.rate = estimate * PACE
        if self._queue:
            self._schedule()

    # -- the pace ----------------------------------------------------------------------------------
    def _bits(self, size: int) -> int:
        return (size + OVERHEAD) * 8

    def _account(self, size: int) -> None:
        if self.rate is None:
            return
        now = self._now()
        # a queue longer than MAX_DELAY leaves faster rather than being dropped (libwebrtc's pacer does
        # the same): a packet dropped here is a loss the subscriber reports, and the estimate would take
        # it for the line's, cut, and the pacer would drop more
        self._catch_up = max(self._catch_up, self._queued_bits / MAX_DELAY)  # held until the queue is empty
        rate = max(self.rate, self._catch_up)
        self._free_at = max(self._free_at, now - BURST) + self._bits(size) / rate

    def _push(self, send: Send, data: bytes) -> None:
        rate = self.rate
        if rate is None:
            send(data)
            return
        now = self._now()
        if not self._queue and self._free_at <= now:
            self._account(len(data))
            send(data)
            return
        self.delayed += 1
        self._queue.append((send, data))
        self._queued_bits += self._bits(len(data))
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, self._free_at - self._now()), self._drain)

    def _drain(self) -> None:
        self._timer = None
        now = self._now()
        while self._queue and self._free_at <= now:
            send, data = self._queue.popleft()
            self._queued_bits -= self._bits(len(data))
            self._account(len(data))
            try:
                send(data)
            except ConnectionError:
                pass
        if self._queue:
            self._schedule()
            return
        self._catch_up = 0.0
        if self._lifting:
            self._lifting = False
            self.rate = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._queued_bits = 0
