"""A media worker on its own event loop in a thread of the test process: for the browser tests that
drive Chromium against the worker with synthetic participants (media/client.py) beside it."""
from __future__ import annotations

import asyncio
import threading

from media import worker
from media.config import WorkerConfig


class WorkerThread:
    """Started on construction (port chosen by the kernel); `run` a coroutine on its loop; `stop` at the end."""

    def __init__(self, secret: str, **settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.port: int | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        config = WorkerConfig(secret_key=secret, host="127.0.0.1", port=0, addresses=["127.0.0.1"],
                              self_test=False, **settings)

        async def serve() -> None:
            self._stop = self.loop.create_future()
            await worker.serve(config, stop=self._stop, on_ready=self._on_ready)

        self._thread = threading.Thread(target=lambda: self.loop.run_until_complete(serve()), daemon=True)
        self._thread.start()
        assert self._ready.wait(20), "the media worker did not start"
        self.url = f"ws://127.0.0.1:{self.port}/"

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        stop = self._stop
        self.loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        self._thread.join(20)
