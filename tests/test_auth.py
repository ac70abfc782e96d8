"""Accounts: first-run setup, sign-in, rate limits, remember-me, passwords,
resets, invitations, deactivation, personal access tokens and CSRF."""
from __future__ import annotations

import re
from datetime import timedelta

import lxml.html
import pytest
from sqlalchemy import func, select

from auth import services
from auth.models import ApiToken, Invitation, PasswordReset, User
from collab.db import utcnow
from collab.errors import Invalid
from collab.extensions import db
from collab.tokens import digest
from rooms import policy
from rooms.models import Membership
from tests.conftest import PASSWORD, bearer

NEW_PASSWORD = "another quite long passphrase"


def count(model) -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(model))


def fresh(model, id_):
    db.session.remove()
    return db.session.get(model, id_)


def page(resp):
    return lxml.html.fromstring(resp.get_data(as_text=True))


def signed_in(client) -> bool:
    """True when the client's session is accepted (a page needing sign-in answers 200)."""
    r = client.get("/account")
    if r.status_code == 200:
        return True
    assert r.status_code == 302 and "/login" in r.headers["Location"], r.status_code
    return False


def link_in(resp, input_id: str) -> str:
    values = page(resp).xpath(f'//input[@id="{input_id}"]/@value')
    assert values, resp.get_data(as_text=True)[:2000]
    return values[0]


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


# -- first-run setup ------------------------------------------------------------

def test_fresh_install_sends_first_visitor_to_setup(client):
    assert count(User) == 0
    r = client.get("/login")
    assert r.status_code == 302 and r.headers["Location"].endswith("/setup")
    r = client.get("/setup")
    assert r.status_code == 200
    doc = page(r)
    for name in ("name", "email", "password"):
        assert doc.xpath(f'//input[@name="{name}"]'), name

    r = client.post("/setup", data={"name": "Ada Admin", "email": "Ada@Example.org", "password": PASSWORD,
                                    "organisation": "Hampshire Constabulary"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/rooms")
    assert signed_in(client)
    admin = db.session.scalar(select(User))
    assert admin.email == "ada@example.org" and admin.role == "admin"
    assert admin.organisation.name == "Hampshire Constabulary"

    # Afterwards the setup page is gone for everybody, and cannot make a second administrator.
    other = client.application.test_client()
    r = other.get("/setup")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    r = other.post("/setup", data={"name": "Mallory", "email": "mallory@example.org", "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert count(User) == 1
    assert other.get("/login").status_code == 200


def test_setup_refuses_bad_input_and_creates_nothing(client):
    r = client.post("/setup", data={"name": "Ada", "email": "ada@example.org", "password": "short"})
    assert r.status_code == 200
    assert "at least 12 characters" in r.get_data(as_text=True)
    r = client.post("/setup", data={"name": "Ada", "email": "not an address", "password": PASSWORD})
    assert "Email must be an address" in r.get_data(as_text=True)
    assert count(User) == 0
    assert client.get("/setup").status_code == 200


# -- sign-in ---------------------------------------------------------------------

def test_login_page_has_labelled_fields_and_sign_in_button(client, make):
    make.user()
    r = client.get("/login")
    assert r.status_code == 200
    doc = page(r)
    labels = {lab.text_content().strip(): lab.get("for") for lab in doc.xpath("//label")}
    for text, type_ in (("Email", "email"), ("Password", "password")):
        assert text in labels, labels
        inputs = doc.xpath(f'//input[@id="{labels[text]}"]')
        assert inputs and inputs[0].get("type") == type_
    buttons = [b.text_content().strip() for b in doc.xpath('//form[@method="post"]//button')]
    assert "Sign in" in buttons


def test_login_and_wrong_password(client, make, auth):
    user = make.user()
    r = auth.login(user, "a wrong but long password")
    assert r.status_code == 401
    assert "do not match an active account" in r.get_data(as_text=True)
    assert not signed_in(client)
    r = auth.login(user.email.upper())  # e-mail is case-insensitive
    assert r.status_code == 302
    assert signed_in(client)


def test_login_next_only_goes_to_local_pages(client, make):
    user = make.user()
    r = client.post("/login?next=https://evil.example/x", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/rooms")
    client.post("/logout")
    r = client.post("/login?next=/account", data={"email": user.email, "password": PASSWORD})
    assert r.headers["Location"].endswith("/account")


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT": "3 per minute"}])
def test_login_rate_limited_per_account(app, make):
    user = make.user()
    for i in range(3):
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = f"10.0.0.{i + 1}"
        r = c.post("/login", data={"email": user.email, "password": f"wrong password number {i}"})
        assert r.status_code == 401
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.0.0.99"
    r = c.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 429
    assert "Too many attempts" in r.get_data(as_text=True)
    assert not signed_in(c)
    # Another account from that same fresh address is not affected.
    other = make.user()
    r = c.post("/login", data={"email": other.email, "password": PASSWORD})
    assert r.status_code == 302


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT": "3 per minute"}])
def test_login_rate_limited_per_address(app, make):
    users = [make.user() for _ in range(4)]
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    for u in users[:3]:
        assert c.post("/login", data={"email": u.email, "password": "not the right password"}).status_code == 401
    r = c.post("/login", data={"email": users[3].email, "password": PASSWORD})
    assert r.status_code == 429
    assert "Too many attempts" in r.get_data(as_text=True)
    # The sign-in page itself still shows, and another address may still sign in.
    assert c.get("/login").status_code == 200
    c2 = app.test_client()
    c2.environ_base["REMOTE_ADDR"] = "192.0.2.8"
    assert c2.post("/login", data={"email": users[3].email, "password": PASSWORD}).status_code == 302


def test_remember_me(app, client, make):
    user = make.user()
    r = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 302
    assert client.get_cookie("remember_token") is None

    c = app.test_client()
    r = c.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "on"})
    assert r.status_code == 302
    cookie = c.get_cookie("remember_token")
    assert cookie is not None and cookie.expires is not None
    assert cookie.http_only
    # A new browser holding only the remember-me cookie is signed in.
    c2 = app.test_client()
    c2.set_cookie("remember_token", cookie.value, domain=cookie.domain or "localhost")
    assert signed_in(c2)


def test_logout(app, client, make, auth):
    user = make.user()
    auth.login(user)
    assert client.get("/logout").status_code == 405  # a state change needs POST
    assert signed_in(client)
    r = auth.logout()
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert not signed_in(client)

    c = app.test_client()
    c.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "on"})
    c.post("/logout")
    assert c.get_cookie("remember_token") is None or c.get_cookie("remember_token").value == ""
    assert not signed_in(c)


# -- passwords ---------------------------------------------------------------------

def test_password_rules_and_argon2id(app, make):
    from auth import passwords, services

    with pytest.raises(Invalid, match="at least 12"):
        services.create_user(email="a@example.org", name="A", password="elevenchars")
    with pytest.raises(Invalid, match="too common"):
        services.create_user(email="a@example.org", name="A", password="iloveyou1234")
    with pytest.raises(Invalid, match="too common"):
        services.create_user(email="a@example.org", name="A", password="ILoveYou1234")  # case-insensitive
    with pytest.raises(Invalid):
        services.create_user(email="a@example.org", name="A", password=12345678901234)
    assert count(User) == 0

    user = services.create_user(email="a@example.org", name="A", password="twelve chars")  # exactly 12
    assert len("twelve chars") == 12
    stored = fresh(User, user.id).password_hash
    assert stored.startswith("$argon2id$")
    assert "twelve chars" not in stored
    assert passwords.verify_password(stored, "twelve chars")[0]
    assert not passwords.verify_password(stored, "twelve chars!")[0]


def test_change_password_ends_other_sessions(app, make):
    user = make.user()
    here, there = app.test_client(), app.test_client()
    for c in (here, there):
        assert c.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    remembered = app.test_client()
    remembered.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "on"})
    remember_cookie = remembered.get_cookie("remember_token").value

    # Wrong current password, mismatched confirmation, weak new password: nothing changes.
    before = fresh(User, user.id).password_hash
    for data, message in [
        ({"current_password": "not my password!", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
         "current password is not correct"),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"},
         "do not match"),
        ({"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"}, "at least 12"),
    ]:
        r = here.post("/account", data={"action": "password", **data})
        assert r.status_code == 200 and message in r.get_data(as_text=True)
    assert fresh(User, user.id).password_hash == before
    assert signed_in(there)

    r = here.post("/account", data={"action": "password", "current_password": PASSWORD,
                                     "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert r.status_code == 302
    assert signed_in(here)
    assert not signed_in(there)
    c = app.test_client()
    c.set_cookie("remember_token", remember_cookie, domain="localhost")
    assert not signed_in(c)
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 401
    assert app.test_client().post("/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code == 302


# -- administrator-issued reset links --------------------------------------------------

def test_admin_reset_link_single_use(app, client, make, auth):
    admin = make.user(admin=True)
    target = make.user()
    target_client = app.test_client()
    target_client.post("/login", data={"email": target.email, "password": PASSWORD})
    auth.login(admin)
    r = client.post("/admin/people", data={"action": "reset", "user_id": str(target.id)})
    assert r.status_code == 200
    link = path_of(link_in(r, "reset-link"))
    assert link.startswith("/reset/")
    reset = db.session.scalar(select(PasswordReset).where(PasswordReset.user_id == target.id))
    assert reset.token_hash == digest(link.rsplit("/", 1)[1])  # only the hash is stored

    anon = app.test_client()
    assert anon.get(link).status_code == 200
    r = anon.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"})
    assert "do not match" in r.get_data(as_text=True)
    r = anon.post(link, data={"password": "short", "confirm": "short"})
    assert "at least 12" in r.get_data(as_text=True)
    r = anon.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert not signed_in(target_client)  # the reset ends the account's sessions
    assert app.test_client().post("/login", data={"email": target.email, "password": NEW_PASSWORD}).status_code == 302

    # Used once: refused afterwards, by GET and POST.
    r = anon.get(link)
    assert r.status_code == 422 and "already used" in r.get_data(as_text=True)
    r = anon.post(link, data={"password": "yet another passphrase", "confirm": "yet another passphrase"})
    assert r.status_code == 422
    assert app.test_client().post("/login", data={"email": target.email,
                                                  "password": "yet another passphrase"}).status_code == 401
    assert app.test_client().get("/reset/not-a-real-token").status_code == 404


def test_reset_link_expires(app, client, make, auth):
    from auth import services

    admin = make.user(admin=True)
    target = make.user()
    link = path_of(services.issue_password_reset(admin, target.id))
    reset = db.session.scalar(select(PasswordReset).where(PasswordReset.user_id == target.id))
    assert timedelta(hours=1) < reset.expires_at - utcnow() <= timedelta(days=7)
    db.begin_write()
    db.session.get(PasswordReset, reset.id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    r = client.get(link)
    assert r.status_code == 422 and "expired" in r.get_data(as_text=True)
    r = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 422
    assert app.test_client().post("/login", data={"email": target.email, "password": PASSWORD}).status_code == 302


def test_only_admins_issue_resets(app, client, make, auth):
    org, other_org = make.org(), make.org()
    org_admin = make.user(org=org, org_admin=True)
    colleague = make.user(org=org)
    outsider = make.user(org=other_org)
    member = make.user(org=org)
    auth.login(member)
    assert client.get("/admin/people").status_code == 404
    assert client.post("/admin/people", data={"action": "reset", "user_id": str(colleague.id)}).status_code == 404
    auth.logout()
    auth.login(org_admin)
    r = client.post("/admin/people", data={"action": "reset", "user_id": str(outsider.id)})
    assert "not found" in r.get_data(as_text=True)
    assert count(PasswordReset) == 0
    r = client.post("/admin/people", data={"action": "reset", "user_id": str(colleague.id)})
    assert link_in(r, "reset-link")
    assert count(PasswordReset) == 1


# -- invitations ---------------------------------------------------------------------------

def test_invitation_flow(app, client, make, auth):
    org = make.org()
    admin = make.user(admin=True)
    auth.login(admin)
    r = client.post("/admin/people", data={"action": "invite", "email": "", "kind": "iag", "role": "member",
                                           "organisation_id": str(org.id), "note": "Welcome"})
    assert r.status_code == 200
    link = path_of(link_in(r, "invite-link"))
    assert link.startswith("/invite/")
    inv = db.session.scalar(select(Invitation))
    assert inv.token_hash == digest(link.rsplit("/", 1)[1])
    assert timedelta(days=7) - timedelta(minutes=5) < inv.expires_at - utcnow() <= timedelta(days=7)

    guest = app.test_client()
    r = guest.get(link)
    assert r.status_code == 200
    doc = page(r)
    assert doc.xpath('//input[@name="name"]') and doc.xpath('//input[@name="password"]')
    # A weak password is refused and leaves the invitation usable.
    r = guest.post(link, data={"name": "Ivy", "email": "ivy@example.org", "password": "password"})
    assert "at least 12" in r.get_data(as_text=True)
    assert count(User) == 1
    r = guest.post(link, data={"name": "Ivy Volunteer", "email": "ivy@example.org", "password": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/rooms")
    assert signed_in(guest)
    ivy = db.session.scalar(select(User).where(User.email == "ivy@example.org"))
    assert (ivy.name, ivy.kind, ivy.organisation_id, ivy.role) == ("Ivy Volunteer", "iag", org.id, "member")
    assert ivy.password_hash.startswith("$argon2id$")

    # Single use: the link is refused afterwards, and makes no second account.
    again = app.test_client()
    r = again.get(link)
    assert r.status_code == 422 and "already been used" in r.get_data(as_text=True)
    r = again.post(link, data={"name": "Eve", "email": "eve@example.org", "password": NEW_PASSWORD})
    assert r.status_code == 422
    assert count(User) == 2
    assert app.test_client().get("/invite/made-up-token").status_code == 404


def test_invitation_for_an_address_uses_that_address(app, client, make, auth):
    from auth import services

    admin = make.user(admin=True)
    _, link = services.create_invitation(admin, email="Named@Example.org")
    r = app.test_client().post(path_of(link), data={"name": "Named", "email": "other@example.org",
                                                    "password": NEW_PASSWORD})
    assert r.status_code == 302
    assert db.session.scalar(select(User.email).where(User.name == "Named")) == "named@example.org"


@pytest.mark.parametrize("app_config", [{"INVITE_DAYS": 3}])
def test_invitation_expires(app, client, make):
    from auth import services

    admin = make.user(admin=True)
    inv, link = services.create_invitation(admin)
    inv = fresh(Invitation, inv.id)
    assert timedelta(days=3) - timedelta(minutes=5) < inv.expires_at - utcnow() <= timedelta(days=3)
    db.begin_write()
    db.session.get(Invitation, inv.id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    r = client.get(path_of(link))
    assert r.status_code == 422 and "expired" in r.get_data(as_text=True)
    r = client.post(path_of(link), data={"name": "Late", "email": "late@example.org", "password": NEW_PASSWORD})
    assert r.status_code == 422
    assert count(User) == 1


def test_org_admins_invite_only_into_their_org(app, client, make, auth):
    org, other = make.org(), make.org()
    org_admin = make.user(org=org, org_admin=True)
    auth.login(org_admin)
    for org_field in (str(other.id), ""):
        r = client.post("/admin/people", data={"action": "invite", "kind": "staff", "role": "member",
                                               "organisation_id": org_field})
        assert "only into your own organisation" in r.get_data(as_text=True)
    r = client.post("/admin/people", data={"action": "invite", "kind": "staff", "role": "admin",
                                           "organisation_id": str(org.id)})
    assert "Only administrators can invite administrators" in r.get_data(as_text=True)
    assert count(Invitation) == 0
    r = client.post("/admin/people", data={"action": "invite", "kind": "staff", "role": "member",
                                           "organisation_id": str(org.id)})
    link = path_of(link_in(r, "invite-link"))
    app.test_client().post(link, data={"name": "New Colleague", "email": "nc@example.org", "password": NEW_PASSWORD})
    assert db.session.scalar(select(User.organisation_id).where(User.email == "nc@example.org")) == org.id

    # A plain member cannot invite at all.
    auth.logout()
    auth.login(make.user(org=org))
    assert client.post("/admin/people", data={"action": "invite", "organisation_id": str(org.id)}).status_code == 404
    assert count(Invitation) == 1


def test_no_open_sign_up(app, client, make):
    make.user(admin=True)
    rules = [r.rule for r in app.url_map.iter_rules()]
    assert not [r for r in rules if re.search(r"sign.?up|register|join$", r) and not r.startswith("/rooms/")]
    for url in ("/signup", "/register", "/accounts/new"):
        assert client.post(url, data={"email": "x@example.org", "password": NEW_PASSWORD}).status_code in (404, 405)
    r = client.get("/login")
    assert "no open sign-up" in r.get_data(as_text=True)
    assert count(User) == 1


# -- deactivation ---------------------------------------------------------------------------

def test_deactivation_ends_sessions_at_once(app, client, make, auth):
    admin = make.user(admin=True)
    user = make.user()
    token = make.token(user)
    theirs = app.test_client()
    theirs.post("/login", data={"email": user.email, "password": PASSWORD})
    remembered = app.test_client()
    remembered.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "on"})
    remember_cookie = remembered.get_cookie("remember_token").value
    assert signed_in(theirs)
    assert app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 200

    auth.login(admin)
    r = client.post("/admin/people", data={"action": "deactivate", "user_id": str(user.id)})
    assert r.status_code == 302
    assert not fresh(User, user.id).active

    r = theirs.get("/rooms")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    c = app.test_client()
    c.set_cookie("remember_token", remember_cookie, domain="localhost")
    assert not signed_in(c)
    assert app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 401

    client.post("/admin/people", data={"action": "activate", "user_id": str(user.id)})
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302


def test_org_admin_cannot_deactivate_outside_org_or_admins(app, client, make, auth):
    org, other = make.org(), make.org()
    org_admin = make.user(org=org, org_admin=True)
    outsider = make.user(org=other)
    site_admin = make.user(admin=True, org=org)
    auth.login(org_admin)
    for target in (outsider, site_admin, org_admin):
        r = client.post("/admin/people", data={"action": "deactivate", "user_id": str(target.id)})
        assert "not found" in r.get_data(as_text=True)
        assert fresh(User, target.id).active


# -- personal access tokens ---------------------------------------------------------------

def test_personal_access_tokens(app, client, make, auth):
    user = make.user()
    auth.login(user)
    r = client.post("/account", data={"action": "token", "token_name": "nightly export job"})
    assert r.status_code == 200
    raw = link_in(r, "new-token")
    assert raw.startswith("collab_")
    row = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert row.name == "nightly export job"
    assert row.token_hash == digest(raw) and raw not in (row.token_hash, row.prefix)
    api = app.test_client()
    r = api.get("/api/v1/me", headers=bearer(raw))
    assert r.status_code == 200 and r.json["id"] == user.id
    # Shown once only.
    assert raw not in client.get("/account").get_data(as_text=True)
    # Bad name: nothing created.
    r = client.post("/account", data={"action": "token", "token_name": ""})
    assert "Token name is required" in r.get_data(as_text=True)
    assert count(ApiToken) == 1

    # Somebody else cannot revoke it.
    other = make.user()
    oc = app.test_client()
    oc.post("/login", data={"email": other.email, "password": PASSWORD})
    r = oc.post("/account", data={"action": "revoke", "token_id": str(row.id)})
    assert r.status_code == 404
    assert api.get("/api/v1/me", headers=bearer(raw)).status_code == 200

    r = client.post("/account", data={"action": "revoke", "token_id": str(row.id)})
    assert r.status_code == 302
    r = api.get("/api/v1/me", headers=bearer(raw))
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    assert "nightly export job" not in client.get("/account").get_data(as_text=True)


def test_api_refuses_bad_tokens(app, make):
    user = make.user()
    raw = make.token(user)
    c = app.test_client()
    for headers in ({}, {"Authorization": raw}, {"Authorization": f"Basic {raw}"}, bearer(raw[:-1] + "x"),
                    bearer("collab_" + "a" * 500), bearer("")):
        r = c.get("/api/v1/me", headers=headers)
        assert r.status_code == 401, headers
        assert r.json["error"]["code"] == "unauthorized"
    assert c.get("/api/v1/me", headers={"Authorization": f"bearer {raw}"}).status_code == 200
    # A signed-in browser session is not enough for the API.
    c.post("/login", data={"email": user.email, "password": PASSWORD})
    assert c.get("/api/v1/me").status_code == 401


# -- CSRF ---------------------------------------------------------------------------------------

# POSTs made by our own processes, not by browsers: exempt from CSRF because they carry no cookie and are
# authenticated by an HMAC signature of their body (the media worker's captions report, media/captions/report.py).
SIGNED_MACHINE_POSTS = {"transcript.worker_report"}


def _post_routes(app):
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and not rule.rule.startswith("/api/") and rule.endpoint != "static":
            yield rule


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_csrf_on_every_state_changing_form(app, make):
    from tests.test_access import seed, url_for_rule

    ids = seed(make)
    owner = ids["owner"]
    c = app.test_client()
    # The sign-in form itself needs the token ...
    r = c.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert r.status_code == 400 and "came from another site" in r.get_data(as_text=True)
    assert not signed_in(c)
    # ... and works with it (the token comes from the form).
    token = page(c.get("/login")).xpath('//input[@name="csrf_token"]/@value')[0]
    r = c.post("/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    assert signed_in(c)

    checked = []
    before = {m.__tablename__: count(m) for m in (User, Invitation, ApiToken, PasswordReset)}
    from rooms.models import Post, Room, Thread

    before.update({m.__tablename__: count(m) for m in (Room, Thread, Post)})
    for rule in _post_routes(app):
        url = url_for_rule(rule, ids)
        r = c.post(url, data={"action": "token", "token_name": "x", "name": "x", "title": "x", "body": "x",
                              "email": "x@example.org", "password": NEW_PASSWORD})
        if rule.endpoint in SIGNED_MACHINE_POSTS:  # no session is used: without its signature it is refused
            assert r.status_code == 403, (rule.rule, r.status_code)
            continue
        assert r.status_code == 400, (rule.rule, r.status_code)
        assert "came from another site" in r.get_data(as_text=True), rule.rule
        checked.append(rule.rule)
    assert len(checked) >= 15, checked
    assert signed_in(c)  # logout without a token did not sign out
    after = {m.__tablename__: count(m) for m in (User, Invitation, ApiToken, PasswordReset, Room, Thread, Post)}
    assert after == before


def test_a_tokens_last_use_is_recorded_at_most_once_a_minute(app, make, auth, client):
    """A user must be able to see whether a leaked token is being used: its uses set "Last used", without a
    write on every request (once a minute per token). Socket.IO connections go through the same
    auth.services.user_for_token as the API's first request."""
    from sqlalchemy import update

    user = make.user()
    raw = make.token(user)
    tok_id = db.session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest(raw)))

    def last_used():
        db.session.remove()
        return db.session.get(ApiToken, tok_id).last_used_at

    assert last_used() is None
    api = app.test_client()
    assert api.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    first = last_used()
    assert first is not None and utcnow() - first < timedelta(minutes=1)
    for _ in range(5):  # within the minute: no further writes
        assert api.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    assert last_used() == first
    # the owner sees it on the account page
    auth.login(user)
    row = page(client.get("/account")).xpath('//tr[td[contains(@class, "mono")]]')[0].text_content()
    assert "never" not in row

    # a minute later (the mark moved back, as if time had passed; this process's memory of it forgotten),
    # the next use is noted again, though the API still trusts the token from its own memory
    db.begin_write()
    db.session.execute(update(ApiToken).where(ApiToken.id == tok_id).values(last_used_at=first - timedelta(minutes=5)))
    db.session.commit()
    app.extensions["collab_token_uses"].clear()
    assert api.get("/api/v1/me", headers=bearer(raw)).status_code == 200
    again = last_used()
    assert again > first - timedelta(minutes=5) and utcnow() - again < timedelta(minutes=1)


def test_an_invitation_naming_a_room_makes_its_new_account_a_member(app, make):
    """auth/ knows nothing of rooms: the membership is added by the hook rooms registers
    (auth.services.on_invitation_accepted, rooms/services.py), in the same transaction."""
    admin = make.user(admin=True)
    room = make.room(admin)
    _, link = services.create_invitation(admin, email="joiner@example.org", room_id=room.id)
    r = app.test_client().post(path_of(link), data={"name": "Joiner", "email": "joiner@example.org",
                                                    "password": NEW_PASSWORD})
    assert r.status_code == 302
    uid = db.session.scalar(select(User.id).where(User.email == "joiner@example.org"))
    m = db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.user_id == uid))
    assert m is not None and m.role == "member"
    assert policy.can_read_room(db.session.get(User, uid), room)
