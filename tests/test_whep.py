"""WHEP for a meeting's broadcast (issue 16), with the real web app, a real media worker and an aiortc player:
the player POSTs its offer with an API token and gets 201, the answer and the session's Location; it then
receives the stage (the speaker's camera) and the speaker's audio and is never shown as a participant;
DELETE on the Location ends it, and so does losing the room (within 2 s, through the revocation path).
Bad requests get clear refusals and nothing is set up."""
from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection, RTCSessionDescription

from media import internals
from rooms import services as rs
from rooms.meetings import broadcast, services, state
from tests.conftest import bearer
from tests.live_support import until
from tests.test_media_revocation import _in_call, app_config, backend, worker_url  # noqa: F401

SDP = {"Content-Type": "application/sdp"}


class Player:
    """A WHEP player: offers to receive one audio and one video stream, counts the frames it gets."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.frames = {"audio": 0, "video": 0}
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        t = next(x for x in self.pc.getTransceivers() if x.receiver.track is track)

        def on_frame(codec, frame, kind=track.kind):
            self.frames[kind] += 1

        internals.tap_receiver(t.receiver, on_frame)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


def _world(make):
    org = make.org()
    chair, member, reader = make.user(org=org), make.user(org=org), make.user(org=org, name="Homebound Viewer")
    room = make.room(chair, members=[member], observer=[reader])
    meeting = services.start_meeting(chair, room.id, title="Broadcast plenary")
    return chair, member, reader, room, meeting


def test_a_whep_player_receives_the_stage_and_ending_or_losing_the_room_stops_it(app, make, worker_url):  # noqa: F811
    chair_u, member_u, reader_u, room, meeting = _world(make)
    broadcast.start(chair_u, meeting.id)
    chair_tok = services.join(chair_u, meeting.id)["token"]
    member_tok = services.join(member_u, meeting.id)["token"]
    url = f"/api/v1/meetings/{meeting.id}/whep"
    api = app.test_client()
    auth = bearer(make.token(reader_u))
    assert broadcast.view(meeting, state.live_broadcast(meeting.id))["whep_url"].endswith(url)

    def post(sdp: str, **headers):
        return api.post(url, data=sdp, headers={**auth, **SDP, **headers})

    async def scenario():
        chair, (member,) = await _in_call(worker_url, chair_tok, member_tok)
        cid = chair.me["id"]
        # one player, then a second session of the same viewer replaces nothing of the participants'
        player = Player()
        r = await asyncio.to_thread(post, await player.offer())
        assert r.status_code == 201, r.data
        assert r.mimetype == "application/sdp" and r.headers["Location"].startswith(f"{url}/")
        await player.answer(r.get_data(as_text=True))
        assert await until(lambda: player.frames["video"] > 15 and player.frames["audio"] > 25, 30), player.frames
        assert all(m["id"] > 0 for m in chair.members.values()), "a WHEP viewer was shown as a participant"
        assert await until(lambda: any(m.get("type") == "viewers" and m["count"] == 1 for m in chair.messages))
        # DELETE ends it; the meeting goes on
        r = await asyncio.to_thread(api.delete, r.headers["Location"], headers=auth)
        assert r.status_code == 200
        await asyncio.sleep(2.0)
        stopped = player.frames["video"]
        await asyncio.sleep(1.5)
        assert player.frames["video"] <= stopped + 1, "frames still arrive 2 s after DELETE"
        seen = member.video_frames_from(cid)
        assert await until(lambda: member.video_frames_from(cid) > seen + 5)
        await player.pc.close()
        # a second player; the viewer then loses the room: within 2 s nothing more arrives
        player = Player()
        r = await asyncio.to_thread(post, await player.offer())
        assert r.status_code == 201
        await player.answer(r.get_data(as_text=True))
        assert await until(lambda: player.frames["video"] > 15, 30)
        await asyncio.to_thread(rs.remove_member, chair_u, room.id, reader_u.id)
        await asyncio.sleep(2.0)
        before = player.frames["video"]
        await asyncio.sleep(1.5)
        assert player.frames["video"] <= before + 1, "frames still arrive 2 s after the viewer lost the room"
        r = await asyncio.to_thread(post, await Player().offer())
        assert r.status_code == 404
        for p in (chair, member):
            await p.close()
        await player.pc.close()

    with app.app_context():
        asyncio.run(asyncio.wait_for(scenario(), 120))


def test_whep_refuses_what_it_cannot_use_and_whom_it_may_not_serve(app, make, worker_url):  # noqa: F811
    chair, member, reader, room, meeting = _world(make)
    outsider = make.user(name="Olly Outsider")
    url = f"/api/v1/meetings/{meeting.id}/whep"
    api = app.test_client()

    async def make_offer() -> str:
        player = Player()
        sdp = await player.offer()
        await player.pc.close()
        return sdp

    offer = asyncio.run(make_offer())
    assert api.post(url, data=offer, headers=SDP).status_code == 401
    assert api.post(url, data=offer, headers={**bearer(make.token(outsider)), **SDP}).status_code == 404
    r = api.post(url, data=offer, headers={**bearer(make.token(reader)), **SDP})
    assert r.status_code == 403 and "not being broadcast" in r.json["error"]["message"]
    broadcast.start(chair, meeting.id)
    auth = bearer(make.token(reader))
    r = api.post(url, data=offer, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 415
    r = api.post(url, data="not an offer", headers={**auth, **SDP})
    assert r.status_code == 422
    r = api.post(url, data="v=0\r\nnonsense\r\n", headers={**auth, **SDP})
    assert r.status_code == 422, r.data
    assert api.patch(f"{url}/abc", headers=auth).status_code == 405
    assert api.delete(f"{url}/not-a-session!", headers=auth).status_code == 404
    assert api.delete(f"{url}/abc", headers=bearer(make.token(outsider))).status_code == 404
