"""The audit log for administrators: /admin/audit with filters and pages, and
a CSV export that is itself audited and safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import lxml.html
import pytest

from auth import audit
from auth.audit import AuditEvent, query
from collab.extensions import db
from tests.live_support import login_client


@pytest.fixture
def app_config():
    return {"LOGIN_LIMIT": "1000 per minute"}


def rows(resp) -> list[list[str]]:
    doc = lxml.html.fromstring(resp.get_data(as_text=True))
    return [[re.sub(r"\s+", " ", td.text_content()).strip() for td in tr.xpath("./td")]
            for tr in doc.xpath('//table[contains(@class, "audit")]/tbody/tr')]


def add_event(action: str, at: datetime, **kw) -> None:
    """An entry written at a chosen time (the log only ever gains rows)."""
    db.begin_write()
    db.session.add(AuditEvent(action=action, at=at, detail="{}", **kw))
    db.session.commit()


def test_only_administrators_see_the_audit_log(app, make):
    admin = make.user(admin=True)
    org = make.org()
    org_admin = make.user(org=org, org_admin=True)
    member = make.user()
    assert app.test_client().get("/admin/audit").status_code == 302
    for who in (member, org_admin):
        c = login_client(app, who)
        assert c.get("/admin/audit").status_code == 404
        assert c.get("/admin/audit.csv").status_code == 404
    c = login_client(app, admin)
    r = c.get("/admin/audit")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    # Nothing on the page edits or deletes entries, and the address refuses writes.
    doc = lxml.html.fromstring(r.get_data(as_text=True))
    assert [f.get("action") for f in doc.xpath('//main//form[@method="post"]')] == []
    assert c.post("/admin/audit").status_code == 405
    assert c.get("/admin/people").status_code == 200
    assert b"/admin/audit" in c.get("/admin/people").data


def test_events_are_listed_newest_first_with_who_what_when_where(app, make):
    admin = make.user(admin=True)
    owner = make.user(email="owner.person@example.org")
    c = login_client(app, owner, REMOTE_ADDR="203.0.113.77")
    c.post("/rooms/new", data={"name": "Audited room", "description": "", "visibility": "private"})
    ac = login_client(app, admin)
    got = rows(ac.get("/admin/audit"))
    assert "Signed in" in got[0][1]  # the administrator's own sign-in is the newest
    created = next(r for r in got if "Created a room" in r[1])
    assert "owner.person@example.org" in created[2] and "203.0.113.77" in created[4]
    assert "room" in created[3] and "Audited room" in created[5]


def test_filters_by_action_actor_room_and_dates(app, make):
    admin = make.user(admin=True)
    alice = make.user(email="alice.filter@example.org")
    bob = make.user(email="bob.filter@example.org")
    room_a = make.room(alice, name="Room A")
    make.room(bob, name="Room B")
    add_event("room.archived", datetime(2024, 1, 15, 12, 0), room_id=room_a.id, actor_id=alice.id,
              actor_name=alice.email)
    add_event("room.archived", datetime(2024, 3, 1, 9, 30), room_id=room_a.id, actor_id=alice.id,
              actor_name=alice.email)
    ac = login_client(app, admin)

    def count(**args) -> int:
        r = ac.get("/admin/audit", query_string=args)
        assert r.status_code == 200
        return len(rows(r))

    assert count(action="room.created") == 2
    assert count(action="room.created", actor="alice.filter") == 1
    assert count(actor=str(bob.id)) == len([e for e in query(limit=1000) if e.actor_id == bob.id])
    assert count(room=str(room_a.id)) == len([e for e in query(limit=1000) if e.room_id == room_a.id])
    assert count(action="room.archived", since="2024-01-01", until="2024-01-31") == 1
    assert count(action="room.archived", until="2024-01-15") == 1  # the end date counts whole
    assert count(action="room.archived", since="2024-03-01") == 1
    assert count(action="room.archived", since="2024-03-02", until="2024-12-31") == 0
    # A percent sign or underscore in the actor filter is taken literally.
    assert count(actor="%") == 0 and count(actor="_") == 0

    r = ac.get("/admin/audit", query_string={"since": "31/01/2024"})
    assert r.status_code == 200 and "must be a date like" in r.get_data(as_text=True)
    r = ac.get("/admin/audit", query_string={"room": "abc"})
    assert "Room must be a room number" in r.get_data(as_text=True)
    r = ac.get("/admin/audit", query_string={"since": "2024-05-01", "until": "2024-04-01"})
    assert "before the start date" in r.get_data(as_text=True)
    doc = lxml.html.fromstring(ac.get("/admin/audit").get_data(as_text=True))
    options = doc.xpath('//select[@id="action"]/option/@value')
    assert "auth.mfa_enabled" in options and "retention.purged" in options and "audit.exported" in options


def test_pages_of_fifty(app, make):
    admin = make.user(admin=True)
    for i in range(60):
        audit.record_now("auth.login_failed", detail={"email": f"nobody{i}@example.org", "reason": "no active account"})
    ac = login_client(app, admin)
    first = ac.get("/admin/audit", query_string={"action": "auth.login_failed"})
    assert len(rows(first)) == 50
    assert "nobody59@example.org" in rows(first)[0][5]
    doc = lxml.html.fromstring(first.get_data(as_text=True))
    nxt = doc.xpath('//a[@rel="next"]/@href')[0]
    assert "action=auth.login_failed" in nxt and "page=2" in nxt
    second = rows(ac.get(nxt))
    assert len(second) == 10 and "nobody0@example.org" in second[-1][5]
    assert "Page 2 of 2" in ac.get(nxt).get_data(as_text=True)
    assert len(rows(ac.get("/admin/audit", query_string={"action": "auth.login_failed", "page": "99"}))) == 10


def parse_csv(resp) -> list[dict]:
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_csv_export_follows_the_filters_and_is_itself_audited(app, make):
    admin = make.user(admin=True)
    owner = make.user()
    make.room(owner, name="Exported room")
    ac = login_client(app, admin)
    r = ac.get("/admin/audit.csv", query_string={"action": "room.created"})
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    got = parse_csv(r)
    assert [row["action"] for row in got] == ["room.created"]
    assert got[0]["actor"] == owner.email and got[0]["description"] == "Created a room"
    assert "Exported room" in got[0]["detail"]
    exported = query(action="audit.exported")
    assert len(exported) == 1 and exported[0].actor_id == admin.id
    assert '"action": "room.created"' in exported[0].detail and '"rows": 1' in exported[0].detail
    # The next export contains the first one.
    assert any(row["action"] == "audit.exported" for row in parse_csv(ac.get("/admin/audit.csv")))


def test_csv_cells_cannot_become_spreadsheet_formulas(app, make):
    admin = make.user(admin=True)
    user = make.user()
    nasty = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)"]
    for ua in nasty:
        c = app.test_client()
        c.environ_base["HTTP_USER_AGENT"] = ua
        c.post("/login", data={"email": user.email, "password": "wrong password, long enough"})
    ac = login_client(app, admin)
    got = parse_csv(ac.get("/admin/audit.csv", query_string={"action": "auth.login_failed"}))
    agents = sorted(row["user_agent"] for row in got)
    assert agents == sorted("'" + ua for ua in nasty)
    for row in parse_csv(ac.get("/admin/audit.csv")):
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value
