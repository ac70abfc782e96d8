"""Recording a meeting inside the media worker (issue 16), without decoding anything.

The web app asks for it with a signed control message ("record" / "record_stop", media/control.py);
every process of the worker gets it and records the streams its own participants publish. Each
published stream becomes one WebM file, its RTP payloads muxed as they arrive (PyAV, no codec opened):
Opus packets as they are, VP8 frames put back together from their RTP packets. A camera is recorded in
its low simulcast layer when it has one (the replay shows it small beside the slides, and a meeting of
ten cameras then writes about 1 Mbit/s instead of 3.5). Recording a camera makes it wanted, so a camera
nobody is shown is not paused at the browser while the meeting is recorded.

Beside the files each process appends `timeline-<process>.jsonl`: when each file starts and ends, and
who is speaking (wall-clock times, so the web app can line them up with slide changes, hands, votes,
chat and captions from its database). The web app composes a single file from them afterwards
(rooms/meetings/recording_compose.py); the worker never touches the database.

    <COLLAB_RECORDINGS_DIR>/<meeting>/<recording>/<account>-<audio|video|screen>-<ms>.webm
                                                  timeline-<process>.jsonl
"""
from __future__ import annotations

import json
import logging
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av

from media.forwarding import CLOCK_RATE, Pkt, Source

if TYPE_CHECKING:  # pragma: no cover
    from media.meeting import Meeting

log = logging.getLogger(__name__)

OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + (312).to_bytes(2, "little") + (48000).to_bytes(4, "little") + bytes(3)
MAX_FILE_BYTES = 2 * 1024 ** 3    # one track file stops growing here (a camera at 1 Mbit/s for 4 hours)
MIN_FREE_BYTES = 512 * 1024 ** 2  # nothing more is written when the disk has less free
RECORDED = {"audio": "audio", "video": "video", "video:low": "video", "screen": "screen"}


def vp8_payload_start(payload: bytes) -> int:
    """Length of the VP8 payload descriptor (RFC 7741 section 4.2) at the start of an RTP payload."""
    i = 1
    if payload[0] & 0x80:
        x = payload[1]
        i = 2
        if x & 0x80:
            i += 2 if payload[2] & 0x80 else 1
        if x & 0x40:
            i += 1
        if x & 0x30:
            i += 1
    return i


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe's header (RFC 6386 section 9.1)."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF


class TrackWriter:
    """A sink of one Source (media/forwarding.py) that muxes its packets into one WebM file."""

    def __init__(self, path: Path, source: Source, account: int, name: str, recording: MeetingRecording) -> None:
        self.path = path
        self.source = source
        self.kind = source.kind
        self.time_base = Fraction(1, CLOCK_RATE[source.kind])
        self.account = account
        self.name = name          # audio, video or screen
        self.recording = recording
        self.container = None
        self.stream = None
        self.first_ts: int | None = None
        self.last_ts = 0          # unwrapped RTP time of the last packet muxed
        self.last_pts = -1
        self.frame: list[bytes] = []   # VP8: the fragments of the frame being put together
        self.frame_ts: int | None = None
        self.next_seq: int | None = None
        self.need_key = self.kind == "video"
        self.started_at: float | None = None
        self.written = 0
        self.closed = False

    # the sink interface of Source
    def push(self, p: Pkt) -> None:
        if self.closed:
            return
        try:
            if self.kind == "audio":
                if p.payload:
                    self._mux(p.payload, p.ts, True)
            else:
                self._video(p)
        except (av.FFmpegError, OSError, ValueError) as err:
            log.warning("recording %s stopped: %s", self.path.name, err)
            self.close()

    def source_closed(self, source: Source) -> None:
        self.close()

    def _video(self, p: Pkt) -> None:
        in_order = self.next_seq is None or p.seq == self.next_seq
        self.next_seq = (p.seq + 1) & 0xFFFF
        if p.ts != self.frame_ts or not in_order:   # a new frame, or a packet of this one was lost
            if not in_order and not p.key:
                self.need_key = True
                self.source.request_keyframe()
            self.frame, self.frame_ts = [], p.ts
            if self.need_key and not p.key:
                self.frame_ts = None
                return
        if self.frame_ts is None:
            return
        start = vp8_payload_start(p.payload)
        if not self.frame and not p.payload[0] & 0x10:   # a frame must begin with its partition start
            self.frame_ts = None
            return
        self.frame.append(p.payload[start:])
        if p.marker:
            data = b"".join(self.frame)
            self.frame, self.frame_ts = [], None
            key = not data[0] & 0x01
            if key:
                self.need_key = False
            if not self.need_key:
                self._mux(data, p.ts, key)

    def _open(self, data: bytes) -> None:
        # clusters of at most a second, each written as it closes: a worker that crashes leaves a file that plays
        # up to its last second (the muxer keeps a whole cluster in memory, 5 s by default)
        self.container = av.open(str(self.path), "w", format="webm",
                                 options={"flush_packets": "1", "cluster_time_limit": "1000"})
        if self.kind == "audio":
            self.stream = self.container.add_stream("opus", rate=48000)
            self.stream.codec_context.extradata = OPUS_HEAD
        else:
            width, height = vp8_size(data) or (640, 360)
            self.stream = self.container.add_stream("vp8")
            self.stream.width, self.stream.height = width, height
        self.stream.time_base = self.time_base
        self.started_at = time.time()
        self.recording.note({"event": "track", "account": self.account, "name": self.name, "file": self.path.name})

    def _mux(self, data: bytes, ts: int, key: bool) -> None:
        if self.first_ts is None:
            self.first_ts, self.last_ts = ts, ts
            self._open(data)
        else:   # unwrap the 32-bit RTP clock around the last packet
            self.last_ts += ((ts - self.last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        pts = self.last_ts - self.first_ts
        if pts <= self.last_pts:   # late (reordered) or repeated: the file's time only moves forward
            return
        self.last_pts = pts
        packet = av.Packet(data)
        packet.stream = self.stream
        packet.pts = packet.dts = pts
        packet.time_base = self.time_base   # the RTP clock (the muxer changes the stream's own to 1/1000)
        packet.is_keyframe = key
        self.container.mux(packet)
        self.written += len(data)
        if self.written > MAX_FILE_BYTES:
            log.warning("recording %s reached %s bytes; closed", self.path.name, MAX_FILE_BYTES)
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.source.detach(self)
        if self.container is not None:
            try:
                self.container.close()
            except (av.FFmpegError, OSError) as err:
                log.warning("closing %s: %s", self.path.name, err)
        self.recording.ended(self)


class MeetingRecording:
    """One recording of one meeting in this process: its folder, its open track files, its timeline."""

    def __init__(self, folder: Path, meeting_id: int, recording_id: int, process: int) -> None:
        self.folder = folder
        self.meeting_id = meeting_id
        self.recording_id = recording_id
        self.writers: dict[tuple[int, str], TrackWriter] = {}
        folder.mkdir(parents=True, exist_ok=True)
        self._timeline = open(folder / f"timeline-{process}.jsonl", "a", encoding="utf-8")   # noqa: SIM115
        self._speaking: list[int] | None = None
        self.note({"event": "start", "recording": recording_id})

    def note(self, entry: dict) -> None:
        if not self._timeline.closed:
            self._timeline.write(json.dumps(dict(entry, at=round(time.time(), 3)), separators=(",", ":")) + "\n")
            self._timeline.flush()

    def add(self, account: int, name: str, source: Source) -> None:
        kind = RECORDED[name]
        key = (account, kind)
        old = self.writers.get(key)
        if old is not None:
            if old.source is source:
                return
            old.close()
        if not _room_on_disk(self.folder):
            log.warning("recording %s: less than %s bytes free; %s not recorded", self.recording_id,
                        MIN_FREE_BYTES, key)
            return
        path = self.folder / f"{account}-{kind}-{int(time.time() * 1000)}.webm"
        writer = self.writers[key] = TrackWriter(path, source, account, kind, self)
        source.attach(writer)   # a camera is asked for a keyframe; the file opens with it

    def remove(self, account: int, name: str, source: Source | None = None) -> None:
        writer = self.writers.get((account, RECORDED.get(name, name)))
        if writer is not None and (source is None or writer.source is source):
            writer.close()

    def ended(self, writer: TrackWriter) -> None:
        if self.writers.get((writer.account, writer.name)) is writer:
            del self.writers[(writer.account, writer.name)]
        if writer.container is not None:
            self.note({"event": "end", "file": writer.path.name, "account": writer.account, "bytes": writer.written})

    def speaking(self, ids: list[int]) -> None:
        if ids != self._speaking:
            self._speaking = ids
            self.note({"event": "speaking", "ids": ids})

    def close(self) -> None:
        for writer in list(self.writers.values()):
            writer.close()
        self.note({"event": "stop", "recording": self.recording_id})
        self._timeline.close()


def _room_on_disk(folder: Path) -> bool:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize >= MIN_FREE_BYTES


class Recorder:
    """The recordings of this worker process, by meeting. A meeting that has no participant here yet is
    remembered, so those who join this process later are recorded too."""

    def __init__(self, root: str | os.PathLike, process: int = 0) -> None:
        self.root = Path(root)
        self.process = process
        self.active: dict[int, MeetingRecording] = {}

    def obey(self, msg: dict, meeting: Meeting | None) -> int:
        """Carry out a checked "record" or "record_stop"; the number of streams now recorded here."""
        meeting_id = msg["meeting"]
        current = self.active.get(meeting_id)
        if msg["op"] == "record_stop":
            if current is not None and current.recording_id == msg["recording"]:
                self.stop(meeting_id)
            return 0
        if current is not None and current.recording_id == msg["recording"]:
            return len(current.writers)
        if current is not None:
            self.stop(meeting_id)
        folder = self.root / str(meeting_id) / str(msg["recording"])
        rec = self.active[meeting_id] = MeetingRecording(folder, meeting_id, msg["recording"], self.process)
        if meeting is not None:
            for p in meeting.participants():
                for name, source in self.sources_of(p):
                    rec.add(p.account, name, source)
            rec.speaking(sorted(m.account for m in meeting.members.values() if m.speaking and not m.viewer))
        log.info("recording %s of meeting %s started (%s streams here)", msg["recording"], meeting_id,
                 len(rec.writers))
        return len(rec.writers)

    @staticmethod
    def sources_of(p) -> list[tuple[str, Source]]:
        """What of a participant is recorded: microphone, screen, and the camera's low layer if it has one."""
        if p.viewer:
            return []
        out = [(n, s) for n, s in p.sources.items() if n in ("audio", "screen")]
        layers = p.layers.get("video")
        if layers is not None:
            out.append(("video:low" if layers.simulcast else "video", layers.sources[0]))
        elif "video" in p.sources:
            out.append(("video", p.sources["video"]))
        return out

    def source_added(self, meeting: Meeting, p, name: str, source: Source) -> None:
        rec = self.active.get(meeting.id)
        if rec is None or p.viewer or name not in RECORDED:
            return
        layers = p.layers.get("video")
        if name == "video" and layers is not None and layers.simulcast:
            return   # its low layer ("video:low") is recorded; it is announced right after
        rec.add(p.account, name, source)

    def source_removed(self, meeting: Meeting, p, name: str) -> None:
        rec = self.active.get(meeting.id)
        if rec is not None:
            rec.remove(p.account, name)

    def speaking(self, meeting: Meeting) -> None:
        rec = self.active.get(meeting.id)
        if rec is not None:
            rec.speaking(sorted(m.account for m in meeting.members.values() if m.speaking and not m.viewer))

    def stop(self, meeting_id: int) -> None:
        rec = self.active.pop(meeting_id, None)
        if rec is not None:
            rec.close()
            log.info("recording %s of meeting %s stopped", rec.recording_id, meeting_id)

    def close(self) -> None:
        for meeting_id in list(self.active):
            self.stop(meeting_id)
