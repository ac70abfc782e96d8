"""The reference deployment brought up from the files operators copy (docs/deploy/): nginx.conf, collab.env,
collab-web@.service and collab-media.service. nginx terminates TLS (a certificate made here) in front of web
processes sharing PostgreSQL and Redis, and one media worker; only addresses, ports, paths and the number of web
processes change. Used by tests/test_deployment.py (two web processes, a smoke walk) and bench/scale.py (three,
thousands of clients).

Needs root (nginx binds and writes as root here), nginx, PostgreSQL and Redis: `missing()` says which is absent."""
from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.live_support import fresh_postgres_database, postgres_url, redis_base
from tests.liveserver import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def missing() -> str | None:
    """Why the deployment cannot be brought up on this machine, or None."""
    if os.geteuid() != 0:
        return "the reference deployment runs nginx as root (CI does)"
    if shutil.which("nginx") is None:
        return "nginx is not installed (`make test` installs Debian's nginx-light as root)"
    if not postgres_url() or not redis_base():
        return "needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379"
    return None


def certificate(folder: Path) -> tuple[Path, Path, Path]:
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


def env_file() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "collab.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    return out


def exec_start(unit: str, instance: str = "") -> list[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(DEPLOY / unit)
    argv = shlex.split(parser["Service"]["ExecStart"].replace("%i", instance))
    assert parser["Service"]["EnvironmentFile"] == "/etc/collab/collab.env"
    # /srv/collab/.venv/bin/flask -> this interpreter's flask; /srv/collab/.venv/bin/python -> this interpreter
    if argv[0].endswith("/flask"):
        return [sys.executable, "-m", "flask", *argv[1:]]
    assert argv[0].endswith("/python")
    return [sys.executable, *argv[1:]]


def nginx_conf(tmp: Path, port: int, web: list[int], media: int, crt: Path, key: Path,
               connections: int = 1024) -> Path:
    """The documented site with this machine's ports (as many web processes as `web` lists), inside a main
    configuration of its own (pid, logs and temporary files in `tmp`)."""
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("    server 127.0.0.1:5001;\n    server 127.0.0.1:5002;\n",
                        "".join(f"    server 127.0.0.1:{p};\n" for p in web))
    site = site.replace("server 127.0.0.1:5101;", f"server 127.0.0.1:{media};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    site = site.replace("/etc/letsencrypt/live/collab.example.org/fullchain.pem", str(crt))
    site = site.replace("/etc/letsencrypt/live/collab.example.org/privkey.pem", str(key))
    site = site.replace("collab.example.org", "localhost")
    # not in the documented file: say which web process answered (a test puts two clients on different ones)
    site = site.replace("location / {", "add_header X-Collab-Upstream $upstream_addr always;\n    location / {", 1)
    site = site.replace("location /socket.io/ {", "location /socket.io/ {\n        add_header X-Collab-Upstream "
                                                  "$upstream_addr always;", 1)
    assert all(f"127.0.0.1:{p};" in site for p in web), "docs/deploy/nginx.conf's upstream changed"
    temp = tmp / "nginx-temp"
    temp.mkdir()
    main = f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
worker_rlimit_nofile {max(4096, 4 * connections)};
events {{ worker_connections {connections}; }}
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
    """The processes of one deployment (each in its own process group), their logs, and where it answers."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.logs = tmp, [], []
        self.names: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self.url = self.ca = ""
        self.web: list[int] = []

    def spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        self.logs.append(self.tmp / f"{name}.log")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        self.names[name] = proc
        return proc

    def flask(self, *args: str, input: str | None = None) -> str:
        return subprocess.run([*FLASK, *args], input=input, cwd=ROOT, env=self.env, check=True, capture_output=True,
                              text=True, timeout=300).stdout

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


@contextlib.contextmanager
def deployment(tmp: Path, web_processes: int = 2, seed: Callable[[Deployment], None] = lambda d: None,
               extra_env: dict | None = None, nginx_connections: int = 1024) -> Iterator[Deployment]:
    """Bring a deployment up in `tmp` (a fresh PostgreSQL database, a Redis database of its own), run `seed` once
    the database is migrated and before the processes start, and stop and drop everything afterwards."""
    db_url, drop = fresh_postgres_database(postgres_url())
    ca, crt, key = certificate(tmp)
    port, web, media = free_port(), [free_port() for _ in range(web_processes)], free_port()
    public = f"https://localhost:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "FLASK_"))}
    env.update(env_file())
    env.update({"COLLAB_DATA_DIR": str(tmp / "instance"), "COLLAB_PUBLIC_URL": public,
                "COLLAB_SECRET_KEY": "deployment-test-secret-" + "x" * 40, "COLLAB_DATABASE_URL": db_url,
                "COLLAB_REDIS_URL": f"{redis_base()}/{7 + port % 8}", "COLLAB_MEDIA_URL": f"wss://localhost:{port}/media/",
                "COLLAB_MEDIA_PORT": str(media), "COLLAB_MEDIA_ADDRESSES": "127.0.0.1",
                "COLLAB_MEDIA_UDP_PORTS": "", "COLLAB_MEDIA_PROCESSES": "1", "PYTHONUNBUFFERED": "1",
                # the test's certificate stands in for the site's real one: the web processes reach the worker's
                # /status through nginx, so they must trust it too
                "SSL_CERT_FILE": str(ca), "REQUESTS_CA_BUNDLE": str(ca)})
    env.update(extra_env or {})
    env = {k: v for k, v in env.items() if v != ""}
    d = Deployment(tmp)
    d.env, d.url, d.ca, d.web = env, public, str(ca), web
    try:
        d.flask("db", "upgrade")
        seed(d)
        d.spawn("media", exec_start("collab-media.service"), env)
        for p in web:
            d.spawn(f"web-{p}", exec_start("collab-web@.service", str(p)), env)
        conf = nginx_conf(tmp, port, web, media, crt, key, connections=nginx_connections)
        check = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        d.spawn("nginx", ["nginx", "-c", str(conf)], env)
        deadline = time.monotonic() + 240  # generous upper bound: processes boot slowly on a loaded machine
        up: set[int] = set()
        while len(up) < len(web) and time.monotonic() < deadline:
            for p in web:
                try:
                    if requests.get(f"http://127.0.0.1:{p}/login", timeout=2).status_code == 200:
                        up.add(p)
                except requests.RequestException:
                    pass
            if any(proc.poll() is not None for proc in d.procs):
                raise AssertionError("a process of the deployment exited:\n" + d.tail())
            time.sleep(0.3)
        assert len(up) == len(web), "the web processes did not answer:\n" + d.tail()
        yield d
    finally:
        d.stop()
        drop()
