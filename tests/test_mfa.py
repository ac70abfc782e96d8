"""Two-step sign-in with real TOTP codes (pyotp): enrolment with a QR code,
recovery codes shown once and stored hashed, a code accepted once only, the
sign-in flow's pending state, turning it off, and the administrators' policy."""
from __future__ import annotations

import base64
import re
import time

import lxml.html
import pyotp
import pytest
from sqlalchemy import select

from auth.account_models import RecoveryCode, SiteSetting, UserMfa
from auth.audit import query
from collab.extensions import db
from collab.tokens import digest
from collab import tasks
from tests.conftest import PASSWORD, bearer
from tests.live_support import sock, wait_for


class Phone:
    """An authenticator app: real codes, each for a later time-step than the last one used
    (the server accepts the current step and one either side)."""

    def __init__(self, secret: str):
        self.totp = pyotp.TOTP(secret)
        self.last = -1

    def code(self) -> str:
        while True:
            t = time.time()
            now = int(t // 30)
            # The previous step is still accepted; use it too unless the window is about to move on.
            steps = (now - 1, now, now + 1) if t - now * 30 < 20 else (now, now + 1)
            for step in steps:
                if step > self.last:
                    self.last = step
                    return self.totp.at(step * 30)
            time.sleep(max(0.05, (now + 1) * 30 - time.time() + 0.05))


@pytest.fixture(autouse=True)
def _settle(app):
    yield
    tasks.settle(app)


def page(resp):
    return lxml.html.fromstring(resp.get_data(as_text=True))


def signed_in(c) -> bool:
    return c.get("/account").status_code == 200


def login(app, user, **extra):
    c = app.test_client()
    r = c.post("/login", data={"email": user.email, "password": PASSWORD, **extra})
    return c, r


def enrol(client) -> tuple[Phone, list[str]]:
    """Set up two-step sign-in through the pages; returns the phone and the recovery codes."""
    r = client.get("/account/two-step")
    assert r.status_code == 200, r.status_code
    secret = page(r).xpath('//*[@id="secret"]')[0].text_content().replace(" ", "")
    phone = Phone(secret)
    r = client.post("/account/two-step", data={"code": phone.code(), "password": PASSWORD})
    assert r.status_code == 200, r.get_data(as_text=True)[:1000]
    codes = [li.text_content().strip() for li in page(r).xpath('//ol[@id="recovery-codes"]/li')]
    return phone, codes


def mfa_user(app, make, **kw):
    user = make.user(**kw)
    c, r = login(app, user)
    assert r.status_code == 302
    phone, codes = enrol(c)
    return user, c, phone, codes


def test_enrolment_page_shows_a_qr_code_as_a_data_uri_and_the_key(app, make):
    user = make.user(email="qr.person@example.org")
    c, _ = login(app, user)
    r = c.get("/account/two-step")
    doc = page(r)
    img = doc.xpath('//img[contains(@class, "qr")]')[0]
    src = img.get("src")
    assert src.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg
    assert img.get("alt")
    secret = doc.xpath('//*[@id="secret"]')[0].text_content().replace(" ", "")
    assert len(secret) == 32 and re.fullmatch(r"[A-Z2-7]+", secret)
    # No inline script or style (the CSP allows neither).
    html = r.get_data(as_text=True)
    assert "style=" not in html and "onclick" not in html.lower()
    assert all(s.get("src") for s in doc.xpath("//script"))
    # Reloading shows the same key until it is confirmed.
    again = page(c.get("/account/two-step")).xpath('//*[@id="secret"]')[0].text_content().replace(" ", "")
    assert again == secret
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Collab")
    from auth import mfa

    assert mfa.provisioning_uri(user, secret) == uri
    assert not mfa.enabled(user)


def test_confirming_turns_it_on_with_ten_single_use_recovery_codes_stored_hashed(app, make):
    user, c, phone, codes = mfa_user(app, make)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){5}", code) for code in codes)
    db.session.remove()
    row = db.session.get(UserMfa, user.id)
    assert row.enabled_at is not None
    assert phone.totp.secret not in (row.secret or "")  # encrypted at rest
    stored = {rc.code_hash for rc in db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id))}
    assert stored == {digest(code.replace("-", "")) for code in codes}
    assert not any(code in h for h in stored for code in codes)
    assert query(action="auth.mfa_enabled")[0].actor_id == user.id
    # The codes are shown once: the account page only counts them.
    r = c.get("/account")
    assert "10 unused recovery codes left" in r.get_data(as_text=True)
    assert not any(code in r.get_data(as_text=True) for code in codes)


def test_a_wrong_code_does_not_turn_it_on(app, make):
    user = make.user()
    c, _ = login(app, user)
    c.get("/account/two-step")
    r = c.post("/account/two-step", data={"code": "000000", "password": PASSWORD})
    assert r.status_code == 200 and "does not match" in r.get_data(as_text=True)
    from auth import mfa

    assert not mfa.enabled(user)


def test_setting_it_up_needs_the_password_and_moving_it_needs_the_old_phone(app, make):
    """A hijacked session can neither add a second factor nor move it to another phone."""
    from auth import mfa

    user = make.user()
    c, _ = login(app, user)
    secret = page(c.get("/account/two-step")).xpath('//*[@id="secret"]')[0].text_content().replace(" ", "")
    new_phone = Phone(secret)
    code = new_phone.code()
    r = c.post("/account/two-step", data={"code": code, "password": "not my password at all"})
    assert r.status_code == 200 and "password is not correct" in r.get_data(as_text=True)
    assert not mfa.enabled(user)
    assert c.post("/account/two-step", data={"code": code, "password": PASSWORD}).status_code == 200
    old_phone = new_phone

    doc = page(c.get("/account/two-step"))
    assert doc.xpath('//input[@id="current_code"]') and not doc.xpath('//input[@id="password"]')
    secret2 = doc.xpath('//*[@id="secret"]')[0].text_content().replace(" ", "")
    assert secret2 != secret
    newer = Phone(secret2)
    r = c.post("/account/two-step", data={"code": newer.code(), "current_code": "000000"})
    assert r.status_code == 200 and "old phone" in r.get_data(as_text=True)
    r = c.post("/account/two-step", data={"code": newer.code(), "current_code": old_phone.code()})
    assert r.status_code == 200 and page(r).xpath('//ol[@id="recovery-codes"]/li')
    assert '"replaced_device": true' in query(action="auth.mfa_enabled")[0].detail
    c2, _ = login(app, user)
    assert c2.post("/login/code", data={"code": newer.code()}).status_code == 302


def test_half_signed_in_cannot_set_up_a_new_phone(app, make):
    user, _c, _phone, _codes = mfa_user(app, make)
    c, r = login(app, user)
    assert r.headers["Location"].endswith("/login/code")
    r = c.get("/account/two-step")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/code")
    r = c.post("/account/two-step", data={"code": "123456"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/code")
    assert not signed_in(c)


def test_sign_in_asks_for_the_code_after_the_password(app, make):
    user, _c, phone, _codes = mfa_user(app, make)
    c, r = login(app, user, remember="on")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/code")
    assert not signed_in(c)  # pending: not signed in until the code passes
    assert c.get_cookie("remember_token") is None
    r = c.get("/login/code")
    assert r.status_code == 200
    assert page(r).xpath('//input[@id="code" and @autocomplete="one-time-code"]')
    r = c.post("/login/code", data={"code": "123456" if phone.totp.now() != "123456" else "654321"})
    assert r.status_code == 401 and "not correct" in r.get_data(as_text=True)
    assert not signed_in(c)
    r = c.post("/login/code", data={"code": phone.code()})
    assert r.status_code == 302
    assert signed_in(c)
    assert c.get_cookie("remember_token") is not None  # "keep me signed in" carried through the second step
    logins = query(action="auth.login")
    assert '"second_factor": "totp"' in logins[0].detail
    assert next(e.detail for e in query(action="auth.login_failed")).count("wrong second-step code") == 1


def test_a_code_is_accepted_once_only(app, make):
    user, _c, phone, _codes = mfa_user(app, make)
    code = phone.code()
    first, _ = login(app, user)
    assert first.post("/login/code", data={"code": code}).status_code == 302
    second, _ = login(app, user)
    r = second.post("/login/code", data={"code": code})  # the same time-step again: a replay
    assert r.status_code == 401
    assert not signed_in(second)
    assert second.post("/login/code", data={"code": phone.code()}).status_code == 302  # a later step is fine
    assert signed_in(second)


def test_the_enrolment_code_cannot_be_replayed_to_sign_in(app, make):
    user = make.user()
    c, _ = login(app, user)
    secret = page(c.get("/account/two-step")).xpath('//*[@id="secret"]')[0].text_content().replace(" ", "")
    code = pyotp.TOTP(secret).now()
    assert c.post("/account/two-step", data={"code": code, "password": PASSWORD}).status_code == 200
    other, _ = login(app, user)
    assert other.post("/login/code", data={"code": code}).status_code == 401


def test_recovery_codes_work_once_each(app, make):
    user, _c, _phone, codes = mfa_user(app, make)
    c, _ = login(app, user)
    r = c.post("/login/code", data={"code": codes[3].upper().replace("-", " ")})  # spacing and case do not matter
    assert r.status_code == 302 and signed_in(c)
    c2, _ = login(app, user)
    assert c2.post("/login/code", data={"code": codes[3]}).status_code == 401
    assert not signed_in(c2)
    used = query(action="auth.recovery_code_used")
    assert len(used) == 1 and '"remaining": 9' in used[0].detail
    assert "9 unused recovery codes left" in c.get("/account").get_data(as_text=True)


def test_pending_sign_in_expires_and_needs_the_password_first(app, make):
    user, _c, phone, _codes = mfa_user(app, make)
    fresh = app.test_client()
    assert fresh.get("/login/code").status_code == 302  # no password yet
    c, _ = login(app, user)
    with c.session_transaction() as s:
        s["mfa_at"] -= 700
    r = c.post("/login/code", data={"code": phone.code()})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert not signed_in(c)


def test_turning_it_off_needs_a_current_code_and_ends_other_sessions(app, make):
    user, here, phone, _codes = mfa_user(app, make)
    there, _ = login(app, user)
    assert there.post("/login/code", data={"code": phone.code()}).status_code == 302
    s = sock(app, there)
    assert s.is_connected()
    r = here.post("/account/two-step/off", data={"code": "000000", "password": PASSWORD})
    assert r.status_code == 422
    from auth import mfa

    assert mfa.enabled(user) and signed_in(there)
    r = here.post("/account/two-step/off", data={"code": phone.code(), "password": PASSWORD})
    assert r.status_code == 302
    assert not mfa.enabled(user)
    assert signed_in(here) and not signed_in(there)
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    assert query(action="auth.mfa_disabled")[0].actor_id == user.id
    _c, r = login(app, user)
    assert r.status_code == 302 and r.headers["Location"].endswith("/rooms")


def test_turning_it_on_ends_other_sessions(app, make):
    user = make.user()
    here, _ = login(app, user)
    there, _ = login(app, user)
    s = sock(app, there)
    enrol(here)
    assert signed_in(here) and not signed_in(there)
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    assert '"reason": "mfa_enabled"' in query(action="auth.sessions_ended")[0].detail


def test_new_recovery_codes_replace_the_old_ones(app, make):
    user, c, phone, old = mfa_user(app, make)
    r = c.post("/account/two-step/codes", data={"code": phone.code()})
    assert r.status_code == 200
    # Audited as what it is (issue 11): not as turning two-step sign-in on a second time.
    replaced = query(action="auth.recovery_codes_replaced")
    assert len(replaced) == 1 and replaced[0].actor_id == user.id and replaced[0].target_id == user.id
    assert len(query(action="auth.mfa_enabled")) == 1
    new = [li.text_content().strip() for li in page(r).xpath('//ol[@id="recovery-codes"]/li')]
    assert len(new) == 10 and not set(new) & set(old)
    c2, _ = login(app, user)
    assert c2.post("/login/code", data={"code": old[0]}).status_code == 401
    assert c2.post("/login/code", data={"code": new[0]}).status_code == 302


# -- administrators' policy ------------------------------------------------------------------------

def set_policy(app, admin_client, value: str):
    r = admin_client.post("/admin/security", data={"mfa_policy": value})
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/people"), r.headers.get("Location")


def admin_client(app, make):
    admin = make.user(admin=True, kind="iag")  # an IAG administrator: covered by "staff" as an administrator
    c, r = login(app, admin)
    assert r.status_code == 302
    return admin, c


def test_policy_is_a_site_setting_on_the_admin_page(app, make):
    admin, c = admin_client(app, make)
    doc = page(c.get("/admin/people"))
    assert doc.xpath('//input[@name="mfa_policy" and @value="off" and @checked]')
    assert c.post("/admin/security", data={"mfa_policy": "sometimes"}).status_code == 422
    set_policy(app, c, "staff")
    db.session.remove()
    assert db.session.get(SiteSetting, "mfa_required").value == "staff"
    ev = query(action="site.mfa_policy")[0]
    assert ev.actor_id == admin.id and '"to": "staff"' in ev.detail
    # The administrator is covered too, and is sent to set it up first.
    r = c.get("/admin/people")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/two-step")
    member = make.user(kind="iag")  # not covered by "staff"
    mc, _ = login(app, member)
    assert mc.post("/admin/security", data={"mfa_policy": "off"}).status_code == 404
    db.session.remove()
    assert db.session.get(SiteSetting, "mfa_required").value == "staff"


def test_required_accounts_enrol_after_the_password_before_anything_else(app, make):
    _admin, ac = admin_client(app, make)
    enrol(ac)  # the administrator is covered by "staff" too
    set_policy(app, ac, "staff")
    staff = make.user(kind="staff")
    iag = make.user(kind="iag")
    c, r = login(app, iag)
    assert r.status_code == 302 and r.headers["Location"].endswith("/rooms")  # not required
    c, r = login(app, staff)
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/two-step")
    assert not signed_in(c)
    r = c.get("/account/two-step")
    assert "requires two-step sign-in" in r.get_data(as_text=True)
    phone, codes = enrol(c)
    assert len(codes) == 10 and signed_in(c)
    assert '"second_factor": "enrolled"' in query(action="auth.login")[0].detail
    c2, r = login(app, staff)
    assert r.headers["Location"].endswith("/login/code")
    assert c2.post("/login/code", data={"code": phone.code()}).status_code == 302
    # Required: it cannot be turned off.
    r = c2.post("/account/two-step/off", data={"code": phone.code(), "password": PASSWORD})
    assert r.status_code == 403
    from auth import mfa

    assert mfa.enabled(staff)

    set_policy(app, ac, "all")
    c, r = login(app, iag)
    assert r.headers["Location"].endswith("/account/two-step")


def test_signed_in_accounts_can_do_nothing_else_until_enrolled(app, make):
    _admin, ac = admin_client(app, make)
    staff = make.user(kind="staff")
    token = make.token(staff)
    c, _ = login(app, staff)
    s = sock(app, c)
    assert signed_in(c) and s.is_connected()
    set_policy(app, ac, "staff")
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    for path in ("/rooms", "/account", "/notifications"):
        r = c.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/account/two-step"), path
    r = app.test_client().get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "mfa_required"
    assert not sock(app, c).is_connected()
    enrol(c)
    assert c.get("/rooms").status_code == 200
    assert app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert sock(app, c).is_connected()


def test_administrators_reset_someones_two_step_sign_in(app, make):
    admin, ac = admin_client(app, make)
    user, uc, _phone, _codes = mfa_user(app, make)
    s = sock(app, uc)
    assert s.is_connected()
    r = ac.post(f"/admin/people/{user.id}/reset-two-step")
    assert r.status_code == 302
    from auth import mfa

    assert not mfa.enabled(user)
    assert wait_for(lambda: not s.is_connected(), timeout=5)   # its live connection ends too
    assert not signed_in(uc)
    ev = query(action="auth.mfa_disabled")[0]
    assert ev.actor_id == admin.id and ev.target_id == user.id
    other = make.user()
    oc, _ = login(app, other)
    assert oc.post(f"/admin/people/{user.id}/reset-two-step").status_code == 404


def test_turning_it_off_asks_for_the_password_again(app, make):
    user, here, phone, _codes = mfa_user(app, make)
    from auth import mfa

    # The password is checked first: a refused one leaves the code unused, so retyping the password does not
    # mean waiting for the next code (and the test does not wait for one either).
    code = phone.code()
    r = here.post("/account/two-step/off", data={"code": code})
    assert r.status_code == 422 and "Enter your current password" in r.get_data(as_text=True)
    r = here.post("/account/two-step/off", data={"code": code, "password": "a wrong password, this"})
    assert r.status_code == 422 and mfa.enabled(user)
    assert query(action="auth.reauth_failed")[0].actor_id == user.id
    assert here.post("/account/two-step/off", data={"code": code, "password": PASSWORD}).status_code == 302
    assert not mfa.enabled(user)
