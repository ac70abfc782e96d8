"""An emulated slow line in front of a synthetic participant (tests and the benchmark).

What `tc … tbf` plus `netem` do on a real interface, done on the datagrams aioice
hands to aiortc: a token bucket of `rate` bits/s whose queue holds at most
`latency` seconds of data (more is dropped, as tbf does), then a fixed `delay` and
random `loss`. It runs in the participant's own process, so it needs neither root
nor a network namespace; tests/test_media_weak_link.py uses real ones where it can.
"""
from __future__ import annotations

import asyncio
import random
import time


class Downlink:
    """Shapes what one aioice `Connection` receives. `rate=None` lifts the limit."""

    def __init__(self, rate: float | None, *, latency: float = 0.1, delay: float = 0.0, loss: float = 0.0,
                 seed: int = 0) -> None:
        self.rate = rate
        self.latency = latency
        self.delay = delay
        self.loss = loss
        self._random = random.Random(seed)
        self._free_at = 0.0
        self.passed = self.dropped = 0
        self.installed = False

    def install(self, connection) -> None:
        """Put the line in front of `connection` (aioice.Connection; its `data_received` is called for
        every datagram of the nominated pair)."""
        self.installed = True
        original = connection.data_received
        loop = asyncio.get_running_loop()

        def data_received(data: bytes, component: int) -> None:
            now = time.monotonic()
            if self.rate is not None:
                start = max(now, self._free_at)
                if start - now > self.latency:
                    self.dropped += 1
                    return
                self._free_at = start + len(data) * 8 / self.rate
                due = self._free_at
            else:
                due = now
            if self.loss and self._random.random() < self.loss:
                self.dropped += 1
                return
            self.passed += 1
            due += self.delay
            if due <= now:
                original(data, component)
            else:
                loop.call_at(loop.time() + (due - now), original, data, component)

        connection.data_received = data_received
