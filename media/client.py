"""A synthetic meeting participant built on aiortc, for tests and the benchmark.

It speaks the worker's signalling protocol like the browser does, publishes
pre-encoded clips (no encoding) and counts the frames it receives per slot
without decoding them (the same decoder-queue tap the worker uses); the width of
each keyframe (in its VP8 header) tells which simulcast layer arrived.

With `layers` it publishes its camera as a browser publishes simulcast, which
aiortc cannot: its answer promises `a=simulcast:send l;h`, aiortc's sender for the
camera stays idle, and `LayerSender`s write each layer's RTP themselves with its
own SSRC and the `sdes:rtp-stream-id` header extension, and answer PLIs for it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import random
from collections import defaultdict, deque

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket
from websockets.asyncio.client import connect

from media import internals, simulcast
from media.forwarding import IdleTrack
from media.synthetic import ClipTrack

log = logging.getLogger(__name__)

LATE = 0.3         # seconds behind schedule after which an audio packet is too late to play
LATE_WINDOW = 5.0  # seconds over which the schedule is taken (a jitter buffer adapts to slow drift)


def vp8_width(frame: bytes) -> int | None:
    """The width in a VP8 keyframe's header (RFC 6386 section 9.1), None for other frames."""
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF


class LayerSender:
    """One simulcast layer of a synthetic camera: writes its RTP straight through the DTLS transport
    and stands, in aiortc's RTP router, as the sender of its SSRC so that PLIs for it reach it."""

    def __init__(self, rid: str, clip: tuple[bytes, ...]) -> None:
        self.rid = rid
        self.track = ClipTrack("video", clip)
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.encoder = Vp8Encoder()
        self.plis = 0
        self.sent = 0
        self.bytes_sent = 0   # RTP as written (SRTP adds its tag): the transport's own count does not see these

    async def _handle_rtcp_packet(self, packet) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            self.plis += 1
            self.track.restart_gop()

    async def run(self, dtls, pt: int, mid: str) -> None:
        dtls._rtp_router.register_sender(self, self.ssrc)
        write = internals.rtp_writer(dtls)
        extensions = dtls._rtp_header_extensions_map
        while True:
            packet = await self.track.recv()
            if self.track.paused:
                continue
            payloads, timestamp = self.encoder.pack(packet)
            for i, payload in enumerate(payloads):
                rtp = RtpPacket(payload_type=pt, sequence_number=self.seq, timestamp=timestamp, ssrc=self.ssrc,
                                marker=1 if i == len(payloads) - 1 else 0, payload=payload)
                rtp.extensions.mid = mid
                rtp.extensions.rtp_stream_id = self.rid
                self.seq = (self.seq + 1) & 0xFFFF
                try:
                    data = rtp.serialize(extensions)
                    write(data)
                    self.sent += 1
                    self.bytes_sent += len(data)
                except ConnectionError:
                    pass


class SyntheticParticipant:
    def __init__(self, url: str, token: str, *, video: tuple[bytes, ...] | None = None,
                 audio: tuple[bytes, ...] | None = None, speaking: bool = False,
                 layers: dict[str, tuple[bytes, ...]] | None = None, downlink=None) -> None:
        self.url = url
        self.token = token
        self.downlink = downlink  # a media.linkemu.Downlink in front of what this participant receives
        self.layers = [LayerSender(rid, clip) for rid, clip in (layers or {}).items()]
        if self.layers:
            simulcast.negotiate_stream_ids()
            video = video or self.layers[-1].track.clip
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
        self.widths: dict[tuple[int, str], int] = {}   # width of the last keyframe received per stream
        self.late = defaultdict(int)                     # audio packets too late to play, per stream
        self._audio_clock: dict[tuple[int, str], list] = {}
        self._layer_tasks: list[asyncio.Task] = []
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
        for task in self._layer_tasks:
            task.cancel()
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
            if self.downlink is not None and not self.downlink.installed:
                self.downlink.install(self.pc.getTransceivers()[0].receiver.transport.transport._connection)
            publish = msg.get("publish", {})
            layered = bool(self.layers) and "a=simulcast:recv" in msg["sdp"]  # else publish the top layer only
            for t_ in self.pc.getTransceivers():
                if t_.mid == publish.get("video") and layered and t_.sender.track is None:
                    t_.sender.replaceTrack(IdleTrack("video"))
                    t_.direction = "sendonly"
                    self._start_layers(t_)
                elif t_.mid == publish.get("video") and self.video_track and t_.sender.track is None:
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
            sdp = self.pc.localDescription.sdp
            if layered:
                sdp = self._promise_layers(sdp, publish.get("video"))
            await self.send({"type": "answer", "sdp": sdp})
        elif t == "slots":
            self.slots = msg["slots"]
        elif t == "pause":  # the worker pauses a camera nobody is shown (a browser sets encoding.active),
            # or all of it but its low simulcast layer ("low_only")
            if msg.get("source") == "video" and self.video_track is not None:
                self.video_track.paused = bool(msg.get("paused"))
                for layer in self.layers:
                    was = layer.track.paused
                    layer.track.paused = bool(msg.get("paused")) or (bool(msg.get("low_only")) and layer.rid != "l")
                    if was and not layer.track.paused:
                        layer.track.restart_gop()
                if not self.video_track.paused and not self.layers:
                    self.video_track.restart_gop()
        elif t == "joined" or t == "state":
            self.members[msg["participant"]["id"]] = msg["participant"]
        elif t == "left":
            self.members.pop(msg["id"], None)
        elif t == "error":
            self.errors.append(msg)
        elif t == "bye":
            self.bye = msg.get("reason")

    def _promise_layers(self, sdp: str, mid: str | None) -> str:
        """What a browser's answer says when it sends simulcast (aiortc's own answer does not)."""
        rids = [layer.rid for layer in self.layers]
        out = []
        for section in simulcast.sections(sdp):
            if out and f"a=mid:{mid}" in section:
                section = [x for x in section if not x.startswith(("a=ssrc", "a=rid:", "a=simulcast:"))]
                section += [f"a=rid:{r} send" for r in rids] + ["a=simulcast:send " + ";".join(rids)]
            out.append(section)
        return simulcast.join_sections(out)

    def _start_layers(self, transceiver) -> None:
        """Start the layer senders once aiortc starts the camera's (idle) sender: the payload type and
        header extension ids are known then."""
        sender = transceiver.sender
        original = sender.send

        async def send(parameters) -> None:
            await original(parameters)
            if self._layer_tasks:
                return
            pt = parameters.codecs[0].payloadType
            self._layer_tasks = [asyncio.ensure_future(layer.run(sender.transport, pt, transceiver.mid))
                                 for layer in self.layers]

        sender.send = send

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
                if frame is not None and frame.data and not frame.data[0] & 1:
                    self.keyframes[key] += 1
                    width = vp8_width(frame.data)
                    if width is not None:
                        self.widths[key] = width

        if track.kind == "audio":
            # One Opus packet is one frame: count packets as they arrive (aiortc's small audio jitter
            # buffer discards bursts a busy test machine makes), and how late each is for playing.
            def on_packet(packet, t=transceiver):
                on_frame(None, None, t)
                slot = self.slots.get(t.mid)
                if slot:
                    self._lateness((slot["participant"], "audio"), packet.timestamp)

            internals.tap_packets(transceiver.receiver, on_packet)
            return
        internals.tap_receiver(transceiver.receiver, on_frame)
        if track.kind == "video":  # like a browser, do not wait ~17 s behind a lost packet
            internals.skip_video_holes(transceiver.receiver)

    def _lateness(self, key: tuple[int, str], timestamp: int) -> None:
        """An audio packet arriving more than `LATE` s behind the earliest schedule (arrival minus RTP
        time) of its stream's last `LATE_WINDOW` seconds would miss its turn in a browser's adaptive
        jitter buffer: counted late."""
        now = time.monotonic()
        state = self._audio_clock.get(key)
        if state is None or ((timestamp - state[0]) & 0xFFFFFFFF) > 48000 * 60:  # first, or a new epoch
            state = self._audio_clock[key] = (timestamp, now, deque())
        base_ts, base_at, recent = state
        offset = now - base_at - ((timestamp - base_ts) & 0xFFFFFFFF) / 48000
        while recent and recent[0][0] < now - LATE_WINDOW:
            recent.popleft()
        while recent and recent[-1][1] >= offset:
            recent.pop()
        recent.append((now, offset))
        if offset - recent[0][1] > LATE:
            self.late[key] += 1

    # -- helpers --------------------------------------------------------------------
    def video_frames_from(self, participant: int) -> int:
        return self.frames[(participant, "video")]

    def audio_frames_from(self, participant: int) -> int:
        return self.frames[(participant, "audio")]
