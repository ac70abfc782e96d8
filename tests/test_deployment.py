"""The reference deployment (issue 17), brought up from the files operators copy: docs/deploy/nginx.conf,
collab.env, collab-web@.service and collab-media.service. nginx terminates TLS (a certificate made for the test)
in front of two web processes sharing PostgreSQL and Redis and one media worker; the test changes only addresses,
ports and paths. Then a smoke walk through nginx: sign in, post, a live event that crosses the two processes,
search, and a meeting with media over the worker's WebSocket behind /media/.

Needs root (nginx binds and writes as root here), nginx (`make test` installs Debian's when missing), PostgreSQL
and Redis; skipped with the reason otherwise."""
from __future__ import annotations

import asyncio
import configparser
import datetime as dt
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import socketio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from media import net
from media.client import SyntheticParticipant
from media.synthetic import opus_clip, vp8_clip
from tests.live_support import fresh_postgres_database, postgres_url, redis_base, wait_for

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
PASSWORD = "a long enough test passphrase"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signed for localhost: (CA certificate, site certificate, site key)."""
    now = dt.datetime.now(dt.timezone.utc)

    def build(subject, issuer, public, signer, ca: bool):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
        else:
            b = (b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                 .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return b.sign(signer, hashes.SHA256())

    ca_key, site_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Collab test CA")])
    site_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    site = build(site_name, ca_name, site_key.public_key(), ca_key, False)
    ca_pem, crt, key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    crt.write_bytes(site.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(site_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_pem, crt, key


def _env_file() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "collab.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    return out


def _exec_start(unit: str, instance: str = "") -> list[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(DEPLOY / unit)
    argv = shlex.split(parser["Service"]["ExecStart"].replace("%i", instance))
    assert parser["Service"]["EnvironmentFile"] == "/etc/collab/collab.env"
    # /srv/collab/.venv/bin/flask -> this interpreter's flask; /srv/collab/.venv/bin/python -> this interpreter
    if argv[0].endswith("/flask"):
        return [sys.executable, "-m", "flask", *argv[1:]]
    assert argv[0].endswith("/python")
    return [sys.executable, *argv[1:]]


def _nginx_conf(tmp: Path, port: int, web: list[int], media: int, crt: Path, key: Path) -> Path:
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("server 127.0.0.1:5001;", f"server 127.0.0.1:{web[0]};")
    site = site.replace("server 127.0.0.1:5002;", f"server 127.0.0.1:{web[1]};")
    site = site.replace("server 127.0.0.1:5101;", f"server 127.0.0.1:{media};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{_free_port()};")
    site = site.replace("/etc/letsencrypt/live/collab.example.org/fullchain.pem", str(crt))
    site = site.replace("/etc/letsencrypt/live/collab.example.org/privkey.pem", str(key))
    site = site.replace("collab.example.org", "localhost")
    # test only: say which web process answered, so the test can put two clients on different ones
    site = site.replace("location / {", "add_header X-Collab-Upstream $upstream_addr always;\n    location / {", 1)
    site = site.replace("location /socket.io/ {", "location /socket.io/ {\n        add_header X-Collab-Upstream "
                                                  "$upstream_addr always;", 1)
    temp = tmp / "nginx-temp"
    temp.mkdir()
    main = f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{site}
}}
"""
    path = tmp / "nginx.conf"
    path.write_text(main)
    return path


class Deployment:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.logs = tmp, [], []

    def spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        self.logs.append(self.tmp / f"{name}.log")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in self.logs if p.exists())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def deployment(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the reference deployment test runs nginx as root (CI does)")
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (`make test` installs Debian's nginx-light as root)")
    pg, redis_url = postgres_url(), redis_base()
    if not pg or not redis_url:
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379")
    db_url, drop = fresh_postgres_database(pg)
    ca, crt, key = _certificate(tmp_path)
    port, web, media = _free_port(), [_free_port(), _free_port()], _free_port()
    public = f"https://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "FLASK_"))}
    env.update(_env_file())
    env.update({"COLLAB_DATA_DIR": str(tmp_path / "instance"), "COLLAB_PUBLIC_URL": public,
                "COLLAB_SECRET_KEY": "deployment-test-secret-" + "x" * 40, "COLLAB_DATABASE_URL": db_url,
                "COLLAB_REDIS_URL": f"{redis_url}/{7 + port % 8}", "COLLAB_MEDIA_URL": f"wss://localhost:{port}/media/",
                "COLLAB_MEDIA_PORT": str(media), "COLLAB_MEDIA_ADDRESSES": "127.0.0.1",
                "COLLAB_MEDIA_UDP_PORTS": "", "COLLAB_MEDIA_PROCESSES": "1", "PYTHONUNBUFFERED": "1",
                # the test's certificate stands in for the site's real one: the web processes reach the worker's
                # /status through nginx, so they must trust it too
                "SSL_CERT_FILE": str(ca), "REQUESTS_CA_BUNDLE": str(ca)})
    env = {k: v for k, v in env.items() if v != ""}
    d = Deployment(tmp_path)
    d.env, d.url, d.ca, d.web = env, public, str(ca), web
    try:
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        for email, name in (("chair@example.org", "Chris Chair"), ("member@example.org", "Mo Member")):
            subprocess.run([*flask, "users", "create", "--email", email, "--name", name], input=PASSWORD + "\n",
                           cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=300)
        d.tokens = [subprocess.run([*flask, "tokens", "create", "--email", e], cwd=ROOT, env=env, check=True,
                                   capture_output=True, text=True, timeout=300).stdout.strip().splitlines()[-1]
                    for e in ("chair@example.org", "member@example.org")]
        d.spawn("media", _exec_start("collab-media.service"), env)
        for p in web:
            d.spawn(f"web-{p}", _exec_start("collab-web@.service", str(p)), env)
        conf = _nginx_conf(tmp_path, port, web, media, crt, key)
        check = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        d.spawn("nginx", ["nginx", "-c", str(conf)], env)
        deadline = time.monotonic() + 240  # generous upper bound: processes boot slowly on a loaded machine
        up = set()
        while len(up) < 2 and time.monotonic() < deadline:
            for p in web:
                try:
                    if requests.get(f"http://127.0.0.1:{p}/login", timeout=2).status_code == 200:
                        up.add(p)
                except requests.RequestException:
                    pass
            if any(proc.poll() is not None for proc in d.procs):
                raise AssertionError("a process of the deployment exited:\n" + d.tail())
            time.sleep(0.3)
        assert len(up) == 2, "the web processes did not answer:\n" + d.tail()
        yield d
    finally:
        d.stop()
        drop()


def _session(d) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over the session's own CA
    s.verify = d.ca
    return s


def _sign_in(d, email: str) -> requests.Session:
    s = _session(d)
    page = s.get(d.url + "/login", timeout=30)
    assert page.status_code == 200 and page.url.startswith("https://localhost")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = s.post(d.url + "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf}, timeout=30,
               allow_redirects=False, headers={"Referer": d.url + "/login"})  # (as a browser: CSRF over TLS)
    assert r.status_code in (302, 303), (s.cookies.keys(), re.search(r"<p>(.*?)</p>", r.text, re.S).group(1))
    assert s.cookies.get("session") and any(c.secure for c in s.cookies)  # behind TLS: secure cookies
    return s


def _cookie_for_upstream(d, want: int) -> str:
    """A session-cookie value that nginx's sticky hash sends to the web process on port `want`."""
    s = _session(d)
    for i in range(200):
        value = f"probe-{i}"
        r = s.get(d.url + "/login", headers={"Cookie": f"session={value}"}, timeout=30)
        if r.headers.get("X-Collab-Upstream", "").endswith(f":{want}"):
            return value
    raise AssertionError(f"no cookie value reached port {want}")


def test_reference_deployment_smoke_walk_through_nginx(deployment):
    d = deployment
    # plain HTTP is sent to HTTPS by the documented config; TLS answers with the site
    chair = _sign_in(d, "chair@example.org")
    home = chair.get(d.url + "/", timeout=30)
    assert home.status_code == 200 and "Chris Chair" in home.text

    h = [{"Authorization": f"Bearer {t}"} for t in d.tokens]
    api = _session(d)
    member_id = api.get(d.url + "/api/v1/me", headers=h[1], timeout=30).json()["id"]
    room = api.post(d.url + "/api/v1/rooms", json={"name": "Deployment check", "visibility": "private"},
                    headers=h[0], timeout=30).json()
    api.post(d.url + f"/api/v1/rooms/{room['id']}/members", json={"user_id": member_id}, headers=h[0], timeout=30)
    thread = api.post(d.url + f"/api/v1/rooms/{room['id']}/threads", json={"title": "Smoke", "body": "Opening"},
                      headers=h[0], timeout=30).json()

    # a live event crosses the two processes: the member's connection is held by one, the post made on the other
    listen, post_on = d.web
    http = _session(d)
    received = []
    sio = socketio.Client(http_session=http)
    sio.on("post.created", lambda data: received.append(data))
    cookie = _cookie_for_upstream(d, listen)
    sio.connect(d.url, auth={"token": d.tokens[1]}, headers={"Cookie": f"session={cookie}"},
                transports=["websocket"], wait_timeout=30)
    try:
        assert sio.call("subscribe", {"room_id": room["id"]}, timeout=30)["ok"]
        poster = _session(d)
        poster.headers["Cookie"] = f"session={_cookie_for_upstream(d, post_on)}"
        r = poster.post(d.url + f"/api/v1/threads/{thread['id']}/posts", headers=h[0], timeout=30,
                        json={"body": "Custody suite visits resume in March", "client_id": "smoke-1"})
        assert r.status_code == 201 and r.headers["X-Collab-Upstream"].endswith(f":{post_on}")
        assert wait_for(lambda: any(e["post"]["body"].startswith("Custody suite") for e in received), timeout=10)
    finally:
        sio.disconnect()

    # search (PostgreSQL full text, shared by both processes) finds it through nginx
    found = wait_for(lambda: api.get(d.url + "/api/v1/search", params={"q": "custody"}, headers=h[1],
                                     timeout=30).json()["results"], timeout=15, interval=0.3)
    assert found and found[0]["thread_id"] == thread["id"]

    # a meeting with media: tokens from the web app, signalling through nginx's /media/, media over UDP
    meeting = api.post(d.url + f"/api/v1/rooms/{room['id']}/meetings", json={"title": "Smoke meeting"},
                       headers=h[0], timeout=30).json()
    joins = [api.post(d.url + f"/api/v1/meetings/{meeting['id']}/token", headers=x, timeout=30).json() for x in h]
    assert all(j["url"] == f"wss://localhost:{d.url.rsplit(':', 1)[1]}/media/" for j in joins), joins
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = d.ca  # the synthetic participants' TLS (websockets' default context)
    try:
        asyncio.run(_meeting_with_media(joins))
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved


async def _meeting_with_media(joins) -> None:
    net.use_addresses(["127.0.0.1"])
    video, audio = vp8_clip(), opus_clip()
    chair = await SyntheticParticipant(joins[0]["url"], joins[0]["token"], video=video, audio=audio,
                                       speaking=True).start()
    member = await SyntheticParticipant(joins[1]["url"], joins[1]["token"], video=video, audio=audio).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (chair.me and member.video_frames_from(chair.me["id"]) > 5
                                                   and member.audio_frames_from(chair.me["id"]) > 10):
            await asyncio.sleep(0.1)
        assert chair.me and member.video_frames_from(chair.me["id"]) > 5, "no video reached the member"
        assert member.audio_frames_from(chair.me["id"]) > 10, "no audio reached the member"
    finally:
        await chair.close()
        await member.close()
