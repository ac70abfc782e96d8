"""A minimal Socket.IO 5 (Engine.IO 4) client over aiohttp's WebSocket, for the scale benchmarks.

It connects with a token, subscribes to a room with an acknowledgement, answers the server's pings, and of the
events looks only at `post.created`, by its client id's position in the frame. A browser does all of that on its
own machine; python-socketio's client decodes every frame in Python, and 1,500 of those per post in one process
on the server's two cores made the load generator, not the server, the larger part of the latency measured."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp

MARKER = '"client_id":"'


async def _expect(ws, prefix: str) -> str:
    while True:
        msg = await ws.receive(timeout=120)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"closed while waiting for {prefix!r}: {msg.type}")
        if msg.data == "2":
            await ws.send_str("3")
        elif msg.data.startswith(prefix):
            return msg.data
        elif msg.data.startswith("44"):   # the server refused the connection (connect_error)
            await ws.close()
            raise RuntimeError(f"refused: {msg.data[:200]}")


async def connect(http: aiohttp.ClientSession, url: str, token: str, cookie: str, room_id: int):
    """An open, subscribed connection through `url` (https://…), or an exception saying why not. `cookie` is the
    session cookie's value: nginx's sticky hash spreads connections by it, as it spreads people."""
    ws = await http.ws_connect(url.replace("https://", "wss://") + "/socket.io/?EIO=4&transport=websocket",
                               headers={"Cookie": f"session={cookie}"}, max_msg_size=0)
    await _expect(ws, "0{")
    await ws.send_str("40" + json.dumps({"token": token}))
    await _expect(ws, "40")
    await ws.send_str("421" + json.dumps(["subscribe", {"room_id": room_id}]))
    ack = await _expect(ws, "431")
    if '"ok": true' not in ack and '"ok":true' not in ack:
        await ws.close()
        raise RuntimeError(f"subscribe refused: {ack[:200]}")
    return ws


async def listen(ws, on_post: Callable[[str, float], None], on_closed: Callable[[], None]) -> None:
    """Until the connection closes: `on_post(client id, monotonic time)` for each post.created frame."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        data = msg.data
        if data.startswith('42["post.created"'):
            at = data.find(MARKER)
            if at != -1:
                at += len(MARKER)
                on_post(data[at:data.index('"', at)], time.monotonic())
        elif data == "2":
            await ws.send_str("3")
    on_closed()
