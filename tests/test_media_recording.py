"""Recording in a real media worker (issue 16): a signed "record" makes every published stream a WebM file
muxed from the forwarded packets (nothing decoded in the worker), with a timeline of files and speakers;
"record_stop" closes them; the files play (PyAV decodes every frame); a bad or unsigned request records
nothing."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import av

from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from rooms.meetings import media_control
from tests.live_support import until
from tests.test_media_signalling import SECRET, token, with_worker


def timeline(folder) -> list[dict]:
    out = []
    for path in sorted(folder.glob("timeline-*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def decoded(path, kind: str) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(**{kind: 0}))


def test_a_recorded_meeting_becomes_one_playable_file_per_stream(tmp_path):
    video, audio = vp8_clip(), opus_clip()
    folder = tmp_path / "recordings" / "1" / "7"

    async def scenario(url):
        chair = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        other = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        assert await until(lambda: other.video_frames_from(1) > 5)
        assert await asyncio.to_thread(media_control.record, url, SECRET, meeting_id=1, recording_id=7)
        heard, seen = other.audio_frames_from(1), other.video_frames_from(1)
        # someone joining while it records is recorded too
        late = await SyntheticParticipant(url, token(3), audio=audio).start()
        assert await until(lambda: {(e["account"], e["name"]) for e in timeline(folder) if e["event"] == "track"}
                           >= {(1, "audio"), (1, "video"), (2, "audio"), (2, "video"), (3, "audio")}, 20)
        # what the worker forwarded while it recorded, it also wrote
        assert await until(lambda: other.audio_frames_from(1) > heard + 60 and other.video_frames_from(1) > seen + 10)
        chair.speaking, other.speaking = False, True
        assert await until(lambda: any(e["event"] == "speaking" and e["ids"] == [2] for e in timeline(folder)))
        assert await asyncio.to_thread(media_control.record_stop, url, SECRET, meeting_id=1, recording_id=7)
        ended = {e["file"] for e in timeline(folder) if e["event"] == "end"}
        started = {e["file"] for e in timeline(folder) if e["event"] == "track"}
        assert started and ended == started
        assert timeline(folder)[-1]["event"] == "stop"
        for p in (chair, other, late):
            await p.leave()

    with_worker(scenario, timeout=90, recordings_dir=str(tmp_path / "recordings"))
    files = sorted(folder.glob("*.webm"))
    # every file lasts about as long as the recording (its times are the RTP clock's, not milliseconds')
    span = max(e["at"] for e in timeline(folder)) - min(e["at"] for e in timeline(folder))
    assert {f.name.split("-")[1] for f in files} == {"audio", "video"}
    for f in files:
        kind = f.name.split("-")[1]
        frames = decoded(f, kind)
        least = 1 if f.name.startswith("3-") else 30 if kind == "audio" else 5
        assert frames >= least, (f.name, frames)
        with av.open(str(f)) as c:
            assert 0 < c.duration / 1e6 <= span + 0.5, (f.name, c.duration / 1e6, span)
            s = c.streams[0]
            assert s.codec_context.name == ("opus" if kind == "audio" else "vp8")
            if kind == "video":
                assert (s.codec_context.width, s.codec_context.height) == (320, 240)


def test_a_recording_request_must_be_signed_and_well_formed(tmp_path):
    async def scenario(url):
        chair = await SyntheticParticipant(url, token(1), audio=opus_clip(), speaking=True).start()
        base = url.replace("ws://", "http://").rstrip("/")
        good = media_control.control_url(url, SECRET, {"op": "record", "meeting": 1, "recording": 3})
        for bad in (good.replace("s=", "s=0"),   # wrong signature
                    media_control.control_url(url, "another-secret", {"op": "record", "meeting": 1, "recording": 3}),
                    media_control.control_url(url, SECRET, {"op": "record", "meeting": 1, "recording": "3"}),
                    media_control.control_url(url, SECRET, {"op": "record", "meeting": 1}),
                    base + "/control"):
            try:
                await asyncio.to_thread(urllib.request.urlopen, bad, None, 5)
                raise AssertionError(f"accepted {bad}")
            except urllib.error.HTTPError as err:
                assert err.code in (400, 403)
        await asyncio.sleep(0.5)
        assert not (tmp_path / "recordings").exists()
        await chair.leave()

    with_worker(scenario, recordings_dir=str(tmp_path / "recordings"))
