"""One media worker as several processes (`--processes 2`): a meeting spread over
both, with real aiortc participants. Streams cross between the processes once
per process; speakers, joins and leaves are known everywhere; a crashed
process is restarted and the others carry on."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from media import control, net, tokens
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from tests.liveserver import free_port
from tests.live_support import until

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cluster-test-secret"


@pytest.fixture
def node(tmp_path):
    """A two-process media worker (node) on a free port; it records into tmp_path/recordings."""
    port = free_port()
    env = dict(os.environ, COLLAB_SECRET_KEY=SECRET, COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", COLLAB_MEDIA_FILL="1",  # spread at once: test the pipes
               COLLAB_RECORDINGS_DIR=str(tmp_path / "recordings"))
    proc = subprocess.Popen([sys.executable, "-m", "media", "--processes", "2", "--skip-self-test"], cwd=ROOT,
                            env=env, start_new_session=True)
    deadline = time.time() + 30
    while True:
        try:
            status = signed_status(port)
            if status["processes"] == 2 and status["ready"]:
                break
        except OSError:
            pass
        assert time.time() < deadline and proc.poll() is None, "the media node did not start"
        time.sleep(0.2)
    yield port, proc
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)


def signed_status(port: int) -> dict:
    """The node's /status, asked as the web app does (signed with the shared key)."""
    query = control.signed_query(SECRET, {"op": "status"})
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/status?{query}", timeout=1).read())


def shard_pids(node_pid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == node_pid:
                        pids.append(int(entry))
            except OSError:
                pass
    return sorted(pids)


def test_a_meeting_spread_over_two_processes(node):
    port, proc = node
    url = f"ws://127.0.0.1:{port}/"
    video, audio = vp8_clip(), opus_clip()

    def tok(i):
        return tokens.mint(SECRET, meeting=3, account=i, name=f"P{i}", role="member")

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        ps = []
        for i in range(1, 5):
            ps.append(await SyntheticParticipant(url, tok(i), video=video, audio=audio, speaking=(i == 1)).start())
            await asyncio.sleep(0.2)
        status = signed_status(port)
        assert status["connections"] == [2, 2], status  # the node spread them evenly
        ids = {1, 2, 3, 4}
        assert await until(lambda: all(set(p.members) == ids - {p.me["id"]} for p in ps if p.me))
        # everyone sees the three others' cameras, whichever process they are on
        assert await until(lambda: all(all(p.video_frames_from(o) > 10 for o in ids - {p.me["id"]}) for p in ps),
                           timeout=30), [dict(p.frames) for p in ps]
        # the speaker's voice reaches all, silent people's audio reaches nobody
        assert await until(lambda: all(p.audio_frames_from(1) > 20 for p in ps[1:]))
        assert all(p.audio_frames_from(o) == 0 for p in ps for o in (2, 3, 4))
        # each forwarded camera started with a keyframe (a PLI crossed the pipe when needed)
        assert all(p.keyframes[(o, "video")] >= 1 for p in ps for o in ids - {p.me["id"]})
        # a leave on one process reaches the other
        await ps[3].leave()
        assert await until(lambda: all(4 not in p.members for p in ps[:3]))

        # one process crashes: its participants lose their connection, the others see them go,
        # the node starts a new process, and the pages' reconnect (here: a new participant) works
        victims = [p for p in ps[:3]]
        pids = shard_pids(proc.pid)
        assert len(pids) == 2
        os.kill(pids[0], signal.SIGKILL)
        assert await until(lambda: any(p.ws.close_code is not None for p in victims), timeout=10)
        gone = {p.me["id"] for p in victims if p.ws.close_code is not None}
        alive = [p for p in victims if p.ws.close_code is None]
        assert gone and alive
        assert await until(lambda: all(not (gone & set(p.members)) for p in alive), timeout=10)
        assert await until(lambda: len(shard_pids(proc.pid)) == 2 and shard_pids(proc.pid) != pids, timeout=15)
        back = await SyntheticParticipant(url, tok(sorted(gone)[0]), video=video, audio=audio).start()
        other = alive[0].me["id"]
        assert await until(lambda: back.video_frames_from(other) > 10, timeout=30)
        for p in victims + [back]:  # (also stops their idle decoder threads)
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_drop_and_end_reach_every_process_and_a_restarted_one_remembers(node):
    """The web app's signed "drop" and "end" (rooms/meetings/media_control.py) go to the node's public
    port; the node passes them to every process: participants on either are told and cut off, and a
    token minted before is refused by every process, including one started after the message."""
    from rooms.meetings import media_control

    port, proc = node
    url = f"ws://127.0.0.1:{port}/"
    video, audio = vp8_clip(), opus_clip()
    old = {i: tokens.mint(SECRET, meeting=5, account=i, name=f"P{i}", role="member") for i in (1, 2, 3)}

    async def refused(token: str) -> dict:
        p = await SyntheticParticipant(url, token).start()
        assert await until(lambda: p.errors or p.me is not None)
        await p.close()
        return p.errors[0] if p.errors else {}

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        ps = []
        for i in (1, 2, 3):
            ps.append(await SyntheticParticipant(url, old[i], video=video, audio=audio, speaking=(i == 1)).start())
            await asyncio.sleep(0.2)
        assert signed_status(port)["connections"] in ([2, 1], [1, 2])  # on both processes
        one, two, three = ps
        assert await until(lambda: all(p.video_frames_from(1) > 5 for p in (two, three)), timeout=30)
        ok = await asyncio.to_thread(media_control.drop, url, SECRET, meeting_id=5, account_id=2,
                                     reason="removed", message="You were removed.")
        assert ok
        assert await until(lambda: two.bye is not None)
        assert next(m for m in two.messages if m["type"] == "bye")["message"] == "You were removed."
        assert await until(lambda: 2 not in one.members and 2 not in three.members)
        assert one.bye is None and three.bye is None
        for _ in range(2):  # whichever process takes the join refuses the old token
            assert (await refused(old[2]))["code"] == "revoked"
        ok = await asyncio.to_thread(media_control.end, url, SECRET, meeting_id=5, reason="ended",
                                     message="The chair ended the meeting.")
        assert ok
        assert await until(lambda: one.bye is not None and three.bye is not None)
        # a process that starts after the message (here: restarted after a crash) knows it too:
        # with nobody connected, the node gives the next join to process 0
        pids = shard_pids(proc.pid)
        os.kill(pids[0], signal.SIGKILL)
        assert await until(lambda: len(shard_pids(proc.pid)) == 2 and shard_pids(proc.pid) != pids, timeout=15)
        assert await until(lambda: signed_status(port)["ready"], timeout=15)
        for i in (1, 3):
            assert (await refused(old[i]))["code"] == "revoked"
        # a forged message reaches no process
        forged = media_control.control_url(url, "not the key", {"op": "end", "meeting": 6, "reason": "ended",
                                                                  "message": "x"})
        try:
            urllib.request.urlopen(forged, timeout=5)
            raise AssertionError("a forged control message was accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 403
        for p in ps:
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_simulcast_layers_cross_between_processes(node):
    """Two simulcast publishers on different processes and a subscriber on each: every subscriber gets the
    speaker's camera in the high layer and the other in the low one, whichever process publishes it, and
    the layers swap when the other one speaks. (The low layer once stayed on its own process: subscribers
    elsewhere got every camera in the high layer.)"""
    port, _proc = node
    url = f"ws://127.0.0.1:{port}/"
    audio = opus_clip()

    def layers():
        return {"l": vp8_clip(width=160, height=120, bitrate=80_000),
                "h": vp8_clip(width=320, height=240, bitrate=250_000)}

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        ps = []
        for i in (1, 2, 3, 4):
            tok = tokens.mint(SECRET, meeting=11, account=i, name=f"P{i}", role="member")
            ps.append(await SyntheticParticipant(url, tok, audio=audio, layers=layers() if i < 3 else None,
                                                 speaking=(i == 1)).start())
            await asyncio.sleep(0.2)
        assert signed_status(port)["connections"] == [2, 2]
        a, b, *subscribers = ps
        assert await until(lambda: all(s.widths.get((1, "video")) == 320 and s.widths.get((2, "video")) == 160
                                       for s in subscribers), timeout=30), [s.widths for s in subscribers]
        a.speaking, b.speaking = False, True
        assert await until(lambda: all(s.widths.get((1, "video")) == 160 and s.widths.get((2, "video")) == 320
                                       for s in subscribers), timeout=30), [s.widths for s in subscribers]
        for p in ps:
            await p.leave()

    asyncio.run(asyncio.wait_for(scenario(), 90))
