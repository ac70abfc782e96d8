"""Recording a meeting (issue 16) in the web app, with a real media worker writing the files:

- who may start and stop it (the chairs, where the room's owners allowed it, never above
  COLLAB_RECORDING_MAX_LABEL nor in a non-attributed room), and what everyone else gets (403/404/401);
- a recorded meeting: the worker writes the streams, the meeting's state says "recording" to everyone,
  slide changes are noted, stopping composes one file in the background with progress, and the room's
  readers replay it (the page, the file with byte ranges, the timeline index, the captions window) while
  nobody else gets anything of it;
- ending the meeting stops its recording; the minutes list it; the data export carries the speaker's own
  microphone; the room's retention deletes its files.
"""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import av
import pytest
from sqlalchemy import select

from auth.audit import AuditEvent
from collab import tasks
from collab.db import utcnow
from collab.errors import Forbidden, NotFound, Unavailable
from collab.extensions import db
from media import net
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from rooms import account_data, retention, trust_settings
from rooms.meetings import minutes, recording_processing, recordings, services, state
from rooms.meetings.recording_models import Recording, RecordingMark
from rooms.meetings.transcript_models import TranscriptSegment
from tests.conftest import bearer
from tests.live_support import login_client, until
from tests.meeting_support import ready_deck
from tests.test_media_revocation import worker_process

pytestmark = pytest.mark.usefixtures("settle")


@pytest.fixture
def backend():
    """The database is not what these tests are about: SQLite keeps them quick."""
    return "sqlite"


@pytest.fixture
def settle(app):
    yield
    tasks.settle(app)


@pytest.fixture
def recordings_dir(tmp_path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def worker_url(recordings_dir):
    """A real media worker process writing into the folder the web app reads."""
    yield from worker_process(COLLAB_RECORDINGS_DIR=str(recordings_dir), COLLAB_CAPTIONS_ENGINE="off")


@pytest.fixture
def app_config(worker_url, recordings_dir):
    return {"MEDIA_URLS": [worker_url], "RECORDINGS_DIR": str(recordings_dir)}


def _world(make, **room):
    org = make.org()
    chair, member = make.user(org=org, name="Chair Person"), make.user(org=org, name="Mo Member")
    reader = make.user(org=org, name="Rita Reader")
    guest = make.user(org=org, name="Gus Guest", kind="guest")
    r = make.room(chair, members=[member, guest], observer=[reader], **room)
    trust_settings.set_recording_allowed(chair, r.id, True)
    meeting = services.start_meeting(chair, r.id, title="Plenary")
    return chair, member, reader, guest, r, meeting


def test_only_a_chair_records_and_only_where_the_room_allows_it(app, make):
    chair, member, reader, guest, room, meeting = _world(make)
    outsider = make.user(name="Olly Outsider")
    api = app.test_client()
    url = f"/api/v1/meetings/{meeting.id}/recording"
    # the owners' setting: off by default, and only owners change it
    other = make.room(chair, members=[member])
    plain = services.start_meeting(chair, other.id, title="Unrecorded")
    assert state.get_state(chair, plain.id)["recording"] == {
        "live": False, "started_at": None, "id": None, "allowed": False,
        "refusal": "The room's owners have not allowed meetings here to be recorded."}
    with pytest.raises(Forbidden, match="not allowed"):
        recordings.start(chair, plain.id)
    with pytest.raises(Forbidden):
        trust_settings.set_recording_allowed(member, other.id, True)
    assert state.get_state(reader, meeting.id)["recording"]["allowed"] is True
    # others: 403 to those in the room, 404 to the rest, 401 without credentials
    assert api.post(url, headers=bearer(make.token(member))).status_code == 403
    assert api.post(url, headers=bearer(make.token(reader))).status_code == 403
    assert api.post(url, headers=bearer(make.token(outsider))).status_code == 404
    assert api.post(url).status_code == 401
    assert api.delete(url, headers=bearer(make.token(member))).status_code == 403
    # nobody in the call yet: nothing could be recorded
    r = api.post(url, headers=bearer(make.token(chair)))
    assert r.status_code == 409 and "Nobody is in the meeting's call" in r.json["error"]["message"]
    assert db.session.scalar(select(Recording.id)) is None
    # a label above COLLAB_RECORDING_MAX_LABEL (default the lowest) forbids it, whatever the setting
    trust_settings.set_label(chair, room.id, "OFFICIAL-SENSITIVE")
    with pytest.raises(Forbidden, match="labelled above OFFICIAL"):
        recordings.start(chair, meeting.id)
    assert "labelled above" in state.get_state(chair, meeting.id)["recording"]["refusal"]
    # a non-attributed room is never recorded: a voice names its speaker
    quiet = make.room(chair, members=[member])
    trust_settings.set_non_attributed(chair, quiet.id, True)
    trust_settings.set_recording_allowed(chair, quiet.id, True)
    hidden = services.start_meeting(chair, quiet.id, title="Frank")
    with pytest.raises(Forbidden, match="non-attributed"):
        recordings.start(chair, hidden.id)
    # the owners' page has the setting; the chair's Chair tab has the button
    assert b'id="recording_allowed"' in login_client(app, chair).get(f"/rooms/{room.id}/trust").data
    assert b'id="recording-toggle"' in login_client(app, chair).get(f"/meetings/{meeting.id}").data
    assert b'id="recording-toggle"' not in login_client(app, member).get(f"/meetings/{meeting.id}").data
    assert b'id="recording-badge"' in login_client(app, member).get(f"/meetings/{meeting.id}").data


def _recorded_meeting(app, make, *, slides: bool = True):
    """A meeting recorded for a few seconds with a real worker: the chair speaks with camera on, the
    member listens; the slide moves from 1 to 2 while it records."""
    chair, member, reader, guest, room, meeting = _world(make)
    deck = ready_deck(chair, meeting, pages=2) if slides else None
    if deck is not None:
        state.set_slide(chair, meeting.id, deck_id=deck.id, page=1)
    chair_tok = services.join(chair, meeting.id)["token"]
    member_tok = services.join(member, meeting.id)["token"]
    url = db.session.get(type(meeting), meeting.id).media_url
    net.use_addresses(["127.0.0.1"])
    video, audio = vp8_clip(), opus_clip()
    out = {}

    async def scenario():
        c = await SyntheticParticipant(url, chair_tok, video=video, audio=audio, speaking=True).start()
        m = await SyntheticParticipant(url, member_tok, audio=audio).start()
        assert await until(lambda: m.video_frames_from(chair.id) > 5 and m.audio_frames_from(chair.id) > 10)
        out["started"] = await asyncio.to_thread(_in_app, app, lambda: recordings.start(chair, meeting.id))
        heard = m.audio_frames_from(chair.id)
        assert await until(lambda: m.audio_frames_from(chair.id) > heard + 50)   # about a second recorded
        if deck is not None:
            await asyncio.to_thread(_in_app, app, lambda: state.set_slide(chair, meeting.id, deck_id=deck.id, page=2))
        heard = m.audio_frames_from(chair.id)
        assert await until(lambda: m.audio_frames_from(chair.id) > heard + 50)
        out["stopped"] = await asyncio.to_thread(_in_app, app, lambda: recordings.stop(chair, meeting.id))
        for p in (c, m):
            await p.leave()

    asyncio.run(asyncio.wait_for(scenario(), 90))
    db.session.rollback()   # what the other thread committed
    return chair, member, reader, guest, room, meeting, out


def _in_app(app, fn):
    with app.app_context():
        try:
            return fn()
        finally:
            db.session.remove()


def _ready(app, rec_id: int) -> Recording:
    def done():
        db.session.rollback()
        r = db.session.get(Recording, rec_id, populate_existing=True)
        return r.status in ("ready", "failed")
    assert asyncio.run(until(done, 120))
    return db.session.get(Recording, rec_id, populate_existing=True)


def test_a_recorded_meeting_is_composed_and_replayed_by_the_rooms_readers_only(app, make, recordings_dir):
    chair, member, reader, guest, room, meeting, out = _recorded_meeting(app, make)
    started, stopped = out["started"], out["stopped"]
    assert started["status"] == "recording" and stopped["status"] in ("stopped", "composing", "ready")
    rec_id = started["id"]
    # audited, and the slide changes were noted (the one shown at the start, then page 2)
    actions = [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.target_id == meeting.id))]
    assert "meeting.recording_started" in actions and "meeting.recording_stopped" in actions
    marks = list(db.session.scalars(select(RecordingMark).where(RecordingMark.recording_id == rec_id)
                                    .order_by(RecordingMark.at)))
    assert [m.page for m in marks] == [1, 2]
    # the worker wrote the chair's microphone and camera and the member's microphone
    folder = recordings_dir / str(meeting.id) / str(rec_id)
    names = {p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in folder.glob("*.webm")}
    assert {f"{chair.id}-audio", f"{chair.id}-video", f"{member.id}-audio"} <= names
    # composed in the background, with progress kept on the row
    rec = _ready(app, rec_id)
    assert rec.status == "ready", rec.message
    assert rec.progress == 100 and rec.size > 0 and rec.duration > 1.5
    with av.open(str(recording_processing.composed_path(rec))) as c:
        kinds = sorted(s.type for s in c.streams)
        assert kinds == ["audio", "video"]
        assert abs(float(c.duration / 1_000_000) - rec.duration) < 1.0
    # the list, for readers (API)
    api = app.test_client()
    listed = api.get(f"/api/v1/meetings/{meeting.id}/recordings", headers=bearer(make.token(reader)))
    assert listed.status_code == 200
    [item] = listed.json["recordings"]
    assert item["id"] == rec_id and item["url"].endswith(f"/meetings/{meeting.id}/recordings/{rec_id}")
    assert item["started_at"] and item["ended_at"] and item["status"] == "ready"
    # the replay page, the file with byte ranges, the timeline and the captions window
    rc = login_client(app, reader)
    page = rc.get(f"/meetings/{meeting.id}/recordings/{rec_id}")
    assert page.status_code == 200 and b'id="replay-video"' in page.data and page.headers["Cache-Control"] == "no-store"
    part = rc.get(f"/meetings/{meeting.id}/recordings/{rec_id}/file", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100 and part.data[:4] == b"\x1aE\xdf\xa3"   # EBML
    timeline = rc.get(f"/meetings/{meeting.id}/recordings/{rec_id}/timeline.json").json
    assert [s["page"] for s in timeline["slides"]] == [1, 2]
    assert timeline["slides"][0]["t"] == 0 and timeline["slides"][1]["t"] > 0.5
    kinds = [e["kind"] for e in timeline["entries"]]
    assert kinds.count("slide") == 2 and "speaker" in kinds
    assert any(e["text"] == "Chair Person speaks" for e in timeline["entries"])
    assert rc.get(timeline["slides"][1]["url"]).status_code == 200
    vtt = rc.get(f"/meetings/{meeting.id}/recordings/{rec_id}/captions.vtt")
    assert vtt.status_code == 200 and vtt.data.startswith(b"WEBVTT")
    # nobody else gets any of it: 404 (a stranger), 404 (a guest of a room labelled above the lowest)
    outsider = make.user(name="Olly Outsider")
    oc = login_client(app, outsider)
    for path in ("", "/file", "/timeline.json", "/captions.vtt"):
        assert oc.get(f"/meetings/{meeting.id}/recordings/{rec_id}{path}").status_code == 404, path
    assert api.get(f"/api/v1/meetings/{meeting.id}/recordings",
                   headers=bearer(make.token(outsider))).status_code == 404
    assert app.test_client().get(f"/meetings/{meeting.id}/recordings/{rec_id}/file").status_code in (302, 401)
    trust_settings.set_label(chair, room.id, "OFFICIAL-SENSITIVE")
    gc = login_client(app, guest)
    assert gc.get(f"/meetings/{meeting.id}/recordings/{rec_id}/file").status_code == 404
    assert login_client(app, reader).get(f"/meetings/{meeting.id}/recordings/{rec_id}/file").status_code == 200
    with pytest.raises(NotFound):
        recordings.get_readable(chair, meeting.id, rec_id + 1000)


def test_ending_the_meeting_stops_it_and_minutes_export_and_retention_follow(app, make, recordings_dir):
    chair, member, reader, guest, room, meeting, out = _recorded_meeting(app, make, slides=False)
    rec_id = out["started"]["id"]
    # a second recording, ended by the meeting's end
    chair_tok = services.join(chair, meeting.id)["token"]
    url = db.session.get(type(meeting), meeting.id).media_url

    async def again():
        c = await SyntheticParticipant(url, chair_tok, audio=opus_clip(), speaking=True).start()
        assert await until(lambda: c.me is not None)
        second = await asyncio.to_thread(_in_app, app, lambda: recordings.start(chair, meeting.id))
        assert await until(lambda: any((recordings_dir / str(meeting.id) / str(second["id"])).glob("*-audio-*.webm")))
        live = await asyncio.to_thread(_in_app, app, lambda: state.get_state(member, meeting.id)["recording"]["live"])
        thread = await asyncio.to_thread(_in_app, app, lambda: minutes.end_with_minutes(chair, meeting.id).id)
        await c.close()
        return second, live, thread

    second, live, thread = asyncio.run(asyncio.wait_for(again(), 60))
    db.session.rollback()
    assert live is True
    assert state.get_state(member, meeting.id)["recording"]["live"] is False
    second_rec = db.session.get(Recording, second["id"], populate_existing=True)
    assert second_rec.ended_at is not None
    for rid in (rec_id, second["id"]):
        assert _ready(app, rid).status == "ready"
    # the ended meeting's page links them for readers, not for a stranger
    page = login_client(app, reader).get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert 'id="replays-h"' in page and f"/meetings/{meeting.id}/recordings/{rec_id}" in page
    assert login_client(app, make.user(name="Olly Outsider")).get(f"/meetings/{meeting.id}").status_code == 404
    # the minutes list both recordings with their replay links
    text = minutes.markdown(db.session.get(type(meeting), meeting.id))
    assert "## Recordings" in text and f"/meetings/{meeting.id}/recordings/{rec_id}" in text
    assert f"/meetings/{meeting.id}/recordings/{second['id']}" in text and thread is not None
    # the data export: the member's own microphone and the listing, never the chair's voice
    docs, blobs = account_data.export_data(member)
    listed = {r["recording_id"] for r in docs["recordings.json"]}
    assert rec_id in listed
    assert blobs and all(name.startswith("recordings/") is False or f"-{member.id}-audio-" in name
                         for name, _ in blobs)
    assert not any(f"-{chair.id}-audio-" in name for name, _ in blobs)
    # erasing the member's account cuts their voice out: their files go, and the recording is composed again
    admin = make.user(admin=True, name="Ada Admin")
    folder = recordings_dir / str(meeting.id) / str(rec_id)
    assert list(folder.glob(f"{member.id}-audio-*.webm"))
    account_data.erase_account(admin, member.id, posts="keep", confirm=member.email)
    assert not list(folder.glob(f"{member.id}-*.webm")) and list(folder.glob(f"{chair.id}-audio-*.webm"))
    tasks.settle(app)
    assert _ready(app, rec_id).status == "ready" and recording_processing.composed_path(
        db.session.get(Recording, rec_id)).exists()
    # retention: recordings that ended before the period are deleted (files gone, the row says so)
    db.begin_write()
    db.session.get(type(room), room.id).retention_days = 1
    for r in db.session.scalars(select(Recording).where(Recording.meeting_id == meeting.id)):
        r.ended_at = utcnow() - timedelta(days=3)
    db.session.add(TranscriptSegment(meeting_id=meeting.id, key="k1", text="old words",
                                     started_at=utcnow() - timedelta(days=3), ended_at=utcnow() - timedelta(days=3)))
    db.session.commit()
    retention.purge_room(db.session.get(type(room), room.id))
    assert not (recordings_dir / str(meeting.id) / str(rec_id)).exists()
    assert {r.status for r in db.session.scalars(select(Recording).where(Recording.meeting_id == meeting.id))} == {"gone"}
    assert recordings.list_for(reader, meeting.id) == []
    assert login_client(app, reader).get(f"/meetings/{meeting.id}/recordings/{rec_id}").status_code == 404
    assert json.loads(json.dumps(state.get_state(chair, meeting.id)["recording"]))["live"] is False


def test_a_worker_that_does_not_answer_records_nothing_and_says_so(app, make, worker_url):
    chair, member, reader, guest, room, meeting = _world(make)
    services.join(chair, meeting.id)
    db.begin_write()
    db.session.get(type(meeting), meeting.id).media_url = "ws://127.0.0.1:9/"   # nothing listens there
    db.session.commit()
    app.config["MEDIA_URLS"] = ["ws://127.0.0.1:9/"]
    with pytest.raises(Unavailable, match="did not start recording"):
        recordings.start(chair, meeting.id)
    [rec] = db.session.scalars(select(Recording)).all()
    assert rec.status == "failed" and rec.ended_at is not None
    assert state.get_state(member, meeting.id)["recording"]["live"] is False


def test_a_recording_that_cannot_be_composed_fails_with_a_reason_and_stuck_ones_are_taken_up(app, make):
    chair, member, reader, guest, room, meeting = _world(make)
    now = utcnow()
    db.begin_write()
    empty = Recording(meeting_id=meeting.id, started_by_id=chair.id, started_at=now, ended_at=now, status="stopped")
    stuck = Recording(meeting_id=meeting.id, started_by_id=chair.id, started_at=now - timedelta(seconds=3),
                      ended_at=now, status="composing", worker="another-host:123:456", attempts=1,
                      updated_at=now - timedelta(hours=1))
    db.session.add_all([empty, stuck])
    db.session.commit()
    # no time between start and end: the composer refuses, and says why
    assert recording_processing.compose(empty.id) == "failed"
    failed = db.session.get(Recording, empty.id, populate_existing=True)
    assert failed.status == "failed" and "end" in failed.message.lower() and failed.message != ""
    # a composition whose process went silent an hour ago is taken up again (here: nothing was recorded,
    # so the file is silence and darkness of the recording's length)
    assert recording_processing.resume_stuck(app, background=False) == [stuck.id]
    done = db.session.get(Recording, stuck.id, populate_existing=True)
    assert done.status == "ready" and done.attempts == 2 and abs(done.duration - 3) < 0.5
    listed = {r["id"]: r for r in recordings.list_for(reader, meeting.id)}
    assert listed[stuck.id]["file_url"].endswith(f"/recordings/{stuck.id}/file")
    assert listed[empty.id]["status"] == "failed" and listed[empty.id]["file_url"] is None
