"""The signalling endpoint: one WebSocket per participant, JSON messages.

Browser → worker
  {"type": "join", "token": "...", "audio": true, "video": true}   first message, within 10 s
  {"type": "join", "token": "...", "offer": "..."}                    a WHEP player's viewer session (through
      the web app): answered with {"type": "answer", "sdp", "session"} and the connection closed; the
      session then lives without it (Participant.answer_offer)
  {"type": "answer", "sdp": "..."}                                    to each offer of the worker
  {"type": "candidate", "candidate": {"candidate": "...", "sdpMid": "0", "sdpMLineIndex": 0} | null}
  {"type": "state", "audio": bool, "video": bool, "screen": bool}    what the participant is sending
  {"type": "pin", "ids": [account ids]}                               always receive these cameras
  {"type": "receive", "video": bool}                                  false: audio-only mode
  {"type": "keyframe", "participant": id}                             ask that camera for a keyframe
  {"type": "leave"}

Worker → browser
  welcome (you, participants, iceServers), offer (sdp, publish mids), slots (mid → participant/source),
  joined, left, state, speaking (ids), error (code, message), bye (reason[, message]),
  caption (participant, utterance, text, final, start, end) and caption_note (participant, message) from
  the captions service (media/captions/service.py).
  pause (source, paused: stop/resume sending a camera nobody is shown),
  bandwidth (level "good" | "fair" | "weak", estimate bits/s or null, loss, cameras: how many cameras
  off the stage fit, cut: how many were left out for that, stageLow: the stage itself in its low layer):
  sent when it changes (media/bandwidth.py).
  A bye with a `message` means the web app revoked this person's place ("removed", "ended",
  "broadcast_ended", …: media/control.py); the worker then closes the connection and the page should not
  rejoin.
  viewers (count): how many watch the meeting's web broadcast, to participants (not to viewers), at most
  once a tick when it changes. A viewer (token role "viewer", issue 16) is offered no publishing
  transceivers, receives the stage and the speakers' audio only, and is never in `participants`,
  `joined`, `left` or `state`; its id is its account's negative.

Bad input (unparseable JSON, unknown message, malformed SDP or candidate) gets an
`error` for that participant only; the connection and the meeting carry on. A
missing, forged or expired token is refused and the connection closed; so is a
token issued before the web app revoked it (error code "revoked", with the reason).
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from media import tokens
from media.members import Participant, SignallingError, dumps

if TYPE_CHECKING:  # pragma: no cover
    from media.worker import Worker

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 10.0
MAX_MESSAGE = 256 * 1024
RATE = 40            # messages per second allowed on average …
BURST = 200          # … with this much burst (ICE candidates come in bursts)
OUTBOX_LIMIT = 2000  # a browser that reads nothing for this long is dropped
CLOSE_BAD_TOKEN = 4001
CLOSE_PROTOCOL = 4002
CLOSE_REVOKED = 4003
CLOSE_SLOW = 4008


def _parse(raw) -> dict:
    if isinstance(raw, bytes):
        raise SignallingError("bad_message", "Send JSON text messages.")
    try:
        msg = json.loads(raw)
    except ValueError:
        raise SignallingError("bad_message", "That message is not valid JSON.") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise SignallingError("bad_message", "A message must be a JSON object with a type.")
    return msg


def _error(err: SignallingError) -> str:
    return dumps({"type": "error", "code": err.code, "message": err.message})


class _Bucket:
    def __init__(self) -> None:
        self.tokens = float(BURST)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.at) * RATE)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def handle(worker: Worker, ws) -> None:
    """Serve one participant's WebSocket from join to leave."""
    try:
        raw = await asyncio.wait_for(ws.recv(), JOIN_TIMEOUT)
    except (TimeoutError, ConnectionClosed):
        return
    try:
        msg = _parse(raw)
        if msg["type"] != "join":
            raise SignallingError("join_first", "The first message must be a join with a token.")
        grant = tokens.verify(worker.config.secret_key, msg.get("token"))
    except SignallingError as err:
        await ws.send(_error(err))
        await ws.close(CLOSE_PROTOCOL, err.code)
        return
    except tokens.TokenError as err:
        log.info("refused a meeting token: %s", err.reason)
        await ws.send(_error(SignallingError("bad_token", err.reason)))
        await ws.close(CLOSE_BAD_TOKEN, "bad token")
        return
    refusal = worker.revocations.refusal(grant)
    if refusal is not None:
        log.info("refused a revoked meeting token of %s for meeting %s", grant.account, grant.meeting)
        await ws.send(_error(SignallingError("revoked", refusal)))
        await ws.close(CLOSE_REVOKED, "revoked")
        return
    if "offer" in msg:   # a WHEP player's session, set up by the web app (rooms/meetings/whep.py)
        await _whep(worker, ws, grant, msg["offer"])
        return

    outbox: asyncio.Queue = asyncio.Queue()  # JSON texts; None: close the connection after what is queued

    def send(message: dict) -> None:
        if outbox.qsize() > OUTBOX_LIMIT:
            asyncio.ensure_future(ws.close(CLOSE_SLOW, "not reading"))
            return
        outbox.put_nowait(dumps(message))

    async def writer() -> None:
        try:
            while True:
                text = await outbox.get()
                if text is None:
                    await ws.close()
                    return
                await ws.send(text)
        except ConnectionClosed:
            pass

    writing = asyncio.ensure_future(writer())
    meeting = worker.meeting(grant.meeting)
    participant = Participant(meeting, grant.account, grant.name, grant.role, send,
                              audio=msg.get("audio") is not False, video=msg.get("video") is not False)
    participant.hang_up = lambda: outbox.put_nowait(None)
    log.info("participant %s joined meeting %s", grant.account, grant.meeting)
    bucket = _Bucket()
    try:
        await meeting.add(participant)
        refusal = worker.revocations.refusal(grant)
        if refusal is not None:  # revoked while joining (add waited for an earlier window to close)
            await meeting.remove(participant, refusal, code="revoked")
        async for raw in ws:
            if participant.closed:
                break
            if not bucket.take():
                send({"type": "error", "code": "too_fast", "message": "Too many messages; slow down."})
                continue
            try:
                if len(raw) > MAX_MESSAGE:
                    raise SignallingError("too_large", "That message is too large.")
                msg = _parse(raw)
                if await dispatch(participant, msg) == "leave":
                    break
            except SignallingError as err:
                send({"type": "error", "code": err.code, "message": err.message})
    except ConnectionClosed:
        pass
    finally:
        await meeting.remove(participant, None)
        log.info("participant %s left meeting %s", grant.account, grant.meeting)
        # let queued messages (e.g. "bye") go out before closing
        for _ in range(20):
            if outbox.empty():
                break
            await asyncio.sleep(0.01)
        writing.cancel()


async def _whep(worker: Worker, ws, grant: tokens.Grant, offer: object) -> None:
    """Answer a WHEP player's offer for a broadcast's viewer and let the signalling connection go: the session
    lives on without it until the player's connection fails or closes, the web app stops it ("whep_stop",
    the HTTP DELETE), revokes it (drop, end, unwatch), or it never connects (CONNECT_TIMEOUT)."""
    if grant.role != "viewer":
        await ws.send(_error(SignallingError("viewers_only", "Only a broadcast's viewer may offer.")))
        await ws.close(CLOSE_PROTOCOL, "viewers only")
        return
    meeting = worker.meeting(grant.meeting)
    p = Participant(meeting, grant.account, grant.name, grant.role, lambda message: None, audio=False, video=False)
    p.whep = secrets.token_urlsafe(18)
    try:
        await meeting.add(p)
        sdp = await p.answer_offer(offer)
    except SignallingError as err:
        await meeting.remove(p, None)
        await ws.send(_error(err))
        await ws.close(CLOSE_PROTOCOL, err.code)
        return
    refusal = worker.revocations.refusal(grant)
    if refusal is not None:  # revoked while the answer was made
        await meeting.remove(p, None)
        await ws.send(_error(SignallingError("revoked", refusal)))
        await ws.close(CLOSE_REVOKED, "revoked")
        return
    log.info("WHEP viewer %s joined meeting %s", grant.account, grant.meeting)
    await ws.send(dumps({"type": "answer", "sdp": sdp, "session": p.whep}))
    await ws.close()


async def dispatch(p: Participant, msg: dict):
    kind = msg["type"]
    if kind == "answer":
        await p.on_answer(msg.get("sdp"))
    elif kind == "candidate":
        await p.on_candidate(msg.get("candidate"))
    elif kind == "state":
        p.set_state(msg.get("audio"), msg.get("video"), msg.get("screen"))
    elif kind == "pin":
        p.set_pins(msg.get("ids"))
    elif kind == "receive":
        p.set_receive_video(msg.get("video"))
    elif kind == "keyframe":
        p.ask_keyframe(msg.get("participant"))
    elif kind == "leave":
        return "leave"
    elif kind == "join":
        raise SignallingError("already_joined", "This connection has already joined.")
    else:
        raise SignallingError("unknown_message", f"Unknown message type {kind[:40]!r}.")
    return None
