"""The members of a meeting inside one worker process, and what each receives.

Each participant has one RTCPeerConnection, and the worker is always the
offerer. It carries:

- three receive-only transceivers for what the participant publishes
  (microphone, camera, screen); the browser attaches its tracks to them;
- send-only "slots", each an `RtpForwarder` whose source can change: video slots
  carry the cameras of the N most recently active speakers (plus pinned people
  and screen shares), audio slots carry the people speaking now. Slots are
  reused as people come and go; a new transceiver (and a renegotiation) is
  needed only when a participant needs more slots than ever before.

A member may also live on another worker process of the same node
(`RemoteMember`, fed through `media.cluster`). Which streams go to whom is
decided by the meeting (media/meeting.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import candidate_from_sdp

from media import bandwidth, internals, simulcast
from media.forwarding import CODECS, IdleTrack, RtpForwarder, Source
from media.pacer import Pacer

log = logging.getLogger(__name__)

SPEAKING_LEVEL = 50       # -dBov: packets louder than -50 dBov count as voice
PAUSE_AFTER = 3.0         # a camera nobody has been shown for this long is paused at the browser
STALL = 2.0               # a wanted camera that sends nothing for this long is shown as paused by a weak uplink
PUBLISHED = ("audio", "video", "screen")
LOW = ":low"   # the name a simulcast camera's low layer is announced under to the worker's other processes


class MeetingHooks(Protocol):
    """What a member asks of its meeting (media.meeting.Meeting), named here so that this module need not
    import the meeting, which imports it."""

    id: int
    worker: Any

    def speakers_changed(self, m: Member) -> None: ...
    def member_changed(self, m: Member) -> None: ...
    def schedule_update(self) -> None: ...
    def source(self, member_id: int, name: str) -> Source | None: ...
    def layer(self, member_id: int, name: str, high: bool) -> Source | None: ...
    def source_added(self, m: Member, name: str, source: Source) -> None: ...
    async def remove(self, m: Member, reason: str | None = ..., *, code: str | None = None) -> None: ...


class SignallingError(Exception):
    """Bad input from one participant: reported to that participant only."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _codec_preferences(kind: str) -> list:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    wanted = [c for c in caps if c.mimeType.lower() == CODECS[kind]]
    if kind == "video":
        wanted += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return wanted


class Member:
    """Someone in a meeting, wherever their media arrives."""

    remote = False

    def __init__(self, meeting: MeetingHooks, account: int, name: str, role: str) -> None:
        self.meeting = meeting
        self.account = abs(account)
        # a viewer's id is the negative of its account's, so that someone may watch the broadcast in one
        # window and take part in another without one session replacing the other
        self.id = -self.account if role == "viewer" else account
        self.name = name
        self.role = role
        self.audio = True
        self.video = True
        self.screen = False
        self.sources: dict[str, Source] = {}
        self.layers: dict[str, simulcast.Layers] = {}  # a simulcast camera's layers; its top one is in sources
        self.order = time.time()  # join time: the same order on every process of a worker
        self.last_spoke = 0.0
        self.speaking = False
        self.stalled = False  # camera on, but its uplink delivers nothing: "camera paused (weak connection)"
        self._voice = 0

    @property
    def viewer(self) -> bool:
        """A broadcast's viewer: receives the stage and the speakers' audio, sends nothing, and is counted
        rather than shown as a tile."""
        return self.role == "viewer"

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "audio": self.audio, "video": self.video,
                "screen": self.screen, "speaking": self.speaking, "stalled": self.stalled}

    def hear(self, level: int) -> None:
        """One audio packet's level (RFC 6464: 0 loudest … 127 silence)."""
        loud = level <= SPEAKING_LEVEL and self.audio
        self._voice = ((self._voice << 1) | loud) & 0x3FF
        if loud and self._voice.bit_count() >= 3:
            self.last_spoke = time.monotonic()
            if not self.speaking:
                self.speaking = True
                self.meeting.speakers_changed(self)

    def set_speaking(self, speaking: bool, last_spoke: float | None = None) -> None:
        """Used for members on other processes: their worker detects speech."""
        if last_spoke is not None:
            self.last_spoke = last_spoke
        if speaking != self.speaking:
            self.speaking = speaking
            self.meeting.speakers_changed(self)

    def close_sources(self) -> None:
        for layers in self.layers.values():
            layers.close()
        self.layers.clear()
        for src in self.sources.values():
            src.close()
        self.sources.clear()

    def layer(self, name: str, high: bool) -> Source | None:
        """The stream `name` in its high (stage) or low (thumbnail) layer; the only one without simulcast.
        A simulcast camera published on another process arrives as two sources: `name` (its top layer)
        and `name:low` (see `LOW`)."""
        layers = self.layers.get(name)
        if layers is not None:
            return layers.layer(high)
        if not high and name + LOW in self.sources:
            return self.sources[name + LOW]
        return self.sources.get(name)


class RemoteMember(Member):
    """A member connected to another process of this worker (see media.cluster)."""

    remote = True
    shard: int | None = None


class Slot:
    """One send-only transceiver of a participant, showing one member's stream at a time."""

    def __init__(self, kind: str, forwarder: RtpForwarder, track: IdleTrack, transceiver) -> None:
        self.kind = kind
        self.forwarder = forwarder
        self.track = track
        self.transceiver = transceiver
        self.key: tuple[int, str] | None = None  # (member id, "audio" | "video" | "screen")

    @property
    def mid(self) -> str | None:
        return self.transceiver.mid

    def assign(self, key: tuple[int, str] | None, source: Source | None) -> None:
        self.key = key
        self.forwarder.set_source(source)

    def stop(self) -> None:
        self.forwarder.stop()
        self.track.stop()


class Participant(Member):
    """A member connected to this process: their WebSocket and peer connection."""

    def __init__(self, meeting: MeetingHooks, account: int, name: str, role: str, send: Callable[[dict], None],
                 *, audio: bool = True, video: bool = True) -> None:
        super().__init__(meeting, account, name, role)
        self.audio, self.video = audio, video
        self._send = send
        self.hang_up: Callable[[], None] | None = None  # closes the signalling connection (set by signalling)
        self.worker = meeting.worker
        cfg = self.worker.config
        servers = [RTCIceServer(urls=cfg.stun)] if cfg.stun else []
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.publish: dict[str, Any] = {}
        self.slots: list[Slot] = []
        self.pins: set[int] = set()
        self.receive_video = True
        self.closed = False
        self.connected_at: float | None = None
        self.joined_at = time.monotonic()
        self._lock = asyncio.Lock()
        self._again = False
        self._sent_slots: dict = {}
        self.camera_rids: list[str] = []   # the simulcast layers the browser's answer promised
        self.estimate = bandwidth.Estimate()
        self.estimate.on_alarm = self._refit
        self.pacer = Pacer()
        self._fit_inputs: tuple | None = None
        self._nacked = 0                      # NACKed packets of all slots at the last fit
        self.video_limit: int | None = None   # cameras off the stage that fit the estimate (None: all)
        self.stage_low = False                # the stage in its low layer: even it does not fit
        self._sent_bandwidth: dict | None = None
        self.paused: dict[str, bool] = {}
        self.low_only: dict[str, bool] = {}   # a simulcast camera asked to send its low layer alone
        self.whep: str | None = None          # a WHEP session's id: the player offered, its slots are fixed
        self.resumed_at: dict[str, float] = {}  # when the worker last asked the browser to send a camera again
        self._pause_timers: dict[str, asyncio.TimerHandle] = {}
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        if role not in ("observer", "viewer"):
            for name in PUBLISHED:
                kind = "audio" if name == "audio" else "video"
                t = self.pc.addTransceiver(kind, direction="recvonly")
                t.setCodecPreferences(_codec_preferences(kind))
                self.publish[name] = t
        else:
            self.audio = self.video = False

    def send(self, message: dict) -> None:
        if not self.closed:
            self._send(message)

    # -- publishing --------------------------------------------------------------
    def _on_track(self, track) -> None:
        name = next((n for n, t in self.publish.items() if t.receiver.track is track), None)
        if name is None:
            return
        receiver = self.publish[name].receiver
        kind = track.kind
        if name == "video":
            layers = simulcast.Layers(f"{self.id}:video", self.camera_rids, receiver, simulcast.pli)
            simulcast.route_by_mid(receiver.transport, receiver, layers.learn)
            internals.tap_packets(receiver, layers.feed_rtp)
            for layer in layers.sources:
                layer.on_demand = lambda wanted, layers=layers: self._demand(
                    "video", layers.has_sinks(), low_only=layers.simulcast and not layers.sources[-1].sinks)
            self._demand("video", False)
            self.layers["video"] = layers
            self.sources["video"] = layers.sources[-1]
            self.meeting.source_added(self, "video", layers.sources[-1])
            if layers.simulcast:   # other processes' thumbnails need the low layer too
                self.meeting.source_added(self, "video" + LOW, layers.sources[0])
            return
        source = Source(kind, f"{self.id}:{name}",
                        request_keyframe=lambda: asyncio.ensure_future(internals.send_pli(receiver)))
        if name == "audio":
            hear, feed = self.hear, source.feed_rtp

            def on_packet(packet) -> None:
                level = packet.extensions.audio_level
                if level is not None:
                    hear(level[1])
                feed(packet)

            internals.tap_packets(receiver, on_packet)
        else:
            internals.tap_packets(receiver, source.feed_rtp)
        if name != "audio":
            source.on_demand = lambda wanted, name=name: self._demand(name, wanted)
            self._demand(name, False)
        self.sources[name] = source
        self.meeting.source_added(self, name, source)

    def uplink_stalled(self, now: float) -> bool:
        """The camera is on and wanted, yet nothing of it has arrived for `STALL` seconds: the browser's
        uplink has collapsed (its own encoder adapts first, so this is the last resort). Others are shown
        "camera paused (weak connection)" rather than a frozen picture."""
        layers = self.layers.get("video")
        if (layers is None or not self.video or self.paused.get("video", False) or not layers.has_sinks()
                or self.connected_at is None):
            return False
        last = max([s.last_at for s in layers.sources] + [self.resumed_at.get("video", self.connected_at)])
        return now - last > STALL

    def _demand(self, name: str, wanted: bool, low_only: bool = False) -> None:
        """Pause a camera (or screen) at the browser while nobody is shown it, and send a simulcast camera's
        low layer alone while nobody is shown it large (thumbnails only, or only a recording of it): both
        after PAUSE_AFTER, in case it is wanted back at once; resume it (or its full layer) at once when
        needed."""
        timer = self._pause_timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        narrowing = low_only and not self.paused.get(name, False) and not self.low_only.get(name, False)
        if wanted and not narrowing:
            self._set_paused(name, False, low_only)
        else:
            self._pause_timers[name] = asyncio.get_running_loop().call_later(
                PAUSE_AFTER, self._set_paused, name, not wanted, wanted and low_only)

    def _set_paused(self, name: str, paused: bool, low_only: bool = False) -> None:
        self._pause_timers.pop(name, None)
        if (self.paused.get(name, False) == paused and self.low_only.get(name, False) == low_only) or self.closed:
            return
        resumed = self.paused.get(name, False) and not paused
        widened = self.low_only.get(name, False) and not low_only and not paused
        self.paused[name], self.low_only[name] = paused, low_only
        if resumed:
            self.resumed_at[name] = time.monotonic()
        self.send({"type": "pause", "source": name, "paused": paused, **({"low_only": True} if low_only else {})})
        source = self.sources.get(name)
        if (resumed or widened) and source is not None:
            source.request_keyframe()  # a resumed encoder should start with one anyway

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
        if state in ("failed", "closed") and not self.closed:
            log.info("participant %s in meeting %s: connection %s", self.id, self.meeting.id, state)
            asyncio.ensure_future(self.meeting.remove(self, "Your connection to the meeting was lost."))

    # -- receiving: slots ----------------------------------------------------------
    def _new_slot(self, kind: str) -> Slot:
        track = IdleTrack(kind)
        return self._slot_on(self.pc.addTransceiver(track, direction="sendonly"), track)

    def _slot_on(self, transceiver, track: IdleTrack) -> Slot:
        """Make `transceiver` (sending `track`) a slot: VP8 or Opus, fed by a forwarder through the pacer,
        its receiver's feedback folded into this participant's estimate."""
        kind = track.kind
        transceiver.setCodecPreferences(_codec_preferences(kind))
        forwarder = RtpForwarder(kind)
        internals.forward_through(transceiver.sender, forwarder,
                                  lambda packet, f=forwarder: self.estimate.feedback(f.ssrc, packet),
                                  self.pacer.video if kind == "video" else self.pacer.audio)
        slot = Slot(kind, forwarder, track, transceiver)
        self.slots.append(slot)
        return slot

    def send_reports(self) -> None:
        """One RTCP compound packet with a sender report for each slot (instead of one packet per slot)."""
        if self.closed or not self.slots:
            return
        try:
            write = internals.rtcp_writer(self.slots[0].transceiver.sender.transport)
            for packet in internals.sender_reports([s.forwarder for s in self.slots]):
                write(packet)
        except ConnectionError:
            pass

    def assign(self, wanted_video: list[tuple[int, str]], wanted_audio: list[tuple[int, str]],
               stage: tuple[int, str] | None = None, stage_low: bool = False) -> None:
        """Point the slots at the wanted streams, adding transceivers only when all are busy. A simulcast
        camera is sent in its high layer on the `stage` slot and its low layer elsewhere; a slot whose
        camera moves on or off the stage changes layer on the new layer's next keyframe."""
        created = False
        for kind, wanted in (("video", wanted_video), ("audio", wanted_audio)):
            slots = [s for s in self.slots if s.kind == kind]
            keep = set(wanted)
            for s in slots:
                if s.key is not None and (s.key not in keep or s.forwarder.source is None):
                    s.assign(None, None)
                elif s.key is not None and kind == "video":
                    layer = self.meeting.layer(*s.key, s.key == stage and not stage_low)
                    if layer is not None and layer is not s.forwarder.target:
                        s.forwarder.set_source(layer, seamless=True)
            have = {s.key for s in slots if s.key is not None}
            free = [s for s in slots if s.key is None]
            for key in wanted:
                if key in have:
                    continue
                source = (self.meeting.layer(*key, key == stage and not stage_low) if kind == "video"
                          else self.meeting.source(*key))
                if source is None:
                    continue
                if free:
                    slot = free.pop(0)
                elif self.whep is not None:   # fixed slots: the first wanted streams only
                    break
                else:
                    slot = self._new_slot(kind)
                    created = True
                slot.assign(key, source)
        if created:
            asyncio.ensure_future(self.negotiate())
        else:
            self.send_slots()

    def fit(self, now: float, audio: float, stage_high: float, stage_low: float, thumbnails: list[float]) -> bool:
        """Once a second: fold the last second's feedback into the estimate and choose what fits it
        (media.bandwidth.allocate); True if that changed. The page is told when its connection
        indicator or the set of cameras changes."""
        weights, sent = {}, 0.0
        nacked = sum(s.forwarder.nacked for s in self.slots)
        for s in self.slots:
            f = s.forwarder
            before = f.sent_rate.packets
            sent += f.sent_rate.sample(now, f.octets, f.packets)
            weights[f.ssrc] = f.packets - before
        high, n = bandwidth.allocate(self.estimate.bps, audio, stage_high, stage_low, thumbnails)
        step = (stage_high - stage_low) if not high else (thumbnails[n] if n < len(thumbnails) else 0.0)
        budget = self.estimate.update(sent, audio + stage_high + sum(thumbnails), weights, step,
                                      max(0, nacked - self._nacked))
        if log.isEnabledFor(logging.DEBUG):
            e = self.estimate
            log.debug("fit %s: sent %.0f wanted %.0f estimate %s loss %.3f nacked %d rtt %s queue %.3f",
                      self.account, sent, audio + stage_high + sum(thumbnails), e.bps and round(e.bps),
                      e.loss, nacked - self._nacked, e.rtt and round(e.rtt, 3), e.queue)
        self._nacked = nacked
        self._fit_inputs = (audio, stage_high, stage_low, thumbnails)
        return self._apply(budget, audio, stage_high, stage_low, thumbnails)

    def _refit(self) -> None:
        """Heavy loss reported between two fits: shrink at once (media.bandwidth.Estimate.emergency)."""
        if self._fit_inputs is not None and not self.closed and self.estimate.emergency():
            if self._apply(self.estimate.bps, *self._fit_inputs):
                self.meeting.schedule_update()

    def _apply(self, budget: float | None, audio: float, stage_high: float, stage_low: float,
               thumbnails: list[float]) -> bool:
        high, n = bandwidth.allocate(budget, audio, stage_high, stage_low, thumbnails)
        chosen = audio + (stage_high if high else stage_low) + sum(thumbnails[:n])
        self.pacer.set_rate(None if budget is None else max(budget, chosen))  # the floor goes whatever
        congested = self.estimate.congested()
        for s in self.slots:
            s.forwarder.hold_retransmissions = congested
        limit = None if n >= len(thumbnails) else n
        changed = (limit, not high) != (self.video_limit, self.stage_low)
        self.video_limit, self.stage_low = limit, not high
        cut = len(thumbnails) - n
        level = "good" if budget is None and self.estimate.loss < bandwidth.LOSS_LOW else (
            "weak" if (cut and n == 0) or not high else "fair")
        state = {"type": "bandwidth", "level": level, "cut": cut, "cameras": n, "stageLow": not high}
        if state != self._sent_bandwidth:
            self._sent_bandwidth = state
            rtt = self.estimate.rtt
            self.send({**state, "estimate": None if budget is None else int(budget),
                       "loss": round(self.estimate.loss, 3), "rtt": None if rtt is None else round(rtt, 3)})
        return changed

    def send_slots(self) -> None:
        slots = {s.mid: ({"participant": s.key[0], "source": s.key[1]} if s.key else None)
                 for s in self.slots if s.mid is not None}
        if slots != self._sent_slots:
            self._sent_slots = slots
            self.send({"type": "slots", "slots": slots})

    # -- negotiation (the worker offers; a WHEP player offers once) -----------------------------
    async def answer_offer(self, sdp: object) -> str:
        """A WHEP player's offer (a viewer's only negotiation, issue 16): its receive-only audio and video
        m-lines become this viewer's slots, and no more are ever added (WHEP has no renegotiation): the
        stage on the video slot, the loudest speaker on the audio one. The answer carries the worker's
        candidates (no trickle)."""
        if not isinstance(sdp, str) or not sdp.strip() or len(sdp) > 200_000:
            raise SignallingError("bad_sdp", "The offer must carry an SDP text.")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, AssertionError, OperationError… on bad SDP
            raise SignallingError("bad_sdp", f"The offer could not be used ({exc.__class__.__name__}).") from None
        for t in self.pc.getTransceivers():
            kinds = [s.kind for s in self.slots]
            if t.kind not in ("audio", "video") or t.kind in kinds:
                t.direction = "inactive"   # one audio and one video slot
                continue
            track = IdleTrack(t.kind)
            t.sender.replaceTrack(track)
            t.direction = "sendonly"
            self._slot_on(t, track)   # VP8 and Opus in the answer: what the worker forwards
        if not self.slots:
            raise SignallingError("bad_sdp", "The offer asks for neither audio nor video.")
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.meeting.schedule_update()
        return self.pc.localDescription.sdp

    async def negotiate(self) -> None:
        self._again = True
        if self._lock.locked():
            return
        async with self._lock:
            if self.closed or not self._again or self.pc.signalingState != "stable":
                return
            self._again = False
            if not self.pc.getTransceivers():
                self._new_slot("audio")
            await self.pc.setLocalDescription(await self.pc.createOffer())
            if self.closed:
                return
            sdp = self.pc.localDescription.sdp
            if self.worker.config.simulcast and "video" in self.publish:
                sdp = simulcast.offer_layers(sdp, self.publish["video"].mid)
            self.send({"type": "offer", "sdp": sdp,
                       "publish": {n: t.mid for n, t in self.publish.items()}})
            self.send_slots()

    async def on_answer(self, sdp: object) -> None:
        if not isinstance(sdp, str) or not sdp.strip() or len(sdp) > 200_000:
            raise SignallingError("bad_sdp", "The answer must carry an SDP text.")
        if self.pc.signalingState != "have-local-offer":
            raise SignallingError("unexpected_answer", "No offer is waiting for an answer.")
        if self.worker.config.simulcast and "video" in self.publish and "video" not in self.layers:
            self.camera_rids = simulcast.answered_layers(sdp, self.publish["video"].mid)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError, AssertionError, OperationError… on bad SDP
            # Nothing was applied: the offer still waits, so a corrected answer can follow.
            log.info("participant %s sent an unusable answer: %r", self.id, exc)
            raise SignallingError("bad_sdp", f"The answer could not be used ({exc.__class__.__name__}).") from None
        if self._again:
            asyncio.ensure_future(self.negotiate())

    async def on_candidate(self, candidate: object) -> None:
        if candidate is None or (isinstance(candidate, dict) and not candidate.get("candidate")):
            return  # end of candidates: nothing to do for aiortc
        if not isinstance(candidate, dict) or not isinstance(candidate.get("candidate"), str):
            raise SignallingError("bad_candidate", "An ICE candidate must be an object with a candidate line.")
        line = candidate["candidate"]
        if len(line) > 1000:
            raise SignallingError("bad_candidate", "That ICE candidate is too long.")
        try:
            parsed = candidate_from_sdp(line.split(":", 1)[1] if line.startswith("candidate:") else line)
        except (AssertionError, ValueError, IndexError):
            raise SignallingError("bad_candidate", "That ICE candidate could not be parsed.") from None
        mid, index = candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
        parsed.sdpMid = mid if isinstance(mid, str) else None
        parsed.sdpMLineIndex = index if isinstance(index, int) else None
        if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
            parsed.sdpMLineIndex = 0
        if self.pc.remoteDescription is None:
            raise SignallingError("unexpected_candidate", "Send the answer before its ICE candidates.")
        try:
            await self.pc.addIceCandidate(parsed)
        except Exception as exc:
            raise SignallingError("bad_candidate", f"That ICE candidate was refused ({exc}).") from None

    # -- client requests -----------------------------------------------------------------
    def set_state(self, audio: object = None, video: object = None, screen: object = None) -> None:
        if self.role in ("observer", "viewer"):
            return
        changed = False
        for name, value in (("audio", audio), ("video", video), ("screen", screen)):
            if value is None:
                continue
            if not isinstance(value, bool):
                raise SignallingError("bad_message", f"{name} must be true or false.")
            if getattr(self, name) != value:
                setattr(self, name, value)
                changed = True
        if changed:
            if not self.audio and self.speaking:
                self.speaking = False
                self.meeting.speakers_changed(self)
            self.meeting.member_changed(self)

    def set_pins(self, ids: object) -> None:
        if not isinstance(ids, list) or len(ids) > 9 or not all(isinstance(i, int) and not isinstance(i, bool)
                                                                  for i in ids):
            raise SignallingError("bad_message", "pin takes a list of at most 9 participant ids.")
        self.pins = set(ids)
        self.meeting.schedule_update()

    def set_receive_video(self, on: object) -> None:
        if not isinstance(on, bool):
            raise SignallingError("bad_message", "video must be true or false.")
        self.receive_video = on
        self.meeting.schedule_update()

    def ask_keyframe(self, member: object) -> None:
        for slot in self.slots:
            if slot.key is not None and slot.key[0] == member and slot.kind == "video":
                slot.forwarder.request_keyframe()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in self._pause_timers.values():
            timer.cancel()
        for slot in self.slots:
            slot.stop()
        self.pacer.close()
        self.close_sources()
        if self.hang_up is not None:
            self.hang_up()  # after anything already queued for the page (a "bye")
        await self.pc.close()


def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))
