"""Behind a reverse proxy (COLLAB_TRUSTED_PROXIES) the audit log's "from where",
the per-address sign-in limits and the session list use the client's real
address; with no trusted proxy (the default) a forged X-Forwarded-For changes
nothing. HSTS is sent when COLLAB_PUBLIC_URL is https."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from auth.account_models import UserSession
from auth.audit import query
from collab.extensions import db
from tests.conftest import PASSWORD

PROXY = "10.0.0.2"          # the reverse proxy, as the server sees it
CLIENT = "203.0.113.77"     # the person's own address, as the proxy saw it


@pytest.fixture(params=[0, 1], ids=["no-proxy", "one-proxy"])
def app_config(request):
    return {"TRUSTED_PROXIES": request.param, "LOGIN_LIMIT": "3 per minute", "RATELIMIT_ENABLED": True}


def _via_proxy(client, path, data, forwarded=CLIENT):
    return client.post(path, data=data, environ_base={"REMOTE_ADDR": PROXY},
                       headers={"X-Forwarded-For": f"198.51.100.250, {forwarded}", "X-Forwarded-Proto": "http"})


def test_audit_log_and_sessions_record_the_client_address(app, make):
    user = make.user()
    c = app.test_client()
    _via_proxy(c, "/login", {"email": user.email, "password": "not the password at all"})
    r = _via_proxy(c, "/login", {"email": user.email, "password": PASSWORD})
    assert r.status_code == 302
    want = CLIENT if app.config["TRUSTED_PROXIES"] else PROXY   # without a trusted proxy the header is ignored
    assert query(action="auth.login_failed")[0].ip == want
    assert query(action="auth.login")[0].ip == want
    db.session.remove()
    rec = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    assert rec.ip == want
    page = c.get("/account", environ_base={"REMOTE_ADDR": PROXY},
                 headers={"X-Forwarded-For": CLIENT}).get_data(as_text=True)
    assert want in page


def test_sign_in_limits_count_per_client_address_behind_the_proxy(app, make):
    """Three failures from one client behind the proxy: that client is limited. Another
    client behind the same proxy is limited too without a trusted proxy (all share the
    proxy's address), and not with one."""
    users = [make.user() for _ in range(4)]
    c = app.test_client()
    for u in users[:3]:
        assert _via_proxy(c, "/login", {"email": u.email, "password": "wrong wrong wrong"}).status_code == 401
    assert _via_proxy(c, "/login", {"email": users[3].email, "password": PASSWORD}).status_code == 429
    other = _via_proxy(app.test_client(), "/login", {"email": users[3].email, "password": PASSWORD},
                       forwarded="192.0.2.44")
    assert other.status_code == (302 if app.config["TRUSTED_PROXIES"] else 429)


def test_hsts_only_when_the_public_address_is_https(tmp_path, db_url):
    from tests.conftest import make_test_app

    for url, want in (("https://collab.example.org", "max-age=31536000; includeSubDomains"),
                      ("http://localhost", None)):
        app = make_test_app(tmp_path / url.split(":")[0], db_url, PUBLIC_URL=url)
        with app.app_context():
            r = app.test_client().get("/login", base_url=url)
            assert r.headers.get("Strict-Transport-Security") == want, url
            db.session.remove()
            db.engine.dispose()


def test_trusted_proxies_setting_is_checked(monkeypatch, tmp_path):
    from collab import config

    monkeypatch.setenv("COLLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLLAB_TRUSTED_PROXIES", "2")
    assert config.from_env()["TRUSTED_PROXIES"] == 2
    monkeypatch.delenv("COLLAB_TRUSTED_PROXIES")
    assert config.from_env()["TRUSTED_PROXIES"] == 0
    for bad in ("-1", "two", "99"):
        monkeypatch.setenv("COLLAB_TRUSTED_PROXIES", bad)
        with pytest.raises(ValueError, match="COLLAB_TRUSTED_PROXIES"):
            config.from_env()
