"""Captions inside one media worker process: whom to transcribe, off the event loop, and where the
captions go.

The worker hands every participant's published microphone (`media.forwarding.Source`) to
`Captions.listen`; a `Tap` is attached to it as one more sink, beside the forwarding slots, and sees
the same Opus packets. Only people speaking are transcribed: the worker's own voice detection
(`Member.speaking`, `Member.last_spoke`, from the RFC 6464 audio level) opens an utterance (with the
last 300 ms kept, so the first syllable is not lost) and closes it after END_SILENCE without voice, or
after MAX_UTTERANCE (then the next one starts at once).

Recognition is CPU-bound and the engines hold the GIL, so each recogniser runs in a child process of
its own (media/captions/recogniser_process.py), loaded once and reused; `speakers` threads send them
packets and wait for text, and at most `speakers` utterances are transcribed at once (each holds one
recogniser). Someone who starts speaking while all are busy is not transcribed for that utterance: the
meeting gets a `caption_note` saying so, and the count is kept (`skipped`). The packets of one
utterance go to its recogniser in order, one batch at a time, so the event loop only ever appends
to a list.

Every member of the meeting (on this and the worker's other processes: media.cluster "say") receives
    {"type": "caption", "participant": id, "utterance": "…", "text": "…", "final": false|true,
     "start": epoch seconds, "end": epoch seconds}
(partial texts at most every PARTIAL_EVERY seconds, then the final one), and final captions are
handed to `report` (media/captions/report.py), which sends them to the web app to be saved.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from media.captions.recogniser_process import RecogniserProcess
from media.captions.report import Reporter

log = logging.getLogger(__name__)

PREROLL = 15            # packets (20 ms each) kept before voice is detected
END_SILENCE = 0.7       # seconds without voice that end an utterance
MAX_UTTERANCE = 15.0    # seconds: a longer utterance is cut (final caption) and continues as a new one
PARTIAL_EVERY = 0.8     # seconds between partial captions of one utterance
TICK = 0.1              # how often open utterances are checked for their end
NOTE_EVERY = 10.0       # seconds between two "too many speakers" notes about one person


class Utterance:
    def __init__(self, tap: Tap, slot: RecogniserProcess | None, key: str, start: float) -> None:
        self.tap = tap
        self.slot = slot
        self.key = key
        self.start = start
        self.end = start
        self.pending: list[bytes] = []
        self.busy = False
        self.ending = False
        self.done = False
        self.last_partial_at = time.monotonic()
        self.last_text = ""
        self.last_seq: int | None = None

    def add(self, seq: int, payload: bytes) -> None:
        if seq == self.last_seq:
            return  # the same packet again (a retransmission)
        self.last_seq = seq
        self.pending.append(payload)


class Tap:
    """A sink on one participant's microphone source."""

    def __init__(self, service: Captions, meeting, member) -> None:
        self.service = service
        self.meeting = meeting
        self.member = member
        self.preroll: deque = deque(maxlen=PREROLL)
        self.utterance: Utterance | None = None
        self.count = itertools.count(1)
        self.noted_at = -1e9
        self.closed = False

    # -- sink interface (media.forwarding.Source) --
    def push(self, p) -> None:
        if self.closed:
            return
        now = time.monotonic()
        u = self.utterance
        if u is None:
            self.preroll.append((p.seq, p.payload))
            if self.member.speaking and now - self.member.last_spoke < END_SILENCE and self.member.audio:
                self.service.open(self, now)
            return
        u.add(p.seq, p.payload)
        if self.member.last_spoke > 0 and now - self.member.last_spoke < END_SILENCE:
            u.end = time.time()
        self.service.pump(u)

    def source_closed(self, source) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.utterance is not None:
            self.service.finish(self.utterance)
        self.service.taps.discard(self)


class Captions:
    """Captions of every meeting of this worker process."""

    def __init__(self, engine_name: str, model_dir: str | None, speakers: int,
                 report: Callable[[int, dict], None] | None = None) -> None:
        self.engine_name = engine_name
        self.model_dir = model_dir
        self.speakers = speakers
        self.report = report
        self._pool = ThreadPoolExecutor(max_workers=speakers, thread_name_prefix="captions")
        self._free: list[RecogniserProcess] = []
        self._all: list[RecogniserProcess] = []
        self.active: set[Utterance] = set()
        self.taps: set[Tap] = set()
        self.run = secrets.token_hex(4)   # utterance keys stay unique across worker restarts
        self.skipped = 0
        self.finals = 0
        self.failed = 0
        self.closing = False   # the worker is stopping: recognisers closed under a running feed are expected
        self._ticker: asyncio.Task | None = None

    # -- the worker's hook --------------------------------------------------------------------
    def listen(self, meeting, member, source) -> Tap:
        """Transcribe `member`'s microphone `source` in `meeting` whenever they speak."""
        tap = Tap(self, meeting, member)
        self.taps.add(tap)
        source.attach(tap)
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick())
        return tap

    # -- utterances ------------------------------------------------------------------------------
    def open(self, tap: Tap, now: float) -> None:
        if len(self.active) >= self.speakers:
            self.skipped += 1
            if now - tap.noted_at > NOTE_EVERY:
                tap.noted_at = now
                self._send(tap.meeting, {"type": "caption_note", "participant": tap.member.id,
                                         "message": f"Too many people are speaking at once: {tap.member.name} "
                                                    "is not being captioned just now."})
            log.info("captions: %s speakers already; %s in meeting %s not transcribed", self.speakers,
                     tap.member.id, tap.meeting.id)
            return
        start = time.time() - len(tap.preroll) * 0.02
        key = f"{self.run}-{tap.member.id}-{next(tap.count)}"
        u = Utterance(tap, None, key, start)
        for seq, payload in tap.preroll:
            u.add(seq, payload)
        tap.preroll.clear()
        u.end = time.time()
        tap.utterance = u
        self.active.add(u)
        u.busy = True  # until a slot is ready (the first one loads its model in the pool)
        fut = asyncio.get_running_loop().run_in_executor(self._pool, self._slot)
        fut.add_done_callback(lambda f, u=u: self._slot_ready(u, f))

    def _slot(self) -> RecogniserProcess:
        """In the pool: a free recogniser, or a new one (at most `speakers` are alive: one per open utterance)."""
        try:
            return self._free.pop()
        except IndexError:
            slot = RecogniserProcess(self.engine_name, self.model_dir)
            self._all.append(slot)
            return slot

    def _slot_ready(self, u: Utterance, fut) -> None:
        u.busy = False
        exc = fut.exception()
        if exc is not None:
            self.failed += 1
            log.error("captions: the %s engine could not start: %s", self.engine_name, exc)
            self._drop(u)
            return
        u.slot = fut.result()
        if u.done:  # closed meanwhile
            self._free.append(u.slot)
            return
        self.pump(u)

    def pump(self, u: Utterance) -> None:
        """Send what has arrived to the recogniser (one batch in flight per utterance)."""
        if u.busy or u.slot is None or u.done:
            return
        now = time.monotonic()
        want_partial = now - u.last_partial_at >= PARTIAL_EVERY
        if not u.pending and not u.ending:
            return
        if u.ending:
            batch, u.pending = u.pending, []
            u.busy = True
            fut = asyncio.get_running_loop().run_in_executor(self._pool, self._final, u.slot, batch)
            fut.add_done_callback(lambda f, u=u: self._finished(u, f))
            return
        batch, u.pending = u.pending, []
        u.busy = True
        if want_partial:
            u.last_partial_at = now
        fut = asyncio.get_running_loop().run_in_executor(self._pool, self._feed, u.slot, batch, want_partial)
        fut.add_done_callback(lambda f, u=u: self._fed(u, f))

    @staticmethod
    def _feed(slot: RecogniserProcess, batch: list[bytes], partial: bool) -> str | None:
        return slot.feed(batch, partial)

    @staticmethod
    def _final(slot: RecogniserProcess, batch: list[bytes]) -> str:
        return slot.final(batch)

    def _failed(self, u: Utterance, fut) -> bool:
        """Whether recognition failed (the utterance is then dropped); a partial may succeed with no text."""
        u.busy = False
        exc = fut.exception()
        if exc is None:
            return False
        if self.closing:  # the recogniser was closed under it: not a failure worth an operator's attention
            log.debug("captions: recognition ended by the worker stopping: %r", exc)
            self._drop(u)
            return True
        self.failed += 1
        log.error("captions: recognition failed: %r", exc)
        self._drop(u)
        return True

    def _fed(self, u: Utterance, fut) -> None:
        if self._failed(u, fut):
            return
        text = fut.result()
        if text and text != u.last_text and not u.done:
            u.last_text = text
            self._caption(u, text, final=False)
        self.pump(u)

    def finish(self, u: Utterance) -> None:
        """The utterance ended: its last packets, then the final text."""
        if u.ending:
            return
        u.ending = True
        if u.tap.utterance is u:
            u.tap.utterance = None
        self.pump(u)

    def _finished(self, u: Utterance, fut) -> None:
        if self._failed(u, fut):
            return
        text = fut.result()
        self.active.discard(u)
        u.done = True
        self._free.append(u.slot)
        if text:
            self.finals += 1
            message = self._caption(u, text, final=True)
            if self.report is not None:
                self.report(u.tap.meeting.id, message)

    def _drop(self, u: Utterance) -> None:
        u.done = True
        self.active.discard(u)
        if u.tap.utterance is u:
            u.tap.utterance = None
        if u.slot is not None:
            # a recogniser that failed mid-utterance may be in any state: a new one is made next time
            slot, u.slot = u.slot, None
            if slot in self._all:
                self._all.remove(slot)
            asyncio.get_running_loop().run_in_executor(None, slot.close)

    def _caption(self, u: Utterance, text: str, *, final: bool) -> dict[str, Any]:
        message = {"type": "caption", "participant": u.tap.member.id, "utterance": u.key, "text": text,
                   "final": final, "start": round(u.start, 3), "end": round(max(u.end, u.start), 3)}
        self._send(u.tap.meeting, message)
        return message

    @staticmethod
    def _send(meeting, message: dict) -> None:
        meeting.say_everywhere(message)   # members on the worker's other processes too (viewers, mostly)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for tap in list(self.taps):
                u = tap.utterance
                if u is None:
                    continue
                silent = now - tap.member.last_spoke > END_SILENCE or not tap.member.audio
                if silent or time.time() - u.start > MAX_UTTERANCE:
                    self.finish(u)

    def status(self) -> dict:
        return {"engine": self.engine_name, "speakers": self.speakers, "active": len(self.active),
                "finals": self.finals, "skipped": self.skipped, "failed": self.failed}

    def close(self) -> None:
        self.closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for slot in self._all:
            slot.close()
        self._all.clear()


def captions_for(config) -> Captions | None:
    """The captions of one worker process as `config` (media.config.WorkerConfig) sets them; None when off.
    The web app imports media.captions.report (the signed report) without any of this."""
    if config.captions_engine == "off":
        return None
    report = Reporter(config.report_url, config.secret_key) if config.report_url else None
    return Captions(config.captions_engine, config.captions_model_dir, config.captions_speakers, report=report)
