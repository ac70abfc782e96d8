"""Account lockout after 10 failed sign-ins (doubling each time, a clear
message, an e-mail through a real SMTP server on loopback), the per-address
limits still in force, and password hashing at the ASVS level (argon2id,
hashes upgraded at the next sign-in when the cost is raised)."""
from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest
from argon2 import extract_parameters
from lxml import html
from sqlalchemy import update

from auth.account_models import AccountLock
from auth.audit import query
from auth.models import User
from collab import timezones
from collab.db import utcnow
from collab.extensions import db
from tests.conftest import PASSWORD

WRONG = "not the right password at all"


@pytest.fixture
def app_config(smtp):
    # The per-address and per-account request limits are tested on their own below (and in test_auth.py).
    return {"LOGIN_LIMIT": "1000 per minute", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port}


def attempt(app, email: str, password: str, ip: str = "198.51.100.10"):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c, c.post("/login", data={"email": email, "password": password})


REFUSED = ("Those details do not match an active account, or there were too many attempts. Try again later, "
           "or ask your administrator for a password reset link.")


def form_error(r) -> str:
    """The sign-in page's message, after checking the status every refusal shares."""
    assert r.status_code == 401, r.status_code
    doc = html.fromstring(r.get_data(as_text=True))
    return " ".join(doc.xpath('//div[contains(@class, "error-summary")]//li')[0].text_content().split())


def lock_row(user_id: int) -> AccountLock:
    db.session.remove()
    return db.session.get(AccountLock, user_id)


def expire_lock(user_id: int) -> None:
    db.begin_write()
    db.session.execute(update(AccountLock).where(AccountLock.user_id == user_id)
                       .values(locked_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    db.session.remove()


def test_ten_failed_sign_ins_lock_the_account_with_a_clear_message(app, make, smtp):
    user = make.user(name="Pat Locke")
    for i in range(9):
        _, r = attempt(app, user.email, WRONG)
        assert r.status_code == 401, i
    assert lock_row(user.id).failures == 9 and lock_row(user.id).locked_until is None
    _, r = attempt(app, user.email, WRONG)
    assert r.status_code == 401
    row = lock_row(user.id)
    assert row.locked_until is not None and row.lockouts == 1
    minutes = (row.locked_until - utcnow()).total_seconds() / 60
    assert 14 < minutes <= 15

    # Now even the right password is refused, with the answer anyone gets for wrong details (the e-mail below,
    # sent to the account's own address, says why and until when).
    c, r = attempt(app, user.email, PASSWORD)
    assert r.status_code == 401
    assert form_error(r) == REFUSED
    assert c.get("/account").status_code == 302

    locked = query(action="auth.locked")
    assert len(locked) == 1 and locked[0].target_id == user.id and locked[0].ip == "198.51.100.10"
    assert len(query(action="auth.login_failed")) == 11  # ten that counted, and the refused one during the lock
    assert query(action="auth.login") == []

    mails = smtp.wait(1)
    assert len(mails) == 1
    assert mails[0]["to"] == [user.email]
    assert "locked" in mails[0]["subject"].lower()
    assert "Pat Locke" in mails[0]["body"] and "10 failed attempts" in mails[0]["body"]
    assert f"{timezones.fmt(row.locked_until, 'Europe/London', 'clock')} on " in mails[0]["body"]   # the site's zone, named


def test_each_lockout_lasts_twice_as_long_until_a_successful_sign_in(app, make):
    user = make.user()
    periods = []
    for _ in range(3):
        for _i in range(10):
            attempt(app, user.email, WRONG)
        row = lock_row(user.id)
        periods.append(round((row.locked_until - utcnow()).total_seconds() / 60))
        expire_lock(user.id)
    assert periods == [15, 30, 60]
    assert lock_row(user.id).lockouts == 3
    _, r = attempt(app, user.email, PASSWORD)  # the lock has passed: the right password works
    assert r.status_code == 302
    row = lock_row(user.id)
    assert row.failures == 0 and row.lockouts == 0
    for _i in range(10):
        attempt(app, user.email, WRONG)
    assert round((lock_row(user.id).locked_until - utcnow()).total_seconds() / 60) == 15


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT": "1000 per minute", "LOCKOUT_MINUTES": 2}])
def test_the_first_lockout_period_is_a_setting(app, make):
    user = make.user()
    for _ in range(10):
        attempt(app, user.email, WRONG)
    assert round((lock_row(user.id).locked_until - utcnow()).total_seconds() / 60) == 2


def test_a_success_clears_the_count(app, make):
    user = make.user()
    for _ in range(9):
        attempt(app, user.email, WRONG)
    assert attempt(app, user.email, PASSWORD)[1].status_code == 302
    for _ in range(9):
        attempt(app, user.email, WRONG)
    assert lock_row(user.id).locked_until is None
    assert attempt(app, user.email, PASSWORD)[1].status_code == 302


def test_wrong_second_step_codes_count_too(app, make):
    from auth import mfa

    user = make.user()
    c, _ = attempt(app, user.email, PASSWORD)
    secret = mfa.pending_secret(user)
    c.post("/account/two-step", data={"code": pyotp.TOTP(secret).now(), "password": PASSWORD})
    assert mfa.enabled(user)
    c, r = attempt(app, user.email, PASSWORD)
    assert r.headers["Location"].endswith("/login/code")
    for i in range(9):
        r = c.post("/login/code", data={"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
        assert r.status_code == 401, i
    r = c.post("/login/code", data={"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
    assert r.status_code == 423 and "locked" in r.get_data(as_text=True)  # they gave the password: no oracle
    assert lock_row(user.id).locked_until is not None
    # The pending sign-in is gone; even the right password and code do not get in now.
    assert c.get("/login/code").status_code == 302
    assert attempt(app, user.email, PASSWORD)[1].status_code == 401


def test_locks_count_per_account_from_any_address(app, make):
    user = make.user()
    for i in range(10):
        attempt(app, user.email, WRONG, ip=f"203.0.113.{i + 1}")
    assert attempt(app, user.email, PASSWORD, ip="203.0.113.200")[1].status_code == 401
    other = make.user()
    assert attempt(app, other.email, PASSWORD, ip="203.0.113.1")[1].status_code == 302


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT": "5 per minute"}])
def test_per_address_limits_stay_in_force_alongside_lockout(app, make):
    user = make.user()
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = "192.0.2.50"
    statuses = [c.post("/login", data={"email": user.email, "password": WRONG}).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # The per-account limit (5 per minute here) also holds from fresh addresses.
    assert attempt(app, user.email, WRONG, ip="192.0.2.51")[1].status_code == 429
    assert lock_row(user.id).failures == 5


def test_a_password_reset_link_ends_the_lock(app, make):
    from auth import services

    admin, user = make.user(admin=True), make.user()
    for _ in range(10):
        attempt(app, user.email, WRONG)
    with app.test_request_context():
        link = services.issue_password_reset(admin, user.id)
    token = link.rsplit("/", 1)[1]
    services.reset_password(token, "a brand new long passphrase")
    assert lock_row(user.id).locked_until is None
    assert attempt(app, user.email, "a brand new long passphrase")[1].status_code == 302


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT": "1000 per minute", "SMTP_HOST": None}])
def test_without_smtp_the_lock_still_works(app, make):
    user = make.user()
    for _ in range(10):
        attempt(app, user.email, WRONG)
    assert form_error(attempt(app, user.email, PASSWORD)[1]) == REFUSED


# -- password hashing -------------------------------------------------------------------------------

def test_production_defaults_meet_the_asvs_minimum_for_argon2id(tmp_path, monkeypatch):
    from auth import passwords
    from collab import config, create_app

    for name in ("COLLAB_ARGON2_MEMORY_KIB", "COLLAB_ARGON2_TIME_COST", "COLLAB_ARGON2_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)
    cfg = config.from_env({"DATA_DIR": str(tmp_path)})
    assert cfg["ARGON2_MEMORY_KIB"] >= 47104 and cfg["ARGON2_TIME_COST"] >= 1
    app = create_app({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                      "SERVER_NAME": "localhost"})
    with app.app_context():
        stored = passwords.hash_password("a production strength passphrase")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params.memory_cost >= 47104 and params.time_cost >= 1
    assert (params.memory_cost, params.time_cost, params.parallelism) == (
        cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_TIME_COST"], cfg["ARGON2_PARALLELISM"])
    names = {name for name, _d, _m in config.SETTINGS}
    assert {"COLLAB_ARGON2_MEMORY_KIB", "COLLAB_ARGON2_TIME_COST", "COLLAB_ARGON2_PARALLELISM"} <= names


def test_settings_below_the_minimum_are_refused(tmp_path, monkeypatch):
    from collab import config

    monkeypatch.setenv("COLLAB_ARGON2_MEMORY_KIB", "19456")
    with pytest.raises(ValueError, match="at least 47104"):
        config.from_env({"DATA_DIR": str(tmp_path)})
    monkeypatch.setenv("COLLAB_ARGON2_MEMORY_KIB", "100000")
    monkeypatch.setenv("COLLAB_ARGON2_TIME_COST", "0")
    with pytest.raises(ValueError):
        config.from_env({"DATA_DIR": str(tmp_path)})
    monkeypatch.setenv("COLLAB_ARGON2_TIME_COST", "3")
    cfg = config.from_env({"DATA_DIR": str(tmp_path)})
    assert (cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_TIME_COST"]) == (100000, 3)


def test_hashes_are_upgraded_at_the_next_sign_in_when_the_cost_is_raised(app, make):
    user = make.user()
    before = db.session.get(User, user.id).password_hash
    assert (extract_parameters(before).memory_cost, extract_parameters(before).time_cost) == (1024, 1)
    app.config.update(ARGON2_MEMORY_KIB=2048, ARGON2_TIME_COST=2)
    attempt(app, user.email, WRONG)  # a wrong password changes nothing
    db.session.remove()
    assert db.session.get(User, user.id).password_hash == before
    assert attempt(app, user.email, PASSWORD)[1].status_code == 302
    db.session.remove()
    after = db.session.get(User, user.id).password_hash
    params = extract_parameters(after)
    assert after != before and (params.memory_cost, params.time_cost) == (2048, 2)
    assert after.startswith("$argon2id$")
    # The upgraded hash still signs in, and is not upgraded again.
    assert attempt(app, user.email, PASSWORD)[1].status_code == 302
    db.session.remove()
    assert db.session.get(User, user.id).password_hash == after


# -- telling the account holder ---------------------------------------------------------------------

def test_account_holders_are_emailed_when_their_sign_in_details_change(app, make, smtp):
    from auth import mfa, services

    admin, user = make.user(admin=True), make.user(name="Nia Notice")
    c, _ = attempt(app, user.email, PASSWORD)
    r = c.post("/account", data={"action": "password", "current_password": PASSWORD,
                                 "new_password": "a changed long passphrase", "confirm_password":
                                 "a changed long passphrase"})
    assert r.status_code == 302
    secret = mfa.pending_secret(user)
    totp = pyotp.TOTP(secret)
    step = int(time.time() // 30)
    assert c.post("/account/two-step", data={"code": totp.at(step * 30), "password": "a changed long passphrase"}
                  ).status_code == 200
    assert c.post("/account/two-step/codes", data={"code": totp.at((step + 1) * 30)}).status_code == 200
    ac, _ = attempt(app, admin.email, PASSWORD)
    assert ac.post(f"/admin/people/{user.id}/reset-two-step").status_code == 302
    with app.test_request_context():
        link = services.issue_password_reset(admin, user.id)
    services.reset_password(link.rsplit("/", 1)[1], "yet another long passphrase")
    mails = smtp.wait(5)
    assert [m["to"] for m in mails] == [[user.email]] * 5
    subjects = [m["subject"] for m in mails]
    assert subjects == ["Your Collab password was changed", "Two-step sign-in is on for your Collab account",
                        "New Collab recovery codes", "An administrator turned off your two-step sign-in",
                        "Your Collab password was reset"]
    assert all("Nia Notice" in m["body"] and "tell your administrator" in m["body"] for m in mails)


def test_a_locked_account_answers_exactly_like_an_unknown_address(app, make, smtp):
    """After the lock, nothing in the answer tells an enumerator the address is a real account: same status,
    same message as a wrong password and as an address nobody has. The account's owner is told by e-mail."""
    user = make.user(name="Kim Real")
    unknown = "nobody-here@example.org"
    before = {form_error(attempt(app, user.email, WRONG)[1]), form_error(attempt(app, unknown, WRONG)[1])}
    for _ in range(9):
        attempt(app, user.email, WRONG)
        attempt(app, unknown, WRONG)
    assert lock_row(user.id).locked_until is not None
    after = {form_error(attempt(app, user.email, WRONG)[1]), form_error(attempt(app, user.email, PASSWORD)[1]),
             form_error(attempt(app, unknown, WRONG)[1]), form_error(attempt(app, unknown, PASSWORD)[1])}
    assert before == after == {REFUSED}
    mails = smtp.wait(1)
    assert [m["to"] for m in mails] == [[user.email]] and "locked" in mails[0]["subject"].lower()
    assert "password reset" in mails[0]["body"]
    refused_while_locked = [e for e in query(action="auth.login_failed") if '"locked"' in (e.detail or "")]
    assert len(refused_while_locked) == 2 and {e.target_id for e in refused_while_locked} == {user.id}
