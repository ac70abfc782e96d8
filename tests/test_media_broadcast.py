"""A broadcast's viewers in a real media worker (issue 16): a viewer receives the stage and the speakers'
audio and sends nothing; participants see a count, never a viewer's tile; someone may watch in one window
and take part in another; revoking a viewer's place stops what it receives; and viewers on another
process of the worker receive the stage through the pipes between processes as participants do."""
from __future__ import annotations

import asyncio
import time

from media import net, tokens
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from rooms.meetings import media_control
from tests.test_media_cluster import SECRET as NODE_SECRET
from tests.test_media_cluster import node, signed_status  # noqa: F401  (the two-process node fixture)
from tests.test_captions_worker import captions, speak, speech  # noqa: F401  (speech: the fixture)
from tests.live_support import until
from tests.test_media_signalling import SECRET, token, with_worker


def viewer_token(account: int, meeting: int = 1, secret: str = SECRET) -> str:
    return tokens.mint(secret, meeting=meeting, account=account, name=f"Viewer {account}", role="viewer", ttl=60)


def videos_from(p: SyntheticParticipant) -> set[int]:
    """Whose cameras `p` receives now."""
    return {s["participant"] for s in p.slots.values() if s and s["source"] == "video"}


def test_a_viewer_gets_the_stage_and_the_speakers_audio_and_is_only_counted():
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        chair = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        other = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        third = await SyntheticParticipant(url, token(3), video=video, audio=audio).start()
        # a viewer who asks to publish is not given anything to publish into
        viewer = await SyntheticParticipant(url, viewer_token(4), video=video, audio=audio).start()
        second = await SyntheticParticipant(url, viewer_token(5)).start()
        assert await until(lambda: all(v.video_frames_from(1) > 5 and v.audio_frames_from(1) > 10
                                       for v in (viewer, second)))
        # the stage alone: one camera, the speaker's
        assert videos_from(viewer) == {1} and videos_from(second) == {1}
        # participants are told how many watch, and never see a viewer as a participant
        assert await until(lambda: any(m.get("type") == "viewers" and m["count"] == 2 for m in chair.messages))
        for p in (chair, other, third):
            assert all(m["id"] > 0 for m in p.members.values()), "a viewer was shown as a participant"
            assert not any(m.get("type") == "joined" and m["participant"]["role"] == "viewer" for m in p.messages)
        assert viewer.me["role"] == "viewer" and viewer.me["id"] == -4
        # the viewers sent nothing: nobody receives a viewer's media, the chair's count of streams is unchanged
        for p in (chair, other, third, second):
            assert p.video_frames_from(-4) == 0 and p.audio_frames_from(-4) == 0
        # the stage follows the speaker
        chair.speaking, other.speaking = False, True
        assert await until(lambda: videos_from(viewer) == {2} and videos_from(second) == {2}, 20)
        before = viewer.video_frames_from(2)
        assert await until(lambda: viewer.video_frames_from(2) > before + 5)
        assert await until(lambda: viewer.audio_frames_from(2) > 10)
        # a viewer leaving changes the count
        await second.leave()
        assert await until(lambda: any(m.get("type") == "viewers" and m["count"] == 1 for m in other.messages))
        for p in (chair, other, third, viewer):
            await p.leave()

    with_worker(scenario, timeout=90)


def test_watching_in_one_window_and_taking_part_in_another_keeps_both():
    video, audio = vp8_clip(), opus_clip()

    async def scenario(url):
        chair = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        member = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        watching = await SyntheticParticipant(url, viewer_token(2)).start()   # the same account
        assert await until(lambda: watching.video_frames_from(1) > 5 and member.video_frames_from(1) > 5)
        assert member.bye is None and watching.bye is None
        for p in (chair, member, watching):
            await p.leave()

    with_worker(scenario)


def test_revoking_a_viewer_stops_what_it_receives_within_two_seconds():
    """The web app's drop (rooms/meetings/media_control.py: what removal from the room, or the room becoming
    private, sends) reaches a viewer's session too, and voids its token."""
    video, audio = vp8_clip(), opus_clip()
    old = viewer_token(7)

    async def scenario(url):
        chair = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        viewer = await SyntheticParticipant(url, old).start()
        assert await until(lambda: viewer.video_frames_from(1) > 5)
        revoked_at = time.monotonic()
        assert await asyncio.to_thread(media_control.drop, url, SECRET, meeting_id=1, account_id=7,
                                       reason="removed", message="You can no longer read this room.")
        assert await until(lambda: viewer.bye is not None, 2.0), "the viewer was not let go within 2 s"
        assert time.monotonic() - revoked_at < 2.0
        frames = viewer.video_frames_from(1)
        await asyncio.sleep(1.0)
        assert viewer.video_frames_from(1) == frames, "frames kept arriving after the revocation"
        again = await SyntheticParticipant(url, old).start()   # the token it had is void now
        assert await until(lambda: bool(again.errors))
        assert again.errors[0]["code"] == "revoked"
        await again.close()
        await chair.leave()

    with_worker(scenario)


def test_viewers_on_another_process_receive_the_stage_through_the_pipes(node):  # noqa: F811 (the fixture)
    """Joins alternate between the node's two processes (COLLAB_MEDIA_FILL=1): the speaker is on one,
    viewers on both; every viewer receives the stage and the speaker's audio, and the chair's count
    includes the viewers of the other process."""
    port, _proc = node
    url = f"ws://127.0.0.1:{port}/"
    video, audio = vp8_clip(), opus_clip()

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        chair = await SyntheticParticipant(url, tokens.mint(NODE_SECRET, meeting=9, account=1, name="Chair",
                                                            role="host"), video=video, audio=audio,
                                           speaking=True).start()
        viewers = []
        for i in range(2, 6):
            viewers.append(await SyntheticParticipant(url, viewer_token(i, meeting=9, secret=NODE_SECRET)).start())
            await asyncio.sleep(0.2)
        connections = signed_status(port)["connections"]
        assert min(connections) >= 2, f"the joins did not spread over both processes: {connections}"
        assert await until(lambda: all(v.video_frames_from(1) > 5 and v.audio_frames_from(1) > 10
                                       for v in viewers), 30)
        assert all(videos_from(v) == {1} for v in viewers)
        assert await until(lambda: any(m.get("type") == "viewers" and m["count"] == 4 for m in chair.messages))
        assert all(m["id"] > 0 for m in chair.members.values())
        for p in (chair, *viewers):
            await p.leave()

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_stopping_the_broadcast_lets_the_viewers_go_and_keeps_the_participants():
    video, audio = vp8_clip(), opus_clip()
    old = viewer_token(8)

    async def scenario(url):
        chair = await SyntheticParticipant(url, token(1), video=video, audio=audio, speaking=True).start()
        member = await SyntheticParticipant(url, token(2), video=video, audio=audio).start()
        viewer = await SyntheticParticipant(url, old).start()
        assert await until(lambda: viewer.video_frames_from(1) > 5 and member.video_frames_from(1) > 5)
        assert await asyncio.to_thread(media_control.unwatch, url, SECRET, meeting_id=1,
                                       message="The broadcast has ended.")
        assert await until(lambda: viewer.bye is not None, 2.0)
        assert next(m for m in viewer.messages if m["type"] == "bye")["reason"] == "broadcast_ended"
        before = member.video_frames_from(1)
        assert await until(lambda: member.video_frames_from(1) > before + 5), "a participant was let go too"
        assert chair.bye is None and member.bye is None
        again = await SyntheticParticipant(url, old).start()
        assert await until(lambda: bool(again.errors))
        assert again.errors[0]["code"] == "revoked"
        late = await SyntheticParticipant(url, token(3), video=video, audio=audio).start()   # participants may join
        assert await until(lambda: late.video_frames_from(1) > 5)
        for p in (again,):
            await p.close()
        for p in (chair, member, late):
            await p.leave()

    with_worker(scenario)


def test_a_viewer_on_another_process_reads_the_captions(node, speech):  # noqa: F811 (fixtures)
    """Captions are made on the speaker's process; a viewer (or participant) on the other process gets
    them relayed through the pipe between processes."""
    port, _proc = node
    url = f"ws://127.0.0.1:{port}/"

    async def scenario():
        net.use_addresses(["127.0.0.1"])
        speaker = await SyntheticParticipant(url, tokens.mint(NODE_SECRET, meeting=12, account=1, name="Speaker",
                                                              role="member"), audio=speech[0]).start()
        await asyncio.sleep(0.2)
        viewer = await SyntheticParticipant(url, viewer_token(2, meeting=12, secret=NODE_SECRET)).start()
        assert signed_status(port)["connections"] == [1, 1], "the two are not on different processes"
        assert await until(lambda: speaker.connected.is_set() and viewer.connected.is_set(), 20)
        await asyncio.sleep(0.5)
        await speak(speaker, len(speech[0]) * 0.02)
        assert await until(lambda: captions(viewer, final=True), 40), viewer.messages[-5:]
        final = captions(viewer, final=True)[0]
        assert final["participant"] == 1 and final["text"].strip()
        assert any(c["utterance"] == final["utterance"] for c in captions(speaker, final=True))
        for p in (speaker, viewer):
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))
