"""Meeting transcripts (issue 16): final captions reported by the media worker (signed) are saved once,
read by the room's readers only (WebVTT over the API, the transcript page), named or pseudonymous as the
room requires, corrected by a chair (audited) into what search finds, removed by the room's retention,
and in the speakers' own data export. A person's Captions toggle is remembered."""
from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlalchemy import func, select

from auth.audit import AuditEvent as AuditEntry
from collab.db import utcnow
from collab.extensions import db
from media.captions import report
from rooms import account_data, retention, trust_settings
from rooms.meetings import minutes, schedule
from rooms.meetings.transcript_models import TranscriptSegment
from rooms.models import Post
from tests.conftest import bearer
from tests.live_support import login_client
from tests.meeting_support import app_config, setup_meeting  # noqa: F401  (app_config: fixture)
from tests.test_search_support import search_ids, settle


def seg(account: int, key: str, text: str, ago: float = 5.0) -> dict:
    now = time.time()
    return {"account": account, "key": key, "text": text, "start": now - ago, "end": now - ago + 2}


def send(app, meeting_id: int, *segments, secret: str | None = None):
    body = report.sign(secret or app.config["SECRET_KEY"], {"op": "captions", "meeting": meeting_id,
                                                            "segments": list(segments)})
    return app.test_client().post("/media/captions", data=body, content_type="application/json")


def test_worker_reports_are_saved_once_and_forged_ones_refused(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    r = send(app, meeting.id, seg(ann.id, "run-a-1", "stop and search figures"), seg(bob.id, "run-b-1", "thank you"))
    assert r.status_code == 200 and r.json == {"ok": True, "saved": 2}
    assert send(app, meeting.id, seg(ann.id, "run-a-1", "stop and search figures")).json["saved"] == 0  # replayed
    assert send(app, meeting.id, seg(ann.id, "run-a-2", "x"), secret="not the key").status_code == 403
    r = app.test_client().post("/media/captions", data=b'{"m": "e30=", "s": "00"}', content_type="application/json")
    assert r.status_code == 403
    assert app.test_client().post("/media/captions", data=b"nonsense").status_code == 403
    assert send(app, 999_999, seg(ann.id, "run-z-1", "nobody")).json["saved"] == 0  # a meeting that is gone
    assert db.session.scalar(select(func.count(TranscriptSegment.id))) == 2


def test_webvtt_for_readers_only(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    send(app, meeting.id, seg(ann.id, "k1", "the advisory group meets monthly", ago=8),
         seg(bob.id, "k2", "use of force <data> & more", ago=4))
    r = app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript", headers=bearer(make.token(bob)))
    assert r.status_code == 200 and r.mimetype == "text/vtt" and r.headers["Cache-Control"] == "no-store"
    text = r.get_data(as_text=True)
    assert text.startswith("WEBVTT\n")
    assert "<v Ann Able>the advisory group meets monthly" in text
    assert "<v Bob Baker>use of force &lt;data&gt; &amp; more" in text
    assert text.index("Ann Able") < text.index("Bob Baker") and " --> " in text
    outsider = make.user(name="Olly Outsider")
    for user in (outsider,):
        assert app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript",
                                     headers=bearer(make.token(user))).status_code == 404
        assert login_client(app, user).get(f"/meetings/{meeting.id}/transcript").status_code == 404
        assert login_client(app, user).get(f"/meetings/{meeting.id}/transcript.vtt").status_code == 404
    assert app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript").status_code == 401
    page = login_client(app, bob).get(f"/meetings/{meeting.id}/transcript")
    assert page.status_code == 200 and b"Captions are automatic and may contain mistakes" in page.data
    assert b"Save correction" not in page.data  # not a chair


def test_non_attributed_room_shows_pseudonyms_and_audits_names(app, make):
    chair, ann, bob = make.user(name="Chair Person"), make.user(name="Ann Able"), make.user(name="Bob Baker")
    room = make.room(chair, members=[ann, bob])
    trust_settings.set_non_attributed(chair, room.id, True)
    meeting = schedule.schedule_meeting(chair, room.id, title="IAG plenary", starts_at="2030-01-10T10:00:00Z")
    send(app, meeting.id, seg(ann.id, "p1", "I would like to raise a concern"))
    text = app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript",
                                 headers=bearer(make.token(bob))).get_data(as_text=True)
    assert "Ann Able" not in text and "<v Participant " in text
    segs = app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript/segments",
                                 headers=bearer(make.token(bob))).json["segments"]
    assert segs[0]["speaker"].get("pseudonym") is True and "id" not in segs[0]["speaker"]
    before = db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "meeting.names_shown"))
    text = app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript",
                                 headers=bearer(make.token(chair))).get_data(as_text=True)
    assert "<v Ann Able>" in text    # the room's owner sees names, and that read is audited
    db.session.rollback()
    after = db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "meeting.names_shown"))
    assert after == before + 1


def test_chair_corrects_audited_and_search_finds_the_corrected_text(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    send(app, meeting.id, seg(ann.id, "c1", "the custard suite was inspected"))
    sid = db.session.scalar(select(TranscriptSegment.id))
    # a member may not correct; a bad correction changes nothing
    r = app.test_client().patch(f"/api/v1/transcript-segments/{sid}", json={"text": "x"},
                                headers=bearer(make.token(bob)))
    assert r.status_code == 403
    r = app.test_client().patch(f"/api/v1/transcript-segments/{sid}", json={"text": "y" * 3000},
                                headers=bearer(make.token(chair)))
    assert r.status_code == 422 and "2000" in r.get_data(as_text=True)
    assert app.test_client().patch(f"/api/v1/transcript-segments/{sid}", json={"text": "x"},
                                   headers=bearer(make.token(make.user()))).status_code == 404
    # the chair corrects on the page
    c = login_client(app, chair)
    page = c.get(f"/meetings/{meeting.id}/transcript")
    assert b"Save correction" in page.data
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post(f"/meetings/{meeting.id}/transcript/{sid}", data={"csrf_token": token,
                                                                 "text": "the custody suite was inspected"})
    assert r.status_code == 302
    db.session.rollback()
    row = db.session.get(TranscriptSegment, sid)
    assert (row.text, row.corrected_text, row.corrected_by_id) == ("the custard suite was inspected",
                                                                  "the custody suite was inspected", chair.id)
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "meeting.transcript_corrected")) == 1
    vtt = app.test_client().get(f"/api/v1/meetings/{meeting.id}/transcript",
                                headers=bearer(make.token(bob))).get_data(as_text=True)
    assert "custody suite" in vtt and "custard" not in vtt
    # search finds the corrected words through the meeting's minutes (readers of the room only)
    thread = minutes.end_with_minutes(chair, meeting.id)
    settle(app)
    opening = db.session.scalar(select(Post.id).where(Post.thread_id == thread.id, Post.parent_id.is_(None)))
    assert search_ids(bob, "custody") == [opening]
    assert search_ids(bob, "custard") == []
    assert search_ids(make.user(), "custody") == []
    # a correction made after the minutes were posted reaches search too
    r = app.test_client().patch(f"/api/v1/transcript-segments/{sid}", json={"text": "the holding cells were inspected"},
                                headers=bearer(make.token(chair)))
    assert r.status_code == 200 and r.json["text"] == "the holding cells were inspected" and r.json["corrected"]
    settle(app)
    assert search_ids(bob, "holding") and search_ids(bob, "custody") == []


def test_retention_removes_old_transcripts_and_speakers_export_theirs(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    send(app, meeting.id, seg(ann.id, "e1", "victims should be kept informed"), seg(bob.id, "e2", "agreed"))
    docs, _ = account_data.export_data(ann)
    assert [s["heard"] for s in docs["transcript.json"]] == ["victims should be kept informed"]
    assert docs["transcript.json"][0]["meeting_id"] == meeting.id
    retention.set_retention(chair, room.id, 1)
    retention.purge_room(room, now=utcnow() + timedelta(days=3))
    db.session.rollback()
    assert db.session.scalar(select(func.count(TranscriptSegment.id))) == 0
    assert account_data.export_data(ann)[0]["transcript.json"] == []


def test_the_captions_toggle_is_remembered_per_account(app, make):
    chair, ann, bob, room, meeting = setup_meeting(make)
    c = login_client(app, ann)
    page = c.get(f"/meetings/{meeting.id}")
    assert b'data-captions="off"' in page.data
    token = page.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    r = c.post("/account/captions", json={"captions": True}, headers={"X-CSRFToken": token})
    assert r.status_code == 200
    assert b'data-captions="on"' in c.get(f"/meetings/{meeting.id}").data
    assert c.post("/account/captions", json={"captions": "yes"}, headers={"X-CSRFToken": token}).status_code == 400
    assert b'data-captions="on"' in login_client(app, ann).get(f"/meetings/{meeting.id}").data
    assert json.loads(c.post("/account/captions", json={"captions": False},
                             headers={"X-CSRFToken": token}).data) == {"captions": False}
