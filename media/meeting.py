"""A meeting inside one worker process: who is here, who is speaking, and which
streams each participant receives (selective forwarding). The members
themselves, their peer connections and send slots, are in media/members.py.

A member may also live on another worker process of the same node
(`RemoteMember`, fed through `media.cluster`); selection treats both alike.

A broadcast's viewers (role "viewer", issue 16) are members too, so that they
fan out across processes exactly as participants do, but nobody is told of
them one by one: participants see a count (`viewers`, sent at most once a
tick), and a viewer receives only the stage (a shared screen, else who speaks
or spoke last, in its high layer) and the speakers' audio.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from media.forwarding import Source
from media.members import LOW, Member, Participant, RemoteMember

if TYPE_CHECKING:  # pragma: no cover
    from media.worker import Worker


SPEAKING_HOLD = 1.5       # seconds someone stays a current speaker after their last voice
TICK = 0.25               # speaker expiry and selection refresh
CONNECT_TIMEOUT = 30.0    # a participant whose media never connects is removed
MIN_VIDEO_BPS = 40_000.0  # what a camera is counted at while paused or not yet measured


class Meeting:
    """The members of one meeting known to this process, and selective forwarding."""

    def __init__(self, worker: Worker, meeting_id: int) -> None:
        self.worker = worker
        self.id = meeting_id
        self.members: dict[int, Member] = {}
        self._update_pending = False
        self._tick: asyncio.Task | None = None
        self._viewers_told: int | None = None   # the viewer count participants were last sent

    # -- membership ----------------------------------------------------------------
    def participants(self) -> list[Participant]:
        return [m for m in self.members.values() if isinstance(m, Participant)]

    async def add(self, p: Participant) -> None:
        old = self.members.get(p.id)
        if old is not None:
            if isinstance(old, Participant):
                old.send({"type": "bye", "reason": "You joined this meeting from another window."})
            await self.remove(old, None)
        self.members[p.id] = p
        p.send({"type": "welcome", "you": p.public(), "meeting": self.id,
                "participants": [m.public() for m in self.members.values() if m is not p and not m.viewer],
                "viewers": self.viewer_count(),
                "iceServers": self.worker.config.browser_ice_servers(f"{self.id}-{p.id}"),
                "videoSlots": 1 if p.viewer else self.worker.config.video_slots})
        if not p.viewer:
            self.broadcast({"type": "joined", "participant": p.public()}, exclude=p)
        self.worker.announce(self, "join", p)
        self._start_tick()
        self.schedule_update()
        if p.whep is None:   # a WHEP player offers instead (Participant.answer_offer)
            await p.negotiate()

    def add_remote(self, m: RemoteMember) -> None:
        old = self.members.get(m.id)
        if old is not None and old is not m:
            if isinstance(old, Participant):
                old.send({"type": "bye", "reason": "You joined this meeting from another window."})
            asyncio.ensure_future(self.remove(old, None))
        self.members[m.id] = m
        if not m.viewer:
            self.broadcast({"type": "joined", "participant": m.public()})
        self._start_tick()   # the viewer count is told from the tick
        self.schedule_update()

    async def remove(self, m: Member, reason: str | None = "You left the meeting.", *,
                     code: str | None = None) -> None:
        """Take `m` out of the meeting. A participant of this process is told `reason` first (a "bye");
        with a `code` (the web app revoked their place: "removed", "ended", …) the bye carries
        {"reason": code, "message": reason} and the page does not offer to rejoin."""
        current = self.members.get(m.id) is m
        if current:
            del self.members[m.id]
        for name in list(m.sources):
            self.source_removed(m, name)
        if isinstance(m, Participant):
            if reason and not m.closed:
                m.send({"type": "bye", "reason": code, "message": reason} if code else
                       {"type": "bye", "reason": reason})
            await m.close()
            if current:
                self.worker.announce(self, "leave", m)
        else:
            m.close_sources()
        if not current:
            return
        if not m.viewer:
            self.broadcast({"type": "left", "id": m.id})
        self.schedule_update()
        if not self.members:
            if self._tick:
                self._tick.cancel()
                self._tick = None
            self.worker.meeting_empty(self)

    def broadcast(self, message: dict, exclude: Member | None = None) -> None:
        for p in self.participants():
            if p is not exclude:
                p.send(message)

    def say_everywhere(self, message: dict) -> None:
        """A message for everyone in the meeting on every process of the worker (captions: a speaker's
        process transcribes them; viewers and participants on the others read them too)."""
        self.broadcast(message)
        self.worker.relay(self, message)

    def viewer_count(self) -> int:
        return sum(1 for m in self.members.values() if m.viewer)

    def _tell_viewer_count(self) -> None:
        """Participants (not the viewers themselves: hundreds of them) learn how many watch, once a tick at
        most however many join at once."""
        count = self.viewer_count()
        if count != self._viewers_told:
            self._viewers_told = count
            for p in self.participants():
                if not p.viewer:
                    p.send({"type": "viewers", "count": count})

    def member_changed(self, m: Member) -> None:
        if m.viewer:
            return
        self.broadcast({"type": "state", "participant": m.public()}, exclude=m)
        if isinstance(m, Participant):
            m.send({"type": "state", "participant": m.public()})
            self.worker.announce(self, "state", m)
        self.schedule_update()

    # -- sources ----------------------------------------------------------------
    def source(self, member_id: int, name: str) -> Source | None:
        m = self.members.get(member_id)
        return m.sources.get(name) if m else None

    def layer(self, member_id: int, name: str, high: bool) -> Source | None:
        m = self.members.get(member_id)
        return m.layer(name, high) if m else None

    def source_added(self, m: Member, name: str, source: Source) -> None:
        if isinstance(m, Participant):
            self.worker.announce_source(self, m, name, source)
        self.schedule_update()

    def source_removed(self, m: Member, name: str) -> None:
        if isinstance(m, Participant):
            self.worker.withdraw_source(self, m, name)
            if name == "video":
                self.worker.withdraw_source(self, m, "video" + LOW)   # announced when it is simulcast

    # -- speakers and selection -------------------------------------------------------
    def speakers_changed(self, m: Member) -> None:
        if isinstance(m, Participant):
            self.worker.announce(self, "speaking", m)
        self.broadcast({"type": "speaking", "ids": [x.id for x in self.members.values() if x.speaking]})
        self.worker.speaking(self)
        self.schedule_update()

    def schedule_update(self) -> None:
        if not self._update_pending:
            self._update_pending = True
            asyncio.get_running_loop().call_soon(self._update)

    def ranking(self) -> list[Member]:
        """Most recently active speakers first (people speaking now count as "now")."""
        now = time.monotonic()
        return sorted(self.members.values(), key=lambda m: (-(now if m.speaking else m.last_spoke), m.order))

    def wanted(self, p: Participant, ranking: list[Member]) -> tuple[list, list]:
        cfg = self.worker.config
        video: list[tuple[int, str]] = []
        if p.viewer and p.receive_video:   # the stage alone: a shared screen, else the latest speaker's camera
            screens = [(m.id, "screen") for m in ranking if m.screen and "screen" in m.sources]
            cams = [(m.id, "video") for m in ranking if m.video and "video" in m.sources]
            video = (screens or cams)[:1]
        elif p.receive_video:
            video = [(m.id, "screen") for m in ranking if m is not p and m.screen and "screen" in m.sources]
            cams = [m for m in ranking if m is not p and m.video and "video" in m.sources]
            pinned = [m for m in cams if m.id in p.pins]
            others = [m for m in cams if m.id not in p.pins][:cfg.video_slots]
            video += [(m.id, "video") for m in pinned + others]
        audio = [(m.id, "audio") for m in ranking
                 if m is not p and m.speaking and m.audio and "audio" in m.sources][:cfg.audio_slots]
        return video, audio

    @staticmethod
    def stage(p: Participant, ranking: list[Member], video: list[tuple[int, str]]) -> tuple[int, str] | None:
        """The stream `p`'s page puts on its stage (meeting_stage.js `stagedTile`): a shared screen, else
        who speaks or spoke last, else someone pinned, else the first other person. It gets the high layer."""
        if not video:
            return None
        if video[0][1] == "screen":
            return video[0]
        shown = set(video)
        spoke = [(m.id, "video") for m in ranking if m.speaking or m.last_spoke]
        pinned = [(i, "video") for i in sorted(p.pins)]
        return next((k for k in spoke + pinned if k in shown), video[0])

    def _rate(self, key: tuple[int, str], high: bool) -> float:
        source = self.layer(*key, high) if key[1] == "video" else self.source(*key)
        return max(source.rate.bps, MIN_VIDEO_BPS) if source is not None else 0.0

    def _fit(self, now: float) -> None:
        """Once a second: measure every stream, and fit what each participant gets to their estimate."""
        for m in self.members.values():
            for source in [*m.sources.values(), *(s for layers in m.layers.values() for s in layers.sources)]:
                source.rate.sample(now, source.octets_in, source.packets_in)
        for p in self.participants():
            stalled = p.uplink_stalled(now)
            if stalled != p.stalled:
                p.stalled = stalled
                self.member_changed(p)
        ranking = self.ranking()
        changed = False
        for p in self.participants():
            video, audio = self.wanted(p, ranking)
            stage = self.stage(p, ranking, video)
            thumbnails = [self._rate(k, False) for k in video if k != stage]
            audio_bps = sum(self._rate(k, False) for k in audio)
            if stage is None:
                changed |= p.fit(now, audio_bps, 0.0, 0.0, thumbnails)
            else:
                changed |= p.fit(now, audio_bps, self._rate(stage, True), self._rate(stage, False), thumbnails)
        if changed:
            self.schedule_update()

    def _update(self) -> None:
        self._update_pending = False
        ranking = self.ranking()
        for p in self.participants():
            if not p.closed:
                video, audio = self.wanted(p, ranking)
                stage = self.stage(p, ranking, video)
                if p.video_limit is not None and stage is not None:  # last-N shrinks to what fits
                    video = [stage] + [k for k in video if k != stage][:p.video_limit]
                p.assign(video, audio, stage, p.stage_low)

    def _start_tick(self) -> None:
        if self._tick is None:
            self._tick = asyncio.ensure_future(self._run_tick())

    async def _run_tick(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            ticks += 1
            self._tell_viewer_count()
            if ticks % 4 == 0:  # once a second, as aiortc's own RTCP loop (on average)
                for p in self.participants():
                    p.send_reports()
                self._fit(now)
            for m in list(self.members.values()):
                if m.speaking and not m.remote and now - m.last_spoke > SPEAKING_HOLD:
                    m.speaking = False
                    self.speakers_changed(m)
                if (isinstance(m, Participant) and m.connected_at is None
                        and now - m.joined_at > CONNECT_TIMEOUT):
                    await self.remove(m, "Your browser could not connect to the meeting's media server.")
