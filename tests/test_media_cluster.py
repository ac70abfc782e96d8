"""One media worker as several processes (`--processes 2`): a meeting spread over
both, with real aiortc participants. Streams cross between the processes once
per process; speakers, joins and leaves are known everywhere; a crashed
process is restarted and the others carry on."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from media import net, tokens
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cluster-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def node():
    port = free_port()
    env = dict(os.environ, COLLAB_SECRET_KEY=SECRET, COLLAB_MEDIA_HOST="127.0.0.1", COLLAB_MEDIA_PORT=str(port),
               COLLAB_MEDIA_ADDRESSES="127.0.0.1", COLLAB_MEDIA_FILL="1")  # spread at once: test the pipes
    proc = subprocess.Popen([sys.executable, "-m", "media", "--processes", "2", "--skip-self-test"], cwd=ROOT,
                            env=env, start_new_session=True)
    deadline = time.time() + 30
    while True:
        try:
            status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1).read())
            if status["processes"] == 2 and status["ready"]:
                break
        except OSError:
            pass
        assert time.time() < deadline and proc.poll() is None, "the media node did not start"
        time.sleep(0.2)
    yield port, proc
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)


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


async def until(pred, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


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
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/status").read())
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
