"""The web broadcast (issue 16) in the web app and, for what reaches the media, a real worker:

- a chair starts and stops it (API and page), nobody else; the meeting's state says it is on;
- readers of the room get the viewer page and a viewer token (role "viewer"), others 404, and nobody a
  token while it is off or after the chair removed them;
- a viewer's question goes into the meeting's Q&A when it has one, otherwise to the chairs' queue, which
  only chairs read; a request to speak that a chair brings in lets the viewer send audio and video;
- with a real worker: a viewer who loses the room (removed, or the room made private) stops receiving
  within 2 s through the one revocation path, and stopping the broadcast lets every viewer go while the
  participants stay."""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from auth.audit import AuditEvent
from collab.errors import Conflict, Forbidden, Invalid, NotFound
from collab.extensions import db
from media import tokens
from media.client import SyntheticParticipant
from rooms import services as rs
from rooms.meetings import access, broadcast, services, state
from rooms.meetings.broadcast_models import ViewerRequest
from rooms.meetings.models import MediaGrant
from rooms.qa import services as qa
from tests.conftest import bearer
from tests.live_support import login_client, until
from tests.test_media_revocation import _in_call, app_config, backend, worker_url  # noqa: F401

KEY = "test-secret-key-not-for-production"  # the test app's SECRET_KEY (tests/conftest.py)


def _world(make, *, visibility: str = "private"):
    """A chair, a member (may post), a reader (may only read: an IAG volunteer at home) and a live meeting."""
    org = make.org()
    chair, member = make.user(org=org, name="Chair Person"), make.user(org=org, name="Mo Member")
    reader = make.user(org=org, name="Rita Reader")
    if visibility == "organisation":   # the reader reads it without being a member
        room = make.room(chair, visibility="organisation", members=[member])
    else:
        room = make.room(chair, members=[member], observer=[reader])
    meeting = services.start_meeting(chair, room.id, title="Plenary")
    return chair, member, reader, room, meeting


def test_only_a_chair_starts_and_stops_it_and_the_state_says_so(app, make):
    chair, member, reader, room, meeting = _world(make)
    outsider = make.user(name="Olly Outsider")
    url = f"/api/v1/meetings/{meeting.id}/broadcast"
    api = app.test_client()
    assert api.post(url, headers=bearer(make.token(member))).status_code == 403
    assert api.post(url, headers=bearer(make.token(reader))).status_code == 403
    assert api.post(url, headers=bearer(make.token(outsider))).status_code == 404
    assert api.post(url).status_code == 401
    assert state.get_state(chair, meeting.id)["broadcast"]["live"] is False
    r = api.post(url, headers=bearer(make.token(chair)))
    assert r.status_code == 200, r.json
    assert r.json["live"] is True and r.json["viewer_url"].endswith(f"/meetings/{meeting.id}/watch")
    assert r.json["whep_url"].endswith(f"/api/v1/meetings/{meeting.id}/whep")   # tests/test_whep.py
    assert api.post(url, headers=bearer(make.token(chair))).json["started_at"] == r.json["started_at"]  # the same one
    assert state.get_state(reader, meeting.id)["broadcast"]["live"] is True
    assert api.get(url, headers=bearer(make.token(reader))).json["live"] is True
    assert api.get(url, headers=bearer(make.token(outsider))).status_code == 404
    assert api.delete(url, headers=bearer(make.token(member))).status_code == 403
    assert api.delete(url, headers=bearer(make.token(chair))).json["live"] is False
    assert state.get_state(chair, meeting.id)["broadcast"]["live"] is False
    actions = [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.target_id == meeting.id))]
    assert "meeting.broadcast_started" in actions and "meeting.broadcast_stopped" in actions
    # the chair's page has the controls; a member's does not
    assert b'id="broadcast-toggle"' in login_client(app, chair).get(f"/meetings/{meeting.id}").data
    assert b'id="broadcast-toggle"' not in login_client(app, member).get(f"/meetings/{meeting.id}").data


def test_readers_watch_with_a_viewer_token_others_get_nothing(app, make):
    chair, member, reader, room, meeting = _world(make)
    outsider = make.user(name="Olly Outsider")
    page = login_client(app, reader).get(f"/meetings/{meeting.id}/watch")
    assert page.status_code == 200 and b"not being broadcast yet" in page.data and b'id="watch-play"' in page.data
    # the page may open a WebSocket to the media worker, and nothing else new
    worker = app.config["MEDIA_URLS"][0].rstrip("/")
    assert f"connect-src 'self' {worker}" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.get_data(as_text=True) and "style=" not in page.get_data(as_text=True)
    assert login_client(app, outsider).get(f"/meetings/{meeting.id}/watch").status_code == 404
    with pytest.raises(Forbidden, match="not being broadcast"):
        broadcast.viewer_token(reader, meeting.id)
    broadcast.start(chair, meeting.id)
    page = login_client(app, reader).get(f"/meetings/{meeting.id}/watch")
    assert b"Press Play" in page.data and b"Captions are automatic and may contain mistakes" in page.data
    got = broadcast.viewer_token(reader, meeting.id)
    grant = tokens.verify(KEY, got["token"])
    assert grant.role == "viewer" and grant.account == reader.id and grant.meeting == meeting.id
    assert not grant.may_publish
    # the grant is recorded: losing the room reaches this media session too
    assert db.session.scalar(select(MediaGrant.id).where(MediaGrant.meeting_id == meeting.id,
                                                         MediaGrant.user_id == reader.id))
    with pytest.raises(NotFound):
        broadcast.viewer_token(outsider, meeting.id)
    r = login_client(app, outsider).post(f"/meetings/{meeting.id}/watch/token",
                                         headers={"X-CSRFToken": "x"})
    assert r.status_code in (400, 404)   # no CSRF token, or no room: never a token
    # removed by the chair: no more watching either
    from rooms.meetings import attendance
    attendance.remove_participant(chair, meeting.id, user_id=member.id)
    with pytest.raises(Forbidden, match="removed"):
        broadcast.viewer_token(member, meeting.id)
    # once stopped, nobody gets a token
    broadcast.stop(chair, meeting.id)
    with pytest.raises(Forbidden):
        broadcast.viewer_token(reader, meeting.id)


def test_questions_go_to_the_q_and_a_or_to_the_chairs_queue_which_only_chairs_read(app, make):
    chair, member, reader, room, meeting = _world(make)
    broadcast.start(chair, meeting.id)
    with pytest.raises(Invalid):
        broadcast.ask(reader, meeting.id, body="   ")
    assert broadcast.queue(chair, meeting.id) == []   # nothing saved
    assert broadcast.ask(reader, meeting.id, body="Will the stop and search figures be published?") == \
        {"to": "chair", "status": "open"}
    queue = broadcast.queue(chair, meeting.id)
    assert [(q["kind"], q["body"], q["from"]["name"]) for q in queue] == \
        [("question", "Will the stop and search figures be published?", "Rita Reader")]
    with pytest.raises(Forbidden):
        broadcast.queue(member, meeting.id)
    with pytest.raises(Forbidden):
        broadcast.queue(reader, meeting.id)
    assert login_client(app, member).get(f"/meetings/{meeting.id}/broadcast/queue").status_code == 403
    # a meeting with a Q&A session: a member's question goes there; a reader (who may not ask in it) to the chair
    session = qa.create_session(chair, room.id, title="Questions", starts_at="2020-01-01T10:00:00Z",
                                meeting_id=meeting.id)
    out = broadcast.ask(member, meeting.id, body="What about body-worn video?")
    assert out["to"] == "qa"
    assert [q.post.body for q in qa.questions(chair, session)] == ["What about body-worn video?"]
    assert broadcast.ask(reader, meeting.id, body="And the complaints process?")["to"] == "chair"
    assert len(broadcast.queue(chair, meeting.id)) == 2
    for _ in range(3):
        broadcast.ask(reader, meeting.id, body="Another one")
    with pytest.raises(Conflict):   # five waiting at most from one viewer
        broadcast.ask(reader, meeting.id, body="One too many")


def test_a_viewer_asks_to_speak_and_a_chair_brings_them_in(app, make):
    chair, member, reader, room, meeting = _world(make)
    broadcast.start(chair, meeting.id)
    assert access.media_role(reader, meeting) == "observer"
    broadcast.ask_to_speak(reader, meeting.id)
    with pytest.raises(Conflict):
        broadcast.ask_to_speak(reader, meeting.id)
    (req,) = broadcast.queue(chair, meeting.id)
    assert req["kind"] == "speak"
    with pytest.raises(Forbidden):
        broadcast.bring_in(member, meeting.id, req["id"])
    assert access.media_role(reader, meeting) == "observer"
    r = login_client(app, chair).post(f"/meetings/{meeting.id}/broadcast/requests/{req['id']}/bring-in",
                                      headers={"X-CSRFToken": _csrf(app, chair, meeting.id)})
    assert r.status_code == 200, r.json
    assert access.media_role(reader, meeting) == "member"
    assert tokens.verify(KEY, services.join(reader, meeting.id)["token"]).may_publish
    with pytest.raises(Conflict):
        broadcast.bring_in(chair, meeting.id, req["id"])
    assert broadcast.queue(chair, meeting.id) == []
    assert db.session.get(ViewerRequest, req["id"]).status == "brought_in"
    other = make.user(name="Another Viewer")
    rs.add_member(chair, room.id, user_id=other.id, role="observer")
    broadcast.ask_to_speak(other, meeting.id)
    (req2,) = broadcast.queue(chair, meeting.id)
    broadcast.dismiss(chair, meeting.id, req2["id"])
    assert access.media_role(other, meeting) == "observer" and broadcast.queue(chair, meeting.id) == []
    with pytest.raises(NotFound):
        broadcast.dismiss(chair, meeting.id, 999_999)


def _csrf(app, user, meeting_id: int) -> str:
    """The CSRF token the chair's meeting page carries (the client keeps its session)."""
    import re
    page = login_client(app, user).get(f"/meetings/{meeting_id}").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


# -- with a real media worker ---------------------------------------------------------------------------

@pytest.mark.parametrize("way", ["removed", "made_private"])
def test_a_viewer_who_loses_the_room_stops_receiving_within_two_seconds(app, make, worker_url, way):  # noqa: F811
    chair_u, member_u, reader_u, room, meeting = _world(make, visibility="organisation" if way == "made_private"
                                                        else "private")
    broadcast.start(chair_u, meeting.id)
    chair_tok = services.join(chair_u, meeting.id)["token"]
    old = broadcast.viewer_token(reader_u, meeting.id)["token"]

    async def scenario():
        chair, (viewer,) = await _in_call(worker_url, chair_tok, old)
        lost_at = time.monotonic()
        if way == "removed":
            await asyncio.to_thread(rs.remove_member, chair_u, room.id, reader_u.id)
        else:
            await asyncio.to_thread(rs.update_room, chair_u, room.id, name=room.name, description="",
                                    visibility="private")
        assert await until(lambda: viewer.bye is not None, 2.0), f"the viewer was not let go within 2 s ({way})"
        assert time.monotonic() - lost_at < 2.0
        await asyncio.sleep(0.5)   # packets already on the loopback wire
        frames = viewer.video_frames_from(chair.me["id"])
        await asyncio.sleep(1.5)
        assert viewer.video_frames_from(chair.me["id"]) == frames, "frames still reach the viewer"
        for p in (chair, viewer):
            await p.close()

    with app.app_context():
        asyncio.run(asyncio.wait_for(scenario(), 90))
    with pytest.raises((Forbidden, NotFound)):
        broadcast.viewer_token(reader_u, meeting.id)


def test_stopping_the_broadcast_lets_viewers_go_and_the_meeting_goes_on(app, make, worker_url):  # noqa: F811
    chair_u, member_u, reader_u, room, meeting = _world(make)
    broadcast.start(chair_u, meeting.id)
    chair_tok = services.join(chair_u, meeting.id)["token"]
    member_tok = services.join(member_u, meeting.id)["token"]
    viewer_tok = broadcast.viewer_token(reader_u, meeting.id)["token"]

    async def scenario():
        chair, (member, viewer) = await _in_call(worker_url, chair_tok, member_tok, viewer_tok)
        assert viewer.me["role"] == "viewer" and all(m["id"] > 0 for m in chair.members.values())
        r = await asyncio.to_thread(app.test_client().delete, f"/api/v1/meetings/{meeting.id}/broadcast",
                                    headers=bearer(make.token(chair_u)))
        assert r.status_code == 200
        assert await until(lambda: viewer.bye is not None, 2.0)
        assert next(m for m in viewer.messages if m["type"] == "bye")["message"] == broadcast.ENDED_MESSAGE
        seen = member.video_frames_from(chair.me["id"])
        assert await until(lambda: member.video_frames_from(chair.me["id"]) > seen + 5), "the meeting went on"
        assert member.bye is None and chair.bye is None
        again = await SyntheticParticipant(worker_url, viewer_tok).start()
        assert await until(lambda: bool(again.errors))
        assert again.errors[0]["code"] == "revoked"
        for p in (chair, member, viewer, again):
            await p.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
