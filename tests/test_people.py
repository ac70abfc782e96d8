"""People (issue 14): the people picker's look-up (who may be offered), adding or inviting someone to a room
in one step, bulk invitations, administering accounts after they joined, and the rooms list."""
from __future__ import annotations

import io
import json

import lxml.html
import pytest
from sqlalchemy import select

from auth import account_admin, services as accounts
from auth.audit import AuditEvent
from auth.models import Invitation, User
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from rooms import bulk_invite, people, room_list, services
from rooms.models import Membership, Room
from tests.conftest import PASSWORD
from tests.live_support import login_client


def names(result: dict) -> list[str]:
    return [p["name"] for p in result["people"]]


def audit_rows(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.fixture
def world(make):
    force, other_force = make.org("Hampshire"), make.org("Kent")
    w = {
        "owner": make.user(name="Olive Owner", org=force),
        "mod": make.user(name="Mo Moderator", org=force),
        "vol": make.user(name="Vera Volunteer", kind="iag", org=force),
        "colleague": make.user(name="Colin Colleague", org=force),          # staff, same force, in no room
        "stranger": make.user(name="Stella Stranger", org=other_force),     # another force, in no room
        "secret": make.user(name="Sam Secret", org=other_force),            # in a room the others cannot read
        "anon": make.user(name="Nina Nameless", kind="iag", org=other_force),  # only in a non-attributed room
        "admin": make.user(name="Ada Admin", admin=True),
        "org_admin": make.user(name="Ollie Orgadmin", org=force, org_admin=True),
    }
    w["room"] = make.room(w["owner"], name="IAG plenary", members=[w["vol"]], moderator=[w["mod"], w["org_admin"]])
    w["hidden_room"] = make.room(w["stranger"], name="Kent only", members=[w["secret"]])
    w["na_room"] = services.create_room(w["owner"], name="Frank talk", non_attributed=True)
    services.add_member(w["owner"], w["na_room"].id, user_id=w["anon"].id)
    services.add_member(w["owner"], w["na_room"].id, user_id=w["vol"].id)
    return w


# -- the look-up --------------------------------------------------------------------------------------

def test_lookup_offers_only_people_the_asker_may_see(world):
    w, room = world, world["room"]
    # choosing among the room's members (meeting chairs, invitees): by any word of the name
    assert names(people.lookup(w["vol"], room.id, "mo", "members")) == ["Mo Moderator"]
    assert names(people.lookup(w["vol"], room.id, "VOL", "members")) == ["Vera Volunteer"]
    assert names(people.lookup(w["vol"], room.id, "colin", "members")) == []      # not a member
    assert people.lookup(w["vol"], room.id, "", "members") == {"people": [], "hidden": False}
    # adding to a room: staff of the own force, members of readable rooms with names, never other rooms
    found = people.lookup(w["owner"], room.id, "s", "add")
    assert names(found) == []                                  # "Sam Secret", "Stella Stranger": not visible
    assert names(people.lookup(w["owner"], room.id, "col", "add")) == ["Colin Colleague"]
    by_name = {p["name"]: p for p in people.lookup(w["owner"], room.id, "v", "add")["people"]}
    assert by_name["Vera Volunteer"]["role"] == "member"       # marked: already in the room
    # a non-attributed room's members are not revealed through it to a member who is not a moderator...
    assert names(people.lookup(w["mod"], room.id, "nina", "add")) == []
    # ...but its owner (who sees names there) finds them
    assert names(people.lookup(w["owner"], room.id, "nina", "add")) == ["Nina Nameless"]
    # site administrators see every active account
    admin_room = services.create_room(w["admin"], name="Admin room")
    assert names(people.lookup(w["admin"], admin_room.id, "s", "add")) == ["Sam Secret", "Stella Stranger"]
    # an IAG volunteer is not shown the force's staff directory, only people they share named rooms with
    vol_room = services.create_room(w["owner"], name="Vol room")
    services.add_member(w["owner"], vol_room.id, user_id=w["vol"].id, role="moderator")
    assert names(people.lookup(w["vol"], vol_room.id, "colin", "add")) == []
    assert names(people.lookup(w["vol"], vol_room.id, "olive", "add")) == ["Olive Owner"]


def test_lookup_refusals_and_non_attributed_rooms(world):
    w = world
    with pytest.raises(NotFound):          # a room they cannot read: as if it did not exist
        people.lookup(w["owner"], w["hidden_room"].id, "sam", "members")
    with pytest.raises(Forbidden):         # a plain member may not add people
        people.lookup(w["vol"], w["room"].id, "col", "add")
    with pytest.raises(Invalid):
        people.lookup(w["owner"], w["room"].id, "col", "everyone")
    # non-attributed: a member who is not a moderator gets no names at all, even of fellow members
    assert people.lookup(w["vol"], w["na_room"].id, "nina", "members") == {"people": [], "hidden": True}
    assert names(people.lookup(w["owner"], w["na_room"].id, "nina", "members")) == ["Nina Nameless"]


def test_lookup_route_is_json_and_rate_limited(app, world):
    app.config["PEOPLE_LIMIT"] = "3 per minute"
    c = login_client(app, world["owner"])
    url = f"/rooms/{world['room'].id}/people.json?for=add&q=col"
    r = c.get(url)
    assert r.status_code == 200 and [p["name"] for p in r.get_json()["people"]] == ["Colin Colleague"]
    assert c.get(f"/rooms/{world['hidden_room'].id}/people.json?q=sam").status_code == 404
    assert c.get(url).status_code == 200
    r = c.get(url)
    assert r.status_code == 429


# -- one step from the room: add, or invite by e-mail ---------------------------------------------------

def test_add_or_invite_from_the_room(world):
    w, room = world, world["room"]
    # an existing account, chosen in the picker or by address
    how, m, _, _ = people.add_or_invite(w["mod"], room.id, user_id=w["colleague"].id, role="observer")
    assert how == "added" and m.role == "observer"
    how, m, _, _ = people.add_or_invite(w["mod"], room.id, email=w["stranger"].email.upper())
    assert how == "added" and m.user_id == w["stranger"].id
    # a new address: only those allowed to invite accounts (a room moderator who is not an admin: no)
    with pytest.raises(Invalid) as err:
        people.add_or_invite(w["mod"], room.id, email="new.person@example.org")
    assert err.value.field == "email" and db.session.scalar(select(Invitation)) is None
    with pytest.raises(Forbidden):     # a plain member may not even add
        people.add_or_invite(w["vol"], room.id, email="new.person@example.org")
    with pytest.raises(Invalid):
        people.add_or_invite(w["org_admin"], room.id, email="new.person@example.org", role="owner")
    how, _, inv, link = people.add_or_invite(w["org_admin"], room.id, email="new.person@example.org",
                                             role="moderator", kind="iag")
    assert how == "invited" and inv.room_id == room.id and inv.room_role == "moderator" and inv.kind == "iag"
    assert inv.organisation_id == w["org_admin"].organisation_id
    assert audit_rows("account.invited")[-1].room_id == room.id
    user = accounts.accept_invitation(link.rsplit("/", 1)[1], name="New Person", email="new.person@example.org",
                                      password=PASSWORD)
    m = db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.user_id == user.id))
    assert m is not None and m.role == "moderator"


def test_members_page_invites_in_one_step(app, world):
    c = login_client(app, world["org_admin"])
    r = c.post(f"/rooms/{world['room'].id}/members", data={"action": "add", "email": "fresh@example.org",
                                                            "role": "member", "kind": "iag"})
    doc = lxml.html.fromstring(r.data)
    assert r.status_code == 200 and "fresh@example.org is invited" in doc.get_element_by_id("invite-done").text_content()
    assert doc.get_element_by_id("invite-link").value.startswith("http://localhost/invite/")
    r = c.post(f"/rooms/{world['room'].id}/members", data={"action": "add", "email": "Colin", "role": "member"})
    assert r.status_code == 422 and b"Choose the person from the list" in r.data   # a name typed without choosing: said plainly
    r = c.post(f"/rooms/{world['room'].id}/members", data={"action": "add", "email": "Colin",
                                                            "user_id": str(world["colleague"].id), "role": "member"})
    assert r.status_code == 302


def test_the_invitation_page_names_the_room_it_gives(app, world):
    """The accept page says which room the new account joins, and as what; nothing for an invitation
    without a room, nor for one whose room has gone."""
    w, room = world, world["room"]
    _how, _m, _inv, link = people.add_or_invite(w["org_admin"], room.id, email="ivy@example.org",
                                                role="observer", kind="iag")
    guest = app.test_client()
    doc = lxml.html.fromstring(guest.get(link.replace("http://localhost", "")).data)
    said = doc.get_element_by_id("invite-rooms").text_content()
    assert said == "Your account will also be an observer of the room IAG plenary."
    _how, _m, _inv, link = people.add_or_invite(w["org_admin"], room.id, email="ivo@example.org", role="member")
    said = lxml.html.fromstring(guest.get(link.replace("http://localhost", "")).data).get_element_by_id("invite-rooms")
    assert said.text_content() == "Your account will also be a member of the room IAG plenary."
    # the names are escaped like any text
    services.update_room(w["owner"], room.id, name="<b>Plenary</b> & co", description="", visibility="private")
    html = guest.get(link.replace("http://localhost", "")).get_data(as_text=True)
    assert "the room <strong>&lt;b&gt;Plenary&lt;/b&gt; &amp; co</strong>." in html
    # an invitation to Collab only says nothing of rooms
    _inv, plain = accounts.create_invitation(w["admin"], email="plain@example.org", kind="iag")
    page = guest.get(plain.replace("http://localhost", "")).get_data(as_text=True)
    assert "Create your Collab account" in page and 'id="invite-rooms"' not in page
    # accepting makes the account the member the page said
    user = accounts.accept_invitation(link.rsplit("/", 1)[1], name="Ivo New", email="ivo@example.org",
                                      password=PASSWORD)
    assert services.my_roles(user) == {room.id: "member"}


# -- bulk invitations -----------------------------------------------------------------------------------

LIST = """email, name, kind
ann.able@example.org, Ann Able, IAG volunteer
"Bob Brown" <bob.brown@example.org>
not-an-address@, Broken
ann.able@example.org, Ann again
{existing}, Colin
{member}
just a name here
carl@example.org;guest
"""


def test_bulk_preview_says_what_will_happen_row_by_row(world):
    w = world
    accounts.create_invitation(w["admin"], email="pending@example.org", kind="iag")
    text = LIST.format(existing=w["colleague"].email, member=w["vol"].email) + "pending@example.org\n"
    plan = bulk_invite.preview(w["org_admin"], text, kind="iag")
    by_line = {r.line: r for r in plan.rows}
    assert [r.line for r in plan.rows] == [2, 3, 4, 5, 6, 7, 8, 9, 10]   # the header is skipped
    assert (by_line[2].email, by_line[2].name, by_line[2].kind, by_line[2].action) == (
        "ann.able@example.org", "Ann Able", "iag", "invite")
    assert (by_line[3].email, by_line[3].name) == ("bob.brown@example.org", "Bob Brown")
    assert by_line[4].action == "error" and "not a valid" in by_line[4].message
    assert by_line[5].action == "error" and "further up" in by_line[5].message
    assert by_line[6].action == "error" and "already has an account" in by_line[6].message   # no room chosen
    assert by_line[8].action == "error" and "No e-mail address" in by_line[8].message
    assert by_line[9].kind == "guest"
    assert by_line[10].action == "error" and "Already invited" in by_line[10].message
    # into a room: existing accounts are added, members already there are an error
    plan = bulk_invite.preview(w["org_admin"], text, kind="iag", room_id=w["room"].id, role="observer")
    by_line = {r.line: r for r in plan.rows}
    assert by_line[6].action == "add" and by_line[7].action == "error" and "already a member" in by_line[7].message
    assert db.session.scalar(select(Invitation).where(Invitation.email == "ann.able@example.org")) is None


def test_bulk_create_writes_every_valid_row_once_and_audits_it(world, smtp, app):
    w = world
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
    rows = "\n".join(f"volunteer{i}@example.org, Volunteer {i}" for i in range(80))
    text = rows + f"\nbad@\n{w['colleague'].email}\n"
    plan = bulk_invite.create(w["org_admin"], text, kind="iag", room_id=w["room"].id, role="member")
    assert len(plan.valid) == 81 and len(plan.errors) == 1
    invs = list(db.session.scalars(select(Invitation).where(Invitation.room_id == w["room"].id)))
    assert len(invs) == 80 and {i.kind for i in invs} == {"iag"} and {i.room_role for i in invs} == {"member"}
    assert {i.organisation_id for i in invs} == {w["org_admin"].organisation_id}
    assert len(audit_rows("account.invited")) == 80
    added = audit_rows("member.added")[-1]
    assert added.target_id == w["colleague"].id and json.loads(added.detail)["bulk"] is True
    assert len(smtp.wait(80)) == 80 and smtp.messages[0]["subject"] == "You are invited to Collab"
    # sent again: every row is now an error (invited, a member), nothing is written twice
    with pytest.raises(Invalid):
        bulk_invite.create(w["org_admin"], text, kind="iag", room_id=w["room"].id)
    assert len(list(db.session.scalars(select(Invitation)))) == 80


def test_bulk_invitation_limits_and_who_may(world, app):
    w = world
    with pytest.raises(Forbidden):
        bulk_invite.preview(w["mod"], "a@example.org")
    with pytest.raises(Invalid, match="at most"):
        bulk_invite.preview(w["admin"], "\n".join(f"p{i}@example.org" for i in range(bulk_invite.MAX_ROWS + 2)))
    with pytest.raises(Invalid, match="too long"):
        bulk_invite.preview(w["admin"], "x" * (bulk_invite.MAX_BYTES + 1))
    with pytest.raises(Invalid):
        bulk_invite.preview(w["admin"], "   ")
    with pytest.raises(NotFound):      # a room the inviter cannot read
        bulk_invite.preview(w["org_admin"], "a@example.org", room_id=w["hidden_room"].id)
    c = login_client(app, w["org_admin"])
    assert login_client(app, w["mod"]).get("/admin/people/bulk").status_code == 404
    csv_file = io.BytesIO("email,name\r\nzed@example.org,Zed Zee\r\n".encode("utf-8-sig"))
    r = c.post("/admin/people/bulk", data={"action": "preview", "kind": "iag", "room_id": str(w["room"].id),
                                           "role": "member", "file": (csv_file, "iag.csv")},
               content_type="multipart/form-data")
    doc = lxml.html.fromstring(r.data)
    assert r.status_code == 200 and "Zed Zee" in doc.get_element_by_id("bulk-preview").text_content()
    assert db.session.scalar(select(Invitation)) is None
    r = c.post("/admin/people/bulk", data={"action": "create", "people": "zed@example.org,Zed Zee", "kind": "iag",
                                           "room_id": str(w["room"].id), "role": "member"})
    assert r.status_code == 200 and b"bulk-done" in r.data
    assert db.session.scalar(select(Invitation.email)) == "zed@example.org"


# -- administering accounts --------------------------------------------------------------------------------

def test_accounts_table_search_and_filters(world, app):
    w = world
    f = account_admin.AccountFilter
    got = lambda actor, **kw: [u.name for u in account_admin.search_accounts(actor, f(**kw))[0]]  # noqa: E731
    assert got(w["admin"], q="vol") == ["Vera Volunteer"]
    assert got(w["admin"], q="example.org", kind="iag") == ["Nina Nameless", "Vera Volunteer"]
    assert got(w["admin"], role="admin") == ["Ada Admin"]
    assert got(w["admin"], q="100%_") == []                                  # wildcards are text
    assert "Sam Secret" not in got(w["org_admin"])                            # another organisation
    accounts.set_active(w["admin"], w["colleague"].id, False)
    assert got(w["admin"], status="deactivated") == ["Colin Colleague"]
    c = login_client(app, w["admin"])
    doc = lxml.html.fromstring(c.get("/admin/people?q=vera&kind=iag&organisation_id=zz&status=bogus").data)
    rows = doc.xpath("//table[caption='Accounts']/tbody/tr")
    assert len(rows) == 1 and "Vera Volunteer" in rows[0].text_content()


def test_changing_an_account_after_it_joined_is_audited_and_ends_its_sessions(world, app):
    w = world
    vol = w["vol"]
    c = login_client(app, vol)
    assert c.get("/rooms").status_code == 200
    kent = db.session.scalar(select(User.organisation_id).where(User.id == w["stranger"].id))
    account_admin.update_account(w["admin"], vol.id, kind="staff", organisation_id=str(kent),
                                 job_title="Sergeant", role="member")
    row = audit_rows("account.updated")[-1]
    assert row.actor_id == w["admin"].id and row.target_id == vol.id
    assert json.loads(row.detail) == {"kind": {"from": "iag", "to": "staff"},
                                      "organisation_id": {"from": w["owner"].organisation_id, "to": kent},
                                      "job_title": {"from": None, "to": "Sergeant"}}
    assert c.get("/rooms").status_code == 302        # signed out: they sign in again with the new rights
    # nothing changed: nothing written
    account_admin.update_account(w["admin"], vol.id, kind="staff", organisation_id=kent, job_title="Sergeant")
    assert len(audit_rows("account.updated")) == 1
    # an organisation administrator changes kind and job title in their organisation, nothing else
    col = w["colleague"]
    account_admin.update_account(w["org_admin"], col.id, kind="iag", organisation_id=col.organisation_id,
                                 job_title="Volunteer lead")
    with pytest.raises(Forbidden):
        account_admin.update_account(w["org_admin"], col.id, kind="iag", organisation_id=kent, job_title="")
    with pytest.raises(Forbidden):
        account_admin.update_account(w["org_admin"], col.id, kind="iag", organisation_id=col.organisation_id,
                                     job_title="", role="admin")
    with pytest.raises(NotFound):      # not in their organisation
        account_admin.update_account(w["org_admin"], w["secret"].id, kind="iag", organisation_id=None, job_title="")
    with pytest.raises(NotFound):      # never their own account
        account_admin.update_account(w["admin"], w["admin"].id, kind="iag", organisation_id=None, job_title="")
    with pytest.raises(Invalid):
        account_admin.update_account(w["admin"], col.id, kind="police", organisation_id=None, job_title="")
    r = login_client(app, w["admin"]).post(f"/admin/people/{col.id}/edit", data={
        "kind": "guest", "organisation_id": "", "job_title": "x" * 200, "role": "member"})
    assert r.status_code == 422 and db.session.get(User, col.id).kind == "iag"


# -- rooms: created non-attributed; the rooms list -----------------------------------------------------------

def test_room_created_non_attributed_and_the_rooms_list(world, make, app):
    w = world
    assert w["na_room"].non_attributed and json.loads(audit_rows("room.created")[-1].detail)["non_attributed"]
    c = login_client(app, w["owner"])
    r = c.post("/rooms/new", data={"name": "Chatham", "visibility": "private", "non_attributed": "on"})
    assert r.status_code == 302 and db.session.scalar(select(Room.non_attributed).where(Room.name == "Chatham"))
    with pytest.raises(Invalid):
        services.create_room(w["owner"], name="Bad", non_attributed="yes")
    # the list: last activity, member count, unread, sorted by activity
    old = make.room(w["owner"], name="Aardvark room")
    t = make.thread(w["mod"], w["room"], title="New today")
    make.reply(w["mod"], t, "and again")
    sections = room_list.rows(w["owner"])
    mine = [x.room.name for x in sections["mine"]]
    assert mine[0] == "IAG plenary" and mine.index("Aardvark room") > 0
    row = sections["mine"][0]
    assert (row.members, row.unread, row.role) == (4, 2, "owner")
    assert [x.room.name for x in room_list.rows(w["owner"], "name")["mine"]][0] == "Aardvark room"
    doc = lxml.html.fromstring(c.get("/rooms?sort=activity").data)
    first = doc.xpath("//section[@aria-labelledby='mine-h']//li")[0].text_content()
    assert "IAG plenary" in first and "4 members" in first and "2 new" in first and "Last activity" in first
    assert c.get("/rooms?sort=%00").status_code == 200
    assert old.id
