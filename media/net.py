"""Where the worker's media sockets live: which local addresses ICE offers as host
candidates, and which UDP ports they bind.

aioice gathers host candidates on every interface except loopback and binds
ephemeral ports. A worker behind a firewall needs a fixed UDP range, and tests
and benchmarks need loopback only, so both are configurable here:
`aioice.ice.get_host_addresses` (a plain module function) is replaced, and the
event loop's `create_datagram_endpoint` picks a free port from the range for
host candidates.
"""
from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import logging
import random
from collections.abc import Sequence

import aioice.ice

log = logging.getLogger(__name__)

_default_get_host_addresses = aioice.ice.get_host_addresses
_addresses: list[str] | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _addresses is None:
        return _default_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in _addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def use_addresses(addresses: Sequence[str] | None) -> None:
    """Offer host candidates only on `addresses` (None: aioice's default, every non-loopback interface)."""
    global _addresses
    _addresses = list(addresses) if addresses else None
    aioice.ice.get_host_addresses = _get_host_addresses


def current_addresses() -> list[str] | None:
    return None if _addresses is None else list(_addresses)


def parse_port_range(text: str) -> tuple[int, int] | None:
    """"40000-40999" → (40000, 40999); "" → None (ephemeral ports)."""
    text = (text or "").strip()
    if not text:
        return None
    lo, sep, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi if sep else lo)
    except ValueError:
        raise ValueError(f"UDP port range must look like 40000-40999, not {text!r}") from None
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"UDP port range {text!r} must lie within 1024-65535, low to high")
    return first, last


try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is pinned in requirements.txt
    uvloop = None


if uvloop is not None:
    class MediaLoop(uvloop.Loop):
        """uvloop (about a fifth less CPU per forwarded packet than asyncio's own loop here),
        binding host candidates within a UDP port range when one is set."""

        port_range: tuple[int, int] | None = None

        async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None, **kwargs):
            if self.port_range is None or local_addr is None or local_addr[1] != 0:
                return await super().create_datagram_endpoint(protocol_factory, local_addr=local_addr,
                                                              remote_addr=remote_addr, **kwargs)
            first, last = self.port_range
            size = last - first + 1
            start = random.randrange(size)
            for i in range(size):
                port = first + (start + i) % size
                try:
                    return await super().create_datagram_endpoint(
                        protocol_factory, local_addr=(local_addr[0], port), remote_addr=remote_addr, **kwargs)
                except OSError as exc:
                    if _bind_errno(exc) not in (errno.EADDRINUSE, errno.EACCES):
                        raise
            raise OSError(errno.EADDRINUSE, f"no free UDP port left in {first}-{last}")
else:  # pragma: no cover
    MediaLoop = None


def _bind_errno(exc: OSError) -> int | None:
    """uvloop wraps the bind error ("could not bind to local_addr") around the real one."""
    return exc.errno if exc.errno is not None else getattr(exc.__cause__, "errno", None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    return MediaLoop() if MediaLoop is not None else asyncio.new_event_loop()


def run(coro):
    """Run a worker coroutine on the media event loop (uvloop)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


def use_port_range(loop: asyncio.AbstractEventLoop, port_range: tuple[int, int] | None) -> None:
    """Bind media sockets of `loop` within `port_range` (inclusive)."""
    if port_range is None:
        return
    if MediaLoop is not None and isinstance(loop, MediaLoop):
        loop.port_range = port_range
        return
    original = loop.create_datagram_endpoint
    first, last = port_range
    size = last - first + 1
    counter = itertools.count(random.randrange(size))

    @functools.wraps(original)
    async def create_datagram_endpoint(protocol_factory, local_addr=None, remote_addr=None, **kwargs):
        if local_addr is None or local_addr[1] != 0:
            return await original(protocol_factory, local_addr=local_addr, remote_addr=remote_addr, **kwargs)
        for _ in range(size):
            port = first + next(counter) % size
            try:
                return await original(protocol_factory, local_addr=(local_addr[0], port), remote_addr=remote_addr,
                                      **kwargs)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
        raise OSError(errno.EADDRINUSE, f"no free UDP port left in {first}-{last}")

    loop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign]
