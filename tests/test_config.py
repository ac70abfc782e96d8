"""Settings and security from the first line: every setting documented in the
README, security headers on every response, cookie flags, and the secret key
generated into the data folder."""
from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import lxml.html
import pytest

from collab import config, create_app
from collab.extensions import db
from tests.conftest import PASSWORD, bearer
from tests.test_access import methods_of, seed, url_for_rule

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("collab", "auth", "rooms", "search", "media")
# Read from the environment but not settings: set by `flask serve` for its own child processes.
INTERNAL_ENV = {"COLLAB_ASYNC_MODE"}


# -- the settings table ------------------------------------------------------------------

def _readme_settings() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    assert m, "README.md has no '## Settings' section"
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`?COLLAB_[A-Z0-9_]+`?", cells[0]):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2])
    return rows


def test_every_setting_is_in_the_readme_table():
    rows = _readme_settings()
    missing = [name for name, _, _ in config.SETTINGS if name not in rows]
    assert not missing, f"settings missing from README.md's table: {missing}"
    for name, default, meaning in config.SETTINGS:
        assert rows[name][0] == default, (name, rows[name][0], default)
        assert rows[name][1], name
    undocumented = set(rows) - {name for name, _, _ in config.SETTINGS}
    assert not undocumented, f"README lists settings the code does not know: {undocumented}"


def test_every_environment_variable_read_is_a_documented_setting():
    read = set()
    for d in SOURCE_DIRS:
        for path in (ROOT / d).rglob("*.py"):
            read |= set(re.findall(r"environ(?:\.get\(|\[)\s*[\"'](COLLAB_[A-Z0-9_]+)", path.read_text()))
    read |= set(re.findall(r"environ(?:\.get\(|\[)\s*[\"'](COLLAB_[A-Z0-9_]+)", (ROOT / "wsgi.py").read_text()))
    documented = {name for name, _, _ in config.SETTINGS}
    assert read - documented - INTERNAL_ENV == set()
    assert {"COLLAB_DATA_DIR", "COLLAB_DATABASE_URL", "COLLAB_SECRET_KEY"} <= read


# -- security headers ----------------------------------------------------------------------

def _csp(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def assert_secure_headers(resp, what: str) -> None:
    h = resp.headers
    assert h.get("X-Content-Type-Options") == "nosniff", what
    assert h.get("Referrer-Policy") == "same-origin", what
    assert "Content-Security-Policy" in h, what
    csp = _csp(h["Content-Security-Policy"])
    assert csp.get("frame-ancestors") == ["'none'"], (what, h["Content-Security-Policy"])
    for directive in ("script-src", "style-src"):
        sources = csp.get(directive, csp.get("default-src"))
        assert sources is not None, (what, directive)
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, (what, directive)
        assert "*" not in sources and "data:" not in sources, (what, directive)


def assert_no_inline_code(resp, what: str) -> None:
    """What the CSP would block anyway: no inline script, style, or event handlers in our pages."""
    if resp.mimetype != "text/html" or not resp.data:
        return
    doc = lxml.html.fromstring(resp.get_data(as_text=True))
    for script in doc.xpath("//script"):
        assert script.get("src"), (what, lxml.html.tostring(script)[:200])
    assert not doc.xpath("//style"), what
    assert not doc.xpath("//*[@style]"), (what, [lxml.html.tostring(e)[:120] for e in doc.xpath("//*[@style]")])
    for el in doc.iter():
        if isinstance(el.tag, str):
            bad = [a for a in el.attrib if a.lower().startswith("on")]
            assert not bad, (what, el.tag, bad)
            for attr in ("href", "src", "action"):
                assert not (el.get(attr) or "").strip().lower().startswith("javascript:"), (what, el.tag)


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT": "2 per minute"}])
def test_security_headers_on_every_response(app, make):
    @app.route("/__test_failure")
    def _fail():  # a real unexpected error, to see the 500 page's headers
        raise RuntimeError("test failure")

    ids = seed(make)
    token = make.token(ids["owner"])
    anon, member, api = app.test_client(), app.test_client(), app.test_client()
    member.post("/login", data={"email": ids["member"].email, "password": PASSWORD})
    seen_statuses = set()

    def check(resp, what):
        assert_secure_headers(resp, what)
        assert_no_inline_code(resp, what)
        seen_statuses.add(resp.status_code)

    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = url_for_rule(rule, ids)
        for method in methods_of(rule):
            if method != "GET":
                check(anon.open(url, method=method), f"anonymous {method} {url}")
                continue
            if url.startswith("/api/"):
                check(api.get(url, headers=bearer(token)), f"API {url}")
                check(api.get(url), f"API without token {url}")
            else:
                check(anon.get(url), f"anonymous {url}")
                check(member.get(url), f"member {url}")
    check(anon.get("/static/css/app.css"), "static file")
    check(anon.get("/static/no-such-file.js"), "missing static file")
    check(member.get("/no/such/page"), "404 page")
    check(api.get("/api/v1/rooms/999999", headers=bearer(token)), "API 404")
    check(member.post("/rooms"), "405")
    check(member.post(f"/posts/{ids['post_id']}/reply", data={"body": "x", "file": (io.BytesIO(b"x" * (
        app.config["MAX_CONTENT_LENGTH"] + 10)), "big.bin")}, content_type="multipart/form-data"), "413")
    for _ in range(3):
        r = anon.post("/login", data={"email": "nobody@example.org", "password": "wrong password!!"})
    check(r, "429")
    check(member.get("/__test_failure"), "500")
    assert {200, 302, 401, 404, 405, 413, 429, 500} <= seen_statuses, seen_statuses
    r = member.get(f"/attachments/{ids['attachment_id']}/{ids['filename']}")
    assert r.status_code == 200 and "sandbox" in r.headers["Content-Security-Policy"]


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_security_headers_on_csrf_refusal(app, make):
    make.user()
    r = app.test_client().post("/login", data={"email": "x@example.org", "password": "y"})
    assert r.status_code == 400
    assert_secure_headers(r, "CSRF refusal")


# -- cookies ---------------------------------------------------------------------------------

def _set_cookies(resp) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in resp.headers.getlist("Set-Cookie")}


def _flags(header: str) -> set[str]:
    return {p.strip().split("=")[0].lower() + ("=" + p.strip().split("=", 1)[1].lower() if "samesite" in p.lower()
                                                else "") for p in header.split(";")[1:]}


def test_session_cookie_flags(app, make):
    user = make.user()
    r = app.test_client().post("/login", data={"email": user.email, "password": PASSWORD, "remember": "on"})
    cookies = _set_cookies(r)
    assert cookies, "signing in sets a cookie"
    assert any(name == app.config.get("SESSION_COOKIE_NAME", "session") for name in cookies), cookies
    for header in cookies.values():
        flags = _flags(header)
        assert "httponly" in flags, header
        assert "samesite=lax" in flags, header
        assert "secure" not in flags, header  # plain http install: a Secure cookie would never come back


@pytest.mark.parametrize("app_config", [{"PUBLIC_URL": "https://collab.example.org"}])
def test_cookies_are_secure_behind_https(app, make):
    assert app.config["SESSION_COOKIE_SECURE"] is True
    user = make.user()
    c = app.test_client()
    r = c.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "on"},
               base_url="https://localhost")
    cookies = _set_cookies(r)
    assert cookies
    for header in cookies.values():
        flags = _flags(header)
        assert {"secure", "httponly", "samesite=lax"} <= flags, header


# -- the secret key --------------------------------------------------------------------------

def _bare_app(data_dir: Path, db_url: str, **extra):
    cfg = {"TESTING": True, "DATA_DIR": str(data_dir), "DATABASE_URL": db_url, "WTF_CSRF_ENABLED": False,
           "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024, "ARGON2_PARALLELISM": 1, "REDIS_URL": None,
           "SMTP_HOST": None, "SERVER_NAME": "localhost", "PUBLIC_URL": "http://localhost"}
    cfg.update(extra)
    return create_app(cfg)


def _dispose():
    db.session.remove()
    if db.engine is not None:
        db.engine.dispose()


def test_secret_key_generated_into_data_folder(tmp_path, db_url, monkeypatch):
    monkeypatch.delenv("COLLAB_SECRET_KEY", raising=False)
    data = tmp_path / "data"
    first = _bare_app(data, db_url)
    try:
        path = data / "secret_key"
        assert path.exists()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        key = path.read_text().strip()
        assert len(key) >= 32 and first.config["SECRET_KEY"] == key
        with first.app_context():
            from auth import services

            services.create_user(email="k@example.org", name="K", password=PASSWORD)
            c = first.test_client()
            assert c.post("/login", data={"email": "k@example.org", "password": PASSWORD}).status_code == 302
            cookie = c.get_cookie("session")
    finally:
        _dispose()

    # A restart keeps the key, so sessions survive it.
    second = _bare_app(data, db_url)
    try:
        assert second.config["SECRET_KEY"] == key
        with second.app_context():
            c = second.test_client()
            c.set_cookie("session", cookie.value, domain="localhost")
            assert c.get("/account").status_code == 200
    finally:
        _dispose()

    # Another data folder gets another key.
    third = _bare_app(tmp_path / "other", db_url)
    try:
        assert third.config["SECRET_KEY"] != key
    finally:
        _dispose()


def test_configured_secret_key_is_used_and_not_written(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv("COLLAB_SECRET_KEY", "a configured secret key of decent length")
    data = tmp_path / "data"
    app = _bare_app(data, db_url)
    try:
        assert app.config["SECRET_KEY"] == "a configured secret key of decent length"
        assert not (data / "secret_key").exists()
    finally:
        _dispose()
