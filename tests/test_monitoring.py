"""Monitoring (issue 17): /healthz, /readyz, /metrics, JSON logs with request ids, the System page,
and the media worker's own health routes, all against the real app and a real media worker."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from collab import health, logs
from rooms.meetings import media_control
from rooms.meetings import services as meeting_services
from tests.conftest import PASSWORD
from tests.test_media_cluster import node  # noqa: F401  (the fixture: a media node of two processes)
from tests.test_media_signalling import SECRET, with_worker

ROOT = Path(__file__).resolve().parent.parent
FAR = {"REMOTE_ADDR": "203.0.113.7"}   # an address on the internet: not loopback, not allowed


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# -- /healthz and /readyz ----------------------------------------------------------------------------------

def test_healthz_answers_anyone_with_nothing_but_ok(client):
    r = client.get("/healthz", environ_base=FAR)
    assert r.status_code == 200 and r.json == {"status": "ok"}
    assert r.headers["Cache-Control"] == "no-store"


def test_readyz_gives_detail_to_loopback_and_only_the_status_to_others(client):
    near = client.get("/readyz")
    assert set(near.json["checks"]) >= {"database", "redis", "search", "media", "disk"}
    assert near.json["checks"]["database"]["ok"] is True
    assert near.json["checks"]["redis"]["detail"] == "not configured"
    # no media worker runs in this test: reported, but the site still serves pages
    assert near.json["checks"]["media"]["ok"] is False and near.json["ready"] is True
    assert near.status_code == 200 and near.json["status"] == "degraded"
    far = client.get("/readyz", environ_base=FAR)
    assert far.status_code == 200
    assert far.json == {"status": "degraded", "ready": True}


def test_readyz_detail_for_a_site_administrator_and_allowed_networks_only(app, client, make, auth):
    member = make.user()
    admin = make.user(admin=True)
    auth.login(member)
    assert "checks" not in client.get("/readyz", environ_base=FAR).json
    auth.logout()
    auth.login(admin)
    assert "checks" in client.get("/readyz", environ_base=FAR).json
    auth.logout()
    app.config["HEALTH_ALLOW"] = "198.51.100.0/24, 203.0.113.7"
    assert "checks" in client.get("/readyz", environ_base=FAR).json
    assert "checks" not in client.get("/readyz", environ_base={"REMOTE_ADDR": "192.0.2.1"}).json


def test_a_failing_critical_check_makes_readyz_503(app, client, tmp_path):
    """A real failure: Redis configured at a port where nothing listens."""
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json["ready"] is False and r.json["status"] == "unavailable"
    assert r.json["checks"]["redis"]["ok"] is False and "ConnectionError" in r.json["checks"]["redis"]["detail"]
    assert client.get("/readyz", environ_base=FAR).json == {"status": "unavailable", "ready": False}
    assert client.get("/healthz").status_code == 200   # alive all the same


def test_a_check_is_one_registered_function_and_a_hung_one_is_cut_off(app):
    """The registry another engineer adds to (e.g. the media supervisor's crash loop)."""

    @health.check("slow_thing", critical=False)
    def _slow(_app):
        time.sleep(5)
        return health.Result(True)

    @health.check("broken_thing", critical=True)
    def _broken(_app):
        raise RuntimeError("the supervisor gave up")

    try:
        started = time.monotonic()
        report = health.run(app, timeout=1.0)
        assert time.monotonic() - started < 4.5   # bounded by the timeout, not by the check (upper bound only)
        assert report["checks"]["slow_thing"] == {"ok": False, "critical": False, "detail": "no answer within 1 s"}
        assert report["checks"]["broken_thing"]["detail"] == "RuntimeError: the supervisor gave up"
        assert report["ready"] is False
    finally:
        health.CHECKS.pop("slow_thing")
        health.CHECKS.pop("broken_thing")


def test_a_malformed_allow_list_stops_start_up_naming_the_setting(monkeypatch, tmp_path):
    from collab import config

    monkeypatch.setenv("COLLAB_METRICS_ALLOW", "10.0.0.0/8, not-an-address")
    with pytest.raises(ValueError, match="COLLAB_METRICS_ALLOW: 'not-an-address'"):
        config.from_env({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x"})


# -- /metrics ----------------------------------------------------------------------------------------------

def test_metrics_only_to_loopback_and_the_allowed_networks(app, client, make, auth):
    admin = make.user(admin=True)
    auth.login(admin)
    far = client.get("/metrics", environ_base=FAR)
    assert far.status_code == 403 and b"collab_" not in far.data   # signing in as an administrator is no key
    auth.logout()
    app.config["METRICS_ALLOW"] = "203.0.113.0/24"
    assert client.get("/metrics", environ_base=FAR).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 403
    ok = client.get("/metrics")
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/plain")


def test_through_a_proxy_that_is_not_trusted_loopback_is_no_key(client):
    """nginx on the same host, COLLAB_TRUSTED_PROXIES unset: every request arrives from 127.0.0.1."""
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    assert client.get("/metrics", headers=proxied).status_code == 403
    assert "checks" not in client.get("/readyz", headers=proxied).json
    assert client.get("/healthz", headers=proxied).status_code == 200
    assert client.get("/metrics", headers={"Forwarded": "for=203.0.113.7"}).status_code == 403


def test_metrics_count_what_happens_and_are_all_named_collab(app, client, make, auth):
    before = samples(client.get("/metrics").data.decode())
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    first = make.reply(owner, thread)
    auth.login(owner)
    auth.logout()
    client.post("/login", data={"email": owner.email, "password": "wrong password"})
    auth.login(owner)
    r = client.post(f"/posts/{first.id}/reply", data={"body": "with a picture", "file": (io.BytesIO(png()), "p.png")},
                    content_type="multipart/form-data")
    assert r.status_code == 302
    client.get("/search?q=picture")
    client.get(f"/threads/{thread.id}")
    meeting = meeting_services.start_meeting(owner, room.id)
    meeting_services.end_meeting(owner, meeting.id)
    text = client.get("/metrics").data.decode()
    after = samples(text)
    names = {fam.name for fam in text_string_to_metric_families(text)}
    assert names and all(n.startswith("collab_") for n in names), names

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("collab_logins_total", result="ok") == 2
    assert grew("collab_logins_total", result="failed") == 1
    assert grew("collab_uploads_total") == 1 and grew("collab_upload_bytes_total") == len(png())
    assert grew("collab_search_duration_seconds_count") == 1
    assert grew("collab_meetings_started_total") == 1 and grew("collab_meetings_ended_total") == 1
    assert grew("collab_http_request_duration_seconds_count", endpoint="rooms.thread", method="GET") == 1
    assert after[("collab_search_outbox_backlog", ())] >= 0
    workers = {dict(k[1])["worker"]: v for k, v in after.items() if k[0] == "collab_media_worker_up"}
    assert workers == {u: 0 for u in app.config["MEDIA_URLS"]}   # none runs in this test


def test_metrics_add_up_the_processes_and_forget_dead_ones_connections(tmp_path):
    """Multiprocess mode (several gunicorn workers): two processes count, a third scrapes."""
    folder = tmp_path / "prom"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    prep = {}
    from collab import metrics

    other = {}
    metrics.prepare_multiprocess_dir(other, tmp_path, 5002)   # another `flask serve` on this data folder
    (Path(other["PROMETHEUS_MULTIPROC_DIR"]) / "counter_123.db").write_bytes(b"x")
    (tmp_path / "prometheus" / "5001").mkdir()
    (tmp_path / "prometheus" / "5001" / "counter_99.db").write_bytes(b"x")   # this one's, from its last run
    metrics.prepare_multiprocess_dir(prep, tmp_path, 5001)
    assert prep["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prometheus" / "5001") and not any(
        (tmp_path / "prometheus" / "5001").iterdir())
    assert (tmp_path / "prometheus" / "5002" / "counter_123.db").exists()   # the other's are left alone
    folder.mkdir()
    worker = ("from collab import metrics\n"
              "metrics.LOGINS.labels(result='ok').inc()\n"
              "metrics.SOCKET_CONNECTIONS.inc()\n")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    scrape = subprocess.run([sys.executable, "-c", "from collab import metrics\n"
                             "import sys; sys.stdout.write(metrics.exposition().decode())"],
                            env=env, check=True, timeout=60, capture_output=True, text=True).stdout
    got = samples(scrape)
    assert got[("collab_logins_total", (("result", "ok"),))] == 2
    assert got.get(("collab_socketio_connections", ()), 0) == 0   # both processes are gone


# -- JSON logs and request ids -----------------------------------------------------------------------------

@pytest.fixture
def json_lines(app):
    """The lines COLLAB_LOG_FORMAT=json writes, as the app's own formatter makes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level, old_formats = root.level, [(h, h.formatter) for h in root.handlers]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logs.configure("json")
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for h, f in old_formats:   # pytest's own handlers get their formatter back
            h.setFormatter(f)
        logs.configure("text")


def test_json_lines_per_request_and_event_never_hold_secrets(app, client, make, auth, json_lines):
    owner = make.user()
    room = make.room(owner)
    thread = make.thread(owner, room)
    first = make.reply(owner, thread)
    api_token = make.token(owner)
    auth.login(owner)
    secret_words = "Confidential informant lives at 12 Acacia Avenue"
    assert client.post(f"/posts/{first.id}/reply", data={"body": secret_words}).status_code == 302
    assert client.post(f"/posts/{first.id}/reply", data={"body": "a file", "file": (io.BytesIO(png()), "p.png")},
                       content_type="multipart/form-data").status_code == 302
    client.get(f"/search?q=Acacia&token={api_token}")
    auth.logout()
    client.post("/login", data={"email": owner.email, "password": "Hunter2-wrong-password"})
    client.get("/invite/inv-secret-token-abcdef123456")
    client.get("/api/v1/me", headers={"Authorization": f"Bearer {api_token}"})
    text = json_lines.getvalue()
    for secret in (secret_words, "Acacia", api_token, PASSWORD, "Hunter2-wrong-password",
                   "inv-secret-token-abcdef123456", owner.email):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [x for x in lines if x["logger"] == "collab.requests"]
    assert {"method", "endpoint", "route", "status", "duration_ms", "request_id", "user_id"} <= set(requests[0])
    me = [x for x in requests if x["endpoint"] == "api.me"][0]
    assert me["user_id"] == owner.id and me["status"] == 200
    invite = [x for x in requests if x["endpoint"] == "auth.accept_invite"][0]
    assert invite["route"] == "/invite/<token>"
    events = {x["event"] for x in lines if x["logger"] == "collab.events"}
    assert {"login", "login_failed", "upload"} <= events
    assert len({x["request_id"] for x in requests}) == len(requests)   # one id per request


def test_request_id_is_taken_from_the_caller_when_plain_and_replaced_when_not(client, json_lines):
    r = client.get("/healthz", headers={"X-Request-Id": "lb-42.abc"})
    assert r.headers["X-Request-Id"] == "lb-42.abc"
    forged = 'x", "forged": true, "y": "' + "z" * 100
    r = client.get("/healthz", headers={"X-Request-Id": forged})
    assert r.headers["X-Request-Id"] != forged and len(r.headers["X-Request-Id"]) == 32
    lines = [json.loads(x) for x in json_lines.getvalue().splitlines()]
    assert [x["request_id"] for x in lines if x["logger"] == "collab.requests"][0] == "lb-42.abc"
    assert not any("forged" in x for x in lines)


def test_events_refuse_fields_that_could_hold_secrets():
    with pytest.raises(ValueError):
        logs.event("login", password="x")
    with pytest.raises(ValueError):
        logs.event("upload", body="words")


# -- the media worker --------------------------------------------------------------------------------------

def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_media_worker_health_routes_status_secret_and_request_id(caplog):
    caplog.set_level(logging.INFO, logger="media.worker")

    async def scenario(url):
        base = url.replace("ws://", "http://").rstrip("/")
        assert await asyncio.to_thread(_get, base + "/healthz") == (200, {"ok": True})
        assert await asyncio.to_thread(_get, base + "/readyz") == (200, {"ready": True})
        code, body = await asyncio.to_thread(_get, base + "/status")
        assert code == 403 and body == {}      # detail needs the shared secret
        code, body = await asyncio.to_thread(_get, media_control.status_url(url, SECRET))
        assert code == 200 and {"meetings", "participants", "streams", "cpu_seconds"} <= set(body)
        assert body["cpu_seconds"] > 0

        def drop():
            with logs.bound("web-req-77"):
                return media_control.drop(url, SECRET, meeting_id=5, account_id=6, reason="removed", message="m")

        assert await asyncio.to_thread(drop) is True

    with_worker(scenario)
    assert any("drop for meeting 5 asked by web request web-req-77" in r.getMessage() for r in caplog.records)


# -- the System page ---------------------------------------------------------------------------------------

def test_system_page_for_site_administrators_only(app, client, make, auth):
    org = make.org()
    for who in (make.user(org=org), make.user(org=org, org_admin=True)):   # an organisation admin is no site admin
        auth.login(who)
        assert client.get("/admin/system").status_code == 404
        auth.logout()
    admin = make.user(admin=True)
    auth.login(admin)
    assert b'href="/admin/system"' in client.get("/admin/people").data
    page = client.get("/admin/system").data.decode()
    for heading in ("Checks", "Versions and uptime", "Search index", "Waiting jobs", "Workers", "Disk",
                    "Last backup"):
        assert f">{heading}</h2>" in page
    assert "Python" in page and "SQLite" in page or "PostgreSQL" in page
    assert "No backup recorded" in page


def test_system_page_shows_the_last_backup_and_ignores_a_broken_record(app, client, make, auth):
    folder = Path(app.config["DATA_DIR"]) / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "last.json").write_text(json.dumps({"finished_at": "2026-12-01T03:15:00+00:00",
                                                  "path": "/srv/backups/collab-20261201.tar", "bytes": 5 * 1024 ** 2}))
    auth.login(make.user(admin=True))
    page = client.get("/admin/system").data.decode()
    assert "2026-12-01T03:15:00+00:00" in page and "/srv/backups/collab-20261201.tar" in page and "5.0 MB" in page
    (folder / "last.json").write_text('{"finished_at": "2026-12-0')   # half-written
    page = client.get("/admin/system")
    assert page.status_code == 200 and "No backup recorded" in page.data.decode()


def test_the_sample_grafana_dashboard_asks_only_for_metrics_collab_serves(client):
    import re

    text = client.get("/metrics").data.decode()
    served = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        served |= {name, f"{name}_bucket", f"{name}_count", f"{name}_sum"} if kind == "histogram" else {name}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    asked = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"collab_[a-z_]+", t["expr"])}
    assert asked and asked <= served, asked - served


def test_media_node_of_several_processes_health_routes_and_cpu(node):  # noqa: F811  (the fixture)
    """`python -m media --processes 2`: the node answers /healthz and /readyz itself; CPU in its signed /status
    adds up the shards'."""
    from tests.test_media_cluster import signed_status

    port, _proc = node
    assert _get(f"http://127.0.0.1:{port}/healthz") == (200, {"ok": True})
    assert _get(f"http://127.0.0.1:{port}/readyz") == (200, {"ok": True, "ready": True})
    assert _get(f"http://127.0.0.1:{port}/status")[0] == 403
    assert signed_status(port)["cpu_seconds"] > 0
