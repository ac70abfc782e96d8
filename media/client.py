"""A synthetic meeting participant built on aiortc, for tests and the benchmark.

It speaks the worker's signalling protocol like the browser does, publishes
pre-encoded clips (no encoding) and counts the frames it receives per slot
without decoding them (the same decoder-queue tap the worker uses).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from websockets.asyncio.client import connect

from media import internals
from media.synthetic import ClipTrack

log = logging.getLogger(__name__)


class SyntheticParticipant:
    def __init__(self, url: str, token: str, *, video: tuple[bytes, ...] | None = None,
                 audio: tuple[bytes, ...] | None = None, speaking: bool = False) -> None:
        self.url = url
        self.token = token
        self.video_track = ClipTrack("video", video) if video else None
        self.audio_track = ClipTrack("audio", audio, silent=lambda: not self.speaking) if audio else None
        self.speaking = speaking
        self.pc: RTCPeerConnection | None = None
        self.ws = None
        self.me: dict | None = None
        self.members: dict[int, dict] = {}
        self.slots: dict[str, dict | None] = {}
        self.frames = defaultdict(int)            # (participant id, source) → frames received
        self.frames_by_mid = defaultdict(int)
        self.keyframes = defaultdict(int)
        self.first_frame_at: dict[tuple[int, str], float] = {}
        self.errors: list[dict] = []
        self.messages: list[dict] = []
        self.joined_at: float | None = None
        self.bye: str | None = None
        self.connected = asyncio.Event()
        self.welcomed = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> SyntheticParticipant:
        self.ws = await connect(self.url, max_size=2**20, compression=None)
        self.joined_at = time.time()
        await self.ws.send(json.dumps({"type": "join", "token": self.token,
                                       "audio": self.audio_track is not None, "video": self.video_track is not None}))
        self._task = asyncio.ensure_future(self._run())
        return self

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def leave(self) -> None:
        try:
            await self.send({"type": "leave"})
        except Exception:
            pass
        await self.close()

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self.ws:
            await self.ws.close()
        if self.pc:
            await self.pc.close()

    # -- signalling --------------------------------------------------------------
    async def _run(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                self.messages.append(msg)
                await self._handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("synthetic participant failed")

    async def _handle(self, msg: dict) -> None:
        t = msg["type"]
        if t == "welcome":
            self.me = msg["you"]
            self.members = {p["id"]: p for p in msg["participants"]}
            self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.pc.on("track", self._on_track)
            self.pc.on("connectionstatechange", self._on_state)
            self.welcomed.set()
        elif t == "offer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
            publish = msg.get("publish", {})
            for t_ in self.pc.getTransceivers():
                if t_.mid == publish.get("video") and self.video_track and t_.sender.track is None:
                    t_.sender.replaceTrack(self.video_track)
                    t_.direction = "sendonly"
                    internals.on_keyframe_request(t_.sender, self.video_track.restart_gop)
                elif t_.mid == publish.get("audio") and self.audio_track and t_.sender.track is None:
                    t_.sender.replaceTrack(self.audio_track)
                    t_.direction = "sendonly"
                    self._send_audio_level(t_.sender)
                elif t_.mid in publish.values() and t_.sender.track is None:
                    t_.direction = "inactive"
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
        elif t == "slots":
            self.slots = msg["slots"]
        elif t == "pause":  # the worker pauses a camera nobody is shown (a browser sets encoding.active)
            if msg.get("source") == "video" and self.video_track is not None:
                self.video_track.paused = bool(msg.get("paused"))
                if not self.video_track.paused:
                    self.video_track.restart_gop()
        elif t == "joined" or t == "state":
            self.members[msg["participant"]["id"]] = msg["participant"]
        elif t == "left":
            self.members.pop(msg["id"], None)
        elif t == "error":
            self.errors.append(msg)
        elif t == "bye":
            self.bye = msg.get("reason")

    def _send_audio_level(self, sender) -> None:
        """Pre-encoded Opus carries no level; add the RFC 6464 header extension like a browser would."""
        original = sender._next_encoded_frame

        async def next_frame(codec):
            frame = await original(codec)
            if frame is not None:
                frame.audio_level = -20 if self.speaking else -127
            return frame

        sender._next_encoded_frame = next_frame

    def _on_state(self) -> None:
        if self.pc and self.pc.connectionState == "connected":
            self.connected.set()

    def _on_track(self, track) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)

        def on_frame(codec, frame, t=transceiver):
            self.frames_by_mid[t.mid] += 1
            slot = self.slots.get(t.mid)
            if slot:
                key = (slot["participant"], slot["source"])
                self.frames[key] += 1
                if key not in self.first_frame_at:
                    self.first_frame_at[key] = time.time()
                if slot["source"] != "audio" and frame.data and not frame.data[0] & 1:
                    self.keyframes[key] += 1

        internals.tap_receiver(transceiver.receiver, on_frame)
        if track.kind == "video":  # like a browser, do not wait ~17 s behind a lost packet
            internals.skip_video_holes(transceiver.receiver)

    # -- helpers --------------------------------------------------------------------
    def video_frames_from(self, participant: int) -> int:
        return self.frames[(participant, "video")]

    def audio_frames_from(self, participant: int) -> int:
        return self.frames[(participant, "audio")]
