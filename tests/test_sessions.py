"""Server-side sessions: listed in account settings (device, address, last seen),
ended one by one or all at once, ended by password changes, signing out and
idleness; their Socket.IO connections are disconnected within 5 seconds, also
across server processes through Redis."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta

import lxml.html
import pytest
from sqlalchemy import func, select, update

from auth.account_models import UserSession
from auth.audit import query
from collab.db import utcnow
from collab.extensions import db
from collab import tasks
from tests.conftest import PASSWORD
from tests.live_support import Collector, login_client, sock, wait_for

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
NEW_PASSWORD = "another quite long passphrase"


@pytest.fixture(autouse=True)
def _settle(request):
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        tasks.settle(app)


def browser(app, user, ua: str = FIREFOX, ip: str = "198.51.100.1", remember: bool = False):
    c = app.test_client()
    c.environ_base.update({"HTTP_USER_AGENT": ua, "REMOTE_ADDR": ip})
    data = {"email": user.email, "password": PASSWORD}
    if remember:
        data["remember"] = "on"
    r = c.post("/login", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return c


def signed_in(c) -> bool:
    r = c.get("/account")
    assert r.status_code in (200, 302)
    return r.status_code == 200


def session_rows(c) -> list:
    doc = lxml.html.fromstring(c.get("/account").get_data(as_text=True))
    return doc.xpath('//table[contains(@class, "sessions")]//tr[@data-session]')


def row_text(row) -> str:
    return re.sub(r"\s+", " ", row.text_content()).strip()


def live_rows(user_id: int) -> list[UserSession]:
    db.session.remove()
    return list(db.session.scalars(select(UserSession).where(UserSession.user_id == user_id,
                                                             UserSession.ended_at.is_(None))
                                   .order_by(UserSession.id)))


def test_each_sign_in_is_a_session_listed_with_device_address_and_last_seen(app, make):
    user = make.user()
    laptop = browser(app, user, FIREFOX, "198.51.100.7")
    browser(app, user, SAFARI_IPHONE, "203.0.113.20")
    rows = session_rows(laptop)
    assert len(rows) == 2
    texts = [row_text(r) for r in rows]
    mine = [t for t in texts if "this device" in t]
    assert len(mine) == 1 and "Firefox on Windows" in mine[0] and "198.51.100.7" in mine[0]
    other = next(t for t in texts if "this device" not in t)
    assert "Safari on iPhone" in other and "203.0.113.20" in other
    for r in rows:
        assert len(r.xpath(".//time")) == 2  # signed in, last seen
    # Only the other session has its own "Sign out" button; no secrets appear on the page.
    assert [bool(r.xpath('.//button[text()="Sign out"]')) for r in rows].count(True) == 1
    stored = live_rows(user.id)
    page = laptop.get("/account").get_data(as_text=True)
    assert all(s.token_hash not in page for s in stored)
    assert all(len(s.token_hash) == 64 for s in stored)


def test_ending_one_session_signs_that_browser_out_only(app, make):
    user = make.user()
    here = browser(app, user, FIREFOX)
    phone = browser(app, user, SAFARI_IPHONE, "203.0.113.5")
    third = browser(app, user, CHROME_MAC, "192.0.2.44")
    rows = session_rows(here)
    target = next(r for r in rows if "Safari on iPhone" in row_text(r))
    r = here.post(f"/account/sessions/{target.get('data-session')}/end", data={"password": PASSWORD})
    assert r.status_code == 302
    assert not signed_in(phone)
    assert signed_in(here) and signed_in(third)
    assert len(session_rows(here)) == 2
    ended = query(action="auth.sessions_ended")
    assert ended and ended[0].actor_id == user.id and '"count": 1' in ended[0].detail


def test_nobody_can_end_someone_elses_session(app, make):
    alice, bob = make.user(), make.user()
    a = browser(app, alice)
    b = browser(app, bob)
    bobs = live_rows(bob.id)[0]
    assert a.post(f"/account/sessions/{bobs.id}/end", data={"password": PASSWORD}).status_code == 404
    assert signed_in(b)
    assert app.test_client().post(f"/account/sessions/{bobs.id}/end").status_code == 302  # to sign in
    assert signed_in(b)


def test_sign_out_everywhere_else_keeps_this_browser(app, make):
    user = make.user()
    here = browser(app, user)
    others = [browser(app, user, SAFARI_IPHONE), browser(app, user, CHROME_MAC, remember=True)]
    remember_cookie = others[1].get_cookie("remember_token").value
    r = here.post("/account/sessions/end-others", data={"password": PASSWORD})
    assert r.status_code == 302
    assert signed_in(here)
    assert not any(signed_in(c) for c in others)
    c = app.test_client()
    c.set_cookie("remember_token", remember_cookie, domain="localhost")
    assert not signed_in(c)
    assert len(live_rows(user.id)) == 1


def test_signing_out_ends_the_session_on_the_server(app, make):
    """A copy of the session cookie is worthless after signing out."""
    user = make.user()
    c = browser(app, user)
    stolen = c.get_cookie("session").value
    assert c.post("/logout").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen, domain="localhost")
    assert not signed_in(thief)
    db.session.remove()
    rec = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert rec.ended_at is not None and rec.end_reason == "signed_out"
    assert query(action="auth.logout")[0].actor_id == user.id


def test_remember_me_restores_the_same_session_and_ends_with_it(app, make):
    user = make.user()
    c = browser(app, user, remember=True)
    cookie = c.get_cookie("remember_token")
    assert cookie is not None and cookie.http_only
    c2 = app.test_client()  # a browser restarted: only the remember-me cookie
    c2.set_cookie("remember_token", cookie.value, domain="localhost")
    assert signed_in(c2)
    assert len(live_rows(user.id)) == 1
    rec = live_rows(user.id)[0]
    assert rec.remember
    other = browser(app, user)
    assert other.post(f"/account/sessions/{rec.id}/end", data={"password": PASSWORD}).status_code == 302
    c3 = app.test_client()
    c3.set_cookie("remember_token", cookie.value, domain="localhost")
    assert not signed_in(c3)


def _age(user_id: int, *, seen_hours: float = 0, created_days: float = 0) -> None:
    db.begin_write()
    values = {"last_seen_at": utcnow() - timedelta(hours=seen_hours)}
    if created_days:
        values["created_at"] = utcnow() - timedelta(days=created_days)
    db.session.execute(update(UserSession).where(UserSession.user_id == user_id).values(**values))
    db.session.commit()
    db.session.remove()


def test_idle_sessions_end_after_the_default_twelve_hours(app, make):
    assert app.config["IDLE_TIMEOUT_HOURS"] == 12
    user = make.user()
    c = browser(app, user)
    _age(user.id, seen_hours=11.5)
    assert signed_in(c)  # and that request counts as activity
    _age(user.id, seen_hours=12.5)
    assert not signed_in(c)
    db.session.remove()
    rec = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert rec.end_reason == "idle"


@pytest.mark.parametrize("app_config", [{"IDLE_TIMEOUT_HOURS": 1, "REMEMBER_DAYS": 7}])
def test_idle_timeout_is_configurable_and_kept_sessions_last_remember_days(app, make):
    user = make.user()
    c = browser(app, user)
    _age(user.id, seen_hours=0.5)
    assert signed_in(c)
    _age(user.id, seen_hours=1.5)
    assert not signed_in(c)

    other = make.user()
    kept = browser(app, other, remember=True)
    _age(other.id, seen_hours=48, created_days=6)
    assert signed_in(kept)
    _age(other.id, created_days=7.5)
    assert not signed_in(kept)

    # However active, no session outlives COLLAB_REMEMBER_DAYS.
    third = make.user()
    busy = browser(app, third)
    _age(third.id, seen_hours=0, created_days=7.5)
    assert not signed_in(busy)
    db.session.remove()
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == third.id)).end_reason == "expired"


def test_the_daily_job_forgets_long_ended_sessions(app, make, runner):
    user = make.user()
    browser(app, user).post("/logout")
    browser(app, user, SAFARI_IPHONE)
    db.begin_write()
    db.session.execute(update(UserSession).where(UserSession.ended_at.is_not(None))
                       .values(ended_at=utcnow() - timedelta(days=91)))
    db.session.commit()
    result = runner.invoke(args=["retention", "run"])
    assert "Forgot 1 sessions" in result.output
    assert len(live_rows(user.id)) == 1
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_idle_timeout_setting_is_read_from_the_environment(monkeypatch, tmp_path):
    from collab import config

    monkeypatch.setenv("COLLAB_IDLE_TIMEOUT_HOURS", "3")
    assert config.from_env({"DATA_DIR": str(tmp_path)})["IDLE_TIMEOUT_HOURS"] == 3
    monkeypatch.delenv("COLLAB_IDLE_TIMEOUT_HOURS")
    assert config.from_env({"DATA_DIR": str(tmp_path)})["IDLE_TIMEOUT_HOURS"] == 12
    assert "COLLAB_IDLE_TIMEOUT_HOURS" in {name for name, _d, _m in config.SETTINGS}


def test_device_names():
    from auth.sessions import device

    assert device(FIREFOX) == "Firefox on Windows"
    assert device(SAFARI_IPHONE) == "Safari on iPhone"
    assert device(CHROME_MAC) == "Chrome on macOS"
    assert device("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
                  "Safari/537.36 Edg/126.0") == "Edge on Linux"
    assert device("curl/8.5.0") == "curl"
    assert device(None) == "Unknown device"


# -- live connections ------------------------------------------------------------------------------

def test_ending_a_session_disconnects_its_socket_connections_only(app, make):
    user = make.user()
    here = browser(app, user)
    phone = browser(app, user, SAFARI_IPHONE)
    phone_socket = Collector(sock(app, phone))
    here_socket = sock(app, here)
    token_socket = sock(app, token=make.token(user))
    assert phone_socket.sc.is_connected() and here_socket.is_connected()
    phone_row = next(r for r in session_rows(here) if "Safari" in row_text(r))
    here.post(f"/account/sessions/{phone_row.get('data-session')}/end", data={"password": PASSWORD})
    assert wait_for(lambda: not phone_socket.sc.is_connected(), timeout=5)
    assert phone_socket.named("session.ended")[0]["reason"] == "session_ended"
    assert here_socket.is_connected() and token_socket.is_connected()
    # The ended session cannot connect again.
    assert not sock(app, phone).is_connected()


def test_password_change_disconnects_other_sessions_live_connections(app, make):
    user = make.user()
    here = browser(app, user)
    there = browser(app, user, SAFARI_IPHONE)
    there_socket = sock(app, there)
    here_socket = sock(app, here)
    r = here.post("/account", data={"action": "password", "current_password": PASSWORD,
                                     "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert r.status_code == 302
    assert wait_for(lambda: not there_socket.is_connected(), timeout=5)
    assert here_socket.is_connected()
    assert signed_in(here) and not signed_in(there)
    ended = query(action="auth.sessions_ended")[0]
    assert '"reason": "password_changed"' in ended.detail


def test_a_password_reset_link_disconnects_every_browser_connection_at_once(app, make):
    """The reset rotates the session token through auth.sessions.rotate_in_tx, which queues the
    disconnect itself (no model listener): every cookie connection ends, token ones stay."""
    from auth import services

    admin, user = make.user(admin=True), make.user()
    a = Collector(sock(app, browser(app, user)))
    b = sock(app, browser(app, user, SAFARI_IPHONE))
    by_token = sock(app, token=make.token(user))
    assert a.sc.is_connected() and b.is_connected() and by_token.is_connected()
    with app.test_request_context():
        link = services.issue_password_reset(admin, user.id)
    services.reset_password(link.rsplit("/", 1)[1], NEW_PASSWORD)
    assert wait_for(lambda: not (a.sc.is_connected() or b.is_connected()), timeout=5)
    assert a.named("session.ended")[0]["reason"] == "signed_out"
    assert by_token.is_connected()


def test_signing_out_disconnects_that_browsers_connections(app, make):
    user = make.user()
    c = browser(app, user)
    s = sock(app, c)
    other = sock(app, browser(app, user, CHROME_MAC))
    c.post("/logout")
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    assert other.is_connected()


def test_administrator_deactivation_ends_every_session(app, make):
    admin, user = make.user(admin=True), make.user()
    bystander = make.user()
    a, b = browser(app, user), browser(app, user, SAFARI_IPHONE)
    s, s2 = Collector(sock(app, a)), sock(app, b)
    by_token = Collector(sock(app, token=make.token(user)))
    other = sock(app, token=make.token(bystander))
    assert s.sc.is_connected() and s2.is_connected() and by_token.sc.is_connected()
    adm = browser(app, admin, CHROME_MAC)
    r = adm.post("/admin/people", data={"action": "deactivate", "user_id": str(user.id)})
    assert r.status_code == 302
    # browser sessions AND token-authenticated connections end within 5 seconds
    assert wait_for(lambda: not (s.sc.is_connected() or s2.is_connected() or by_token.sc.is_connected()),
                    timeout=5)
    assert s.named("session.ended")[0]["reason"] == "deactivated"
    assert by_token.named("session.ended")[0]["reason"] == "deactivated"
    assert other.is_connected()
    assert not signed_in(a) and not signed_in(b)
    assert live_rows(user.id) == []
    assert query(action="auth.sessions_ended")[0].actor_id == admin.id


def test_suspension_through_the_admin_page_disconnects_browser_and_token_connections(app, make):
    admin, user, bystander = make.user(admin=True), make.user(), make.user()
    tok = make.token(user)
    a = browser(app, user)
    s = Collector(sock(app, a))
    by_token = Collector(sock(app, token=tok))
    other = sock(app, browser(app, bystander))
    assert s.sc.is_connected() and by_token.sc.is_connected()
    adm = browser(app, admin, CHROME_MAC)
    r = adm.post(f"/admin/people/{user.id}/suspend", data={"days": "2", "reason": "Abusive posts"})
    assert r.status_code == 302
    assert wait_for(lambda: not (s.sc.is_connected() or by_token.sc.is_connected()), timeout=5)
    assert s.named("session.ended")[0]["reason"] == "deactivated"
    assert by_token.named("session.ended")[0]["reason"] == "deactivated"
    assert other.is_connected()
    assert not signed_in(a)
    assert not sock(app, token=tok).is_connected() and not sock(app, a).is_connected()


def test_administrators_sign_a_person_out_everywhere(app, make):
    admin, user = make.user(admin=True), make.user()
    a, b = browser(app, user), browser(app, user, SAFARI_IPHONE)
    s = sock(app, b)
    adm = browser(app, admin, CHROME_MAC)
    assert b"Sign out everywhere" in adm.get("/admin/people").data
    assert adm.post(f"/admin/people/{user.id}/end-sessions").status_code == 302
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    assert not signed_in(a) and not signed_in(b)
    assert signed_in(adm)
    ev = query(action="auth.sessions_ended")[0]
    assert ev.actor_id == admin.id and ev.target_id == user.id and "ended_by_administrator" in ev.detail
    assert browser(app, user).get("/account").status_code == 200  # they may simply sign in again
    assert browser(app, user).post(f"/admin/people/{admin.id}/end-sessions").status_code == 404
    assert signed_in(adm)


# -- across server processes ------------------------------------------------------------------------------

END_SESSION_ELSEWHERE = """
import time
from collab import create_app
from collab.extensions import db
from auth import sessions
from auth.services import find_user_by_email
from rooms.live import connections as live_connections

app = create_app()
with app.app_context():
    user = find_user_by_email("far@example.org")
    deadline = time.time() + 10
    while not live_connections.state(app).get_store().user_sids(user.id) and time.time() < deadline:
        time.sleep(0.05)
    rec = sessions.live_sessions(user)[0]
    started = time.time()
    sessions.end_session(user, rec.id, password=PASSWORD)
    db.session.remove()
print(started)
"""


def test_ending_a_session_disconnects_it_on_another_server_process(tmp_path, sqlite_template):
    """A browser connected to the real server (gunicorn + gevent, its own process) is
    disconnected within 5 seconds when its session is ended by another process: the
    sids are found in the Redis store and the disconnect travels on the message queue."""
    import shutil
    import uuid

    import requests
    import socketio as sio_client

    from tests.live_support import redis_base
    from tests.liveserver import ROOT, make_server

    base = redis_base()
    if not base:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    redis_url = f"{base}/{9 + uuid.uuid4().int % 5}"
    data = tmp_path / "live"
    data.mkdir()
    shutil.copy(sqlite_template, data / "collab.db")
    server = make_server(data, extra_env={"COLLAB_REDIS_URL": redis_url, "COLLAB_MEDIA_EMBEDDED": "off",
                                          "COLLAB_ARGON2_MEMORY_KIB": "47104", "COLLAB_ARGON2_TIME_COST": "1",
                                          "COLLAB_ARGON2_PARALLELISM": "1"})
    server.flask("users", "create", "--email", "far@example.org", "--name", "Far Away", input=PASSWORD + "\n")
    server.start()
    client = sio_client.Client(reconnection=False)
    try:
        web = requests.Session()
        page = web.get(server.url + "/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = web.post(server.url + "/login", data={"email": "far@example.org", "password": PASSWORD,
                                                  "csrf_token": csrf}, allow_redirects=False, timeout=20)
        assert r.status_code == 302, r.text[:500]
        cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
        ended: list = []
        gone: list = []
        client.on("session.ended", lambda d: ended.append(d))
        client.on("disconnect", lambda *_a: gone.append(time.time()))
        # (websocket-client sends the server's own address as Origin, as a browser would)
        client.connect(server.url, headers={"Cookie": cookie}, transports=["websocket"],
                       wait_timeout=10)
        assert client.connected

        # Another process of the same installation (same database, Redis and settings) ends the session.
        script = f"PASSWORD = {PASSWORD!r}\n" + END_SESSION_ELSEWHERE
        result = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT,
                                env=server.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        started = float(result.stdout.strip().splitlines()[-1])
        assert wait_for(lambda: gone, timeout=5), "still connected 5 s after the session ended"
        assert gone[0] - started < 5
        assert ended and ended[0]["reason"] == "session_ended"
        assert web.get(server.url + "/account", allow_redirects=False, timeout=10).status_code == 302
    finally:
        if client.connected:
            client.disconnect()
        server.kill()


# -- re-authentication for sensitive changes (auth/reauth.py) -----------------------------------------------

def _reauth_mark(c):
    with c.session_transaction() as s:
        return dict(s["reauth"]) if "reauth" in s else None


def test_ending_sessions_asks_for_the_password_again(app, make):
    user = make.user()
    here = browser(app, user)
    phone = browser(app, user, SAFARI_IPHONE)
    laptop = browser(app, user, CHROME_MAC)
    page = here.get("/account").get_data(as_text=True)
    assert 'id="sessions-password"' in page    # signed in a moment ago, and still asked
    # no password, or a wrong one: refused with a message, nothing ended
    r = here.post("/account/sessions/end-others")
    assert r.status_code == 422 and "Enter your current password" in r.get_data(as_text=True)
    r = here.post("/account/sessions/end-others", data={"password": "not my password at all"})
    assert r.status_code == 422 and "That is not your password" in r.get_data(as_text=True)
    rows = {row_text(r): r.get("data-session") for r in session_rows(here)}
    phone_id = next(v for k, v in rows.items() if "Safari" in k)
    assert here.post(f"/account/sessions/{phone_id}/end").status_code == 422
    assert signed_in(phone) and signed_in(laptop) and len(live_rows(user.id)) == 3
    failed = query(action="auth.reauth_failed")
    assert failed and failed[0].actor_id == user.id
    # the right password: done; for five minutes this browser session is not asked again
    assert here.post(f"/account/sessions/{phone_id}/end", data={"password": PASSWORD}).status_code == 302
    assert not signed_in(phone) and signed_in(laptop)
    assert 'id="sessions-password"' not in here.get("/account").get_data(as_text=True)
    # ... but not in another browser session of the same account
    other = browser(app, user, FIREFOX, "192.0.2.9")
    assert other.post("/account/sessions/end-others").status_code == 422
    # and not once the five minutes are over
    mark = _reauth_mark(here)
    with here.session_transaction() as s:
        s["reauth"] = dict(mark, t=mark["t"] - 301)
    assert here.post("/account/sessions/end-others").status_code == 422
    assert signed_in(laptop)
    assert here.post("/account/sessions/end-others", data={"password": PASSWORD}).status_code == 302
    assert not signed_in(laptop) and not signed_in(other) and signed_in(here)


def test_changing_the_email_address_asks_for_the_password(app, make):
    user = make.user(email="old.address@example.org")
    here = browser(app, user)
    phone = browser(app, user, SAFARI_IPHONE)
    s = sock(app, phone)
    # (the account page answers its forms' mistakes with 200 and the message by the field)
    r = here.post("/account", data={"action": "email", "email": "new.address@example.org"})
    assert r.status_code == 200 and "Enter your current password" in r.get_data(as_text=True)
    r = here.post("/account", data={"action": "email", "email": "new.address@example.org",
                                     "password": "wrong password here"})
    assert r.status_code == 200 and "That is not your password" in r.get_data(as_text=True)
    db.session.remove()
    from auth.models import User

    assert db.session.get(User, user.id).email == "old.address@example.org"
    taken = make.user(email="taken@example.org")
    r = here.post("/account", data={"action": "email", "email": taken.email, "password": PASSWORD})
    assert r.status_code == 200 and "already uses" in r.get_data(as_text=True)
    r = here.post("/account", data={"action": "email", "email": "new.address@example.org", "password": PASSWORD})
    assert r.status_code == 302
    db.session.remove()
    assert db.session.get(User, user.id).email == "new.address@example.org"
    ev = query(action="account.email_changed")[0]
    assert ev.actor_id == user.id and "old.address@example.org" in ev.detail
    assert signed_in(here) and not signed_in(phone)        # other devices signed out
    assert wait_for(lambda: not s.is_connected(), timeout=5)
    c = app.test_client()
    assert c.post("/login", data={"email": "new.address@example.org", "password": PASSWORD}).status_code == 302


def test_get_id_is_a_plain_getter_and_signing_in_starts_one_session(app, make):
    """Issue 11: User.get_id() used to start a session (a getter writing a row). Now only
    sessions.sign_in starts one; get_id reads the id it was given."""
    user = make.user()
    rows = lambda: db.session.scalar(select(func.count(UserSession.id)).where(UserSession.user_id == user.id))  # noqa: E731
    assert user.get_id() is None and user.get_id() is None
    assert rows() == 0
    c = login_client(app, user)
    assert rows() == 1 and signed_in(c)
    assert rows() == 1
