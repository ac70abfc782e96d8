"""The audit log records who did what, and nobody can rewrite it."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from auth.audit import AuditEvent, query
from collab.extensions import db
from tests.conftest import PASSWORD


def actions() -> list[str]:
    return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_sign_in_success_and_failure_are_recorded_with_address(client, make):
    user = make.user()
    client.post("/login", data={"email": user.email, "password": "wrong password entirely"},
                environ_base={"REMOTE_ADDR": "203.0.113.9"})
    client.post("/login", data={"email": "nobody@example.org", "password": "whatever it is"})
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    failed = query(action="auth.login_failed")
    assert len(failed) == 2
    wrong = [e for e in failed if e.target_id == user.id][0]
    assert wrong.ip == "203.0.113.9" and "wrong password" in wrong.detail
    ok = query(action="auth.login")
    assert len(ok) == 1 and ok[0].actor_id == user.id


def test_membership_and_room_changes_are_recorded(make):
    from rooms import services

    owner, other = make.user(), make.user()
    room = make.room(owner, visibility="private")
    services.add_member(owner, room.id, user_id=other.id, role="member")
    services.add_member(owner, room.id, user_id=other.id, role="moderator")
    services.update_room(owner, room.id, name=room.name, description="", visibility="national")
    services.remove_member(owner, room.id, other.id)
    got = [a for a in actions() if a.startswith(("room.", "member."))]
    assert got == ["room.created", "member.added", "member.role_changed", "room.visibility_changed",
                   "member.removed"]
    changed = query(action="member.role_changed")[0]
    assert changed.actor_id == owner.id and changed.target_id == other.id and changed.room_id == room.id


def test_invitation_deactivation_and_reset_are_recorded(app, make):
    from auth import services

    admin, target = make.user(admin=True), make.user()
    with app.test_request_context():
        services.create_invitation(admin, email="new.person@example.org")
        services.issue_password_reset(admin, target.id)
    services.set_active(admin, target.id, False)
    assert {"account.invited", "auth.password_reset_issued", "account.deactivated"} <= set(actions())


def test_a_rolled_back_change_leaves_no_entry(make):
    from collab.errors import Invalid
    from rooms import services

    owner = make.user()
    room = make.room(owner)
    before = actions()
    with pytest.raises(Invalid):
        services.remove_member(owner, room.id, owner.id)  # the only owner
    assert actions() == before


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"])
def test_entries_cannot_be_changed_or_deleted(make, statement):
    make.user()
    make.room(make.user())
    count = len(actions())
    assert count > 0
    with pytest.raises(DBAPIError):
        with db.engine.begin() as conn:
            conn.execute(text(statement))
    db.session.rollback()
    assert len(actions()) == count
