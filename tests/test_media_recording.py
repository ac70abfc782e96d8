"""Recording in a real media worker (issue 16): a signed "record" makes every published stream a WebM file
muxed from the forwarded packets (nothing decoded in the worker), with a timeline of files and speakers;
"record_stop" closes them; the files play (PyAV decodes every frame); a bad or unsigned request records
nothing."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request

import av

from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from rooms.meetings import media_control
from media import net, tokens
from tests.live_support import until
from tests.test_media_cluster import SECRET as NODE_SECRET
from tests.test_media_cluster import node, shard_pids, signed_status  # noqa: F401  (node: the fixture)
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


def test_every_process_of_a_worker_records_the_streams_it_receives(node, tmp_path):  # noqa: F811
    """Publishers on both processes of a two-process worker: one signed "record" to the node reaches both, each
    writes its own publishers (a simulcast camera in its low layer) and its own timeline; a process that
    crashes and is restarted while it records goes on recording those who join it."""
    port, proc = node
    url = f"ws://127.0.0.1:{port}/"
    folder = tmp_path / "recordings" / "11" / "4"
    low, high = vp8_clip(width=160, height=120, bitrate=80_000), vp8_clip(width=320, height=240, bitrate=250_000)

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        ps = []
        for i in (1, 2, 3):
            tok = tokens.mint(NODE_SECRET, meeting=11, account=i, name=f"P{i}", role="member")
            ps.append(await SyntheticParticipant(url, tok, audio=opus_clip(), layers={"l": low, "h": high},
                                                 speaking=(i == 1)).start())
            await asyncio.sleep(0.2)
        assert signed_status(port)["connections"] in ([2, 1], [1, 2])
        assert await until(lambda: ps[2].video_frames_from(1) > 5 and ps[0].video_frames_from(2) > 5, 30)
        assert await asyncio.to_thread(media_control.record, url, NODE_SECRET, meeting_id=11, recording_id=4)
        assert await until(lambda: {(e["account"], e["name"]) for e in timeline(folder) if e["event"] == "track"}
                           == {(i, k) for i in (1, 2, 3) for k in ("audio", "video")}, 30)
        heard = ps[2].audio_frames_from(1)
        assert await until(lambda: ps[2].audio_frames_from(1) > heard + 50)
        # process 0 crashes; the node restarts it; who joins it next is recorded too
        pids = shard_pids(proc.pid)
        os.kill(pids[0], signal.SIGKILL)
        assert await until(lambda: len(shard_pids(proc.pid)) == 2 and shard_pids(proc.pid) != pids, timeout=15)
        assert await until(lambda: signed_status(port)["ready"], timeout=15)
        tok = tokens.mint(NODE_SECRET, meeting=11, account=4, name="P4", role="member")
        late = await SyntheticParticipant(url, tok, audio=opus_clip(), speaking=True).start()
        assert await until(lambda: any(e["event"] == "track" and e["account"] == 4 for e in timeline(folder)), 30)
        assert await asyncio.to_thread(media_control.record_stop, url, NODE_SECRET, meeting_id=11, recording_id=4)
        for p in [*ps, late]:
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))
    assert sorted(p.name for p in folder.glob("timeline-*.jsonl")) == ["timeline-0.jsonl", "timeline-1.jsonl"]
    cameras = sorted(folder.glob("*-video-*.webm"))
    assert len(cameras) == 3
    assert decoded(next(folder.glob("4-audio-*.webm")), "audio") > 0
    for f in cameras:
        with av.open(str(f)) as c:
            assert (c.streams[0].codec_context.width, c.streams[0].codec_context.height) == (160, 120)
        assert decoded(f, "video") > 3
