"""Readiness checks: what `/readyz` and the administrators' System page report.

Why a registry: each check is one function taking the app and returning a `Result`; adding one (say,
"the media supervisor is in a crash loop") is one decorated function here or in the package that knows:

    @health.check("media_supervisor", critical=False)
    def _supervisor(app) -> health.Result:
        return health.Result(ok=..., detail="...")

A *critical* check failing makes the process not ready (503: a load balancer stops sending it people);
a non-critical one (search, media workers) marks it "degraded" but still ready, because people can read
and post while meetings or search are down. Every check runs in its own thread with a time limit
(`TIMEOUT`), so a database or worker that hangs makes its check fail, not the probe hang.
"""
from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import redis
from flask import Flask
from sqlalchemy import text

from collab.extensions import db
from media import supervisor
from search.app_state import state as search_state
from search.indexer import outbox_size

TIMEOUT = 3.0                    # seconds each check may take at most
DISK_MIN_FREE = 512 * 1024 ** 2  # bytes free in the data folder below which the process is not ready
OUTBOX_BACKLOG_WARN = 10_000     # index changes waiting beyond which search is reported behind


@dataclass
class Result:
    ok: bool
    detail: str = ""
    data: dict = field(default_factory=dict)


@dataclass
class Check:
    name: str
    fn: Callable[[Flask], Result]
    critical: bool


CHECKS: dict[str, Check] = {}


def check(name: str, *, critical: bool) -> Callable:
    """Register `fn(app) -> Result` as the readiness check `name`."""
    def register(fn: Callable[[Flask], Result]) -> Callable[[Flask], Result]:
        CHECKS[name] = Check(name, fn, critical)
        return fn
    return register


def _run_one(app: Flask, c: Check) -> Result:
    with app.app_context():
        try:
            return c.fn(app)
        except Exception as err:  # noqa: BLE001 - a check that raises has failed; say how
            return Result(False, f"{type(err).__name__}: {str(err)[:200]}")
        finally:
            db.session.remove()


CACHE_SECONDS = 2.0  # /readyz is open to anyone, so checks run at most every CACHE_SECONDS per process


def run_cached(app: Flask) -> dict:
    """`run`, or its report from less than CACHE_SECONDS ago (probes from many balancers, or an attacker
    asking in a loop, cost one set of checks per interval)."""
    now = time.monotonic()
    at, report = app.extensions.get("collab_health_last", (0.0, None))
    if report is None or now - at > CACHE_SECONDS:
        report = run(app)
        app.extensions["collab_health_last"] = (time.monotonic(), report)
    return report


def run(app: Flask, timeout: float = TIMEOUT) -> dict:
    """Every check, in parallel, each bounded by `timeout`; {"status", "ready", "checks": {name: {...}}}."""
    checks = list(CHECKS.values())
    pool = ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="readyz")
    started = time.monotonic()
    futures = {c.name: pool.submit(_run_one, app, c) for c in checks}
    out: dict[str, dict] = {}
    for c in checks:
        left = max(0.0, timeout - (time.monotonic() - started))
        try:
            res = futures[c.name].result(timeout=left)
        except FutureTimeout:
            res = Result(False, f"no answer within {timeout:g} s")
        out[c.name] = {"ok": res.ok, "critical": c.critical, "detail": res.detail, **res.data}
    pool.shutdown(wait=False, cancel_futures=True)
    ready = all(v["ok"] for v in out.values() if v["critical"])
    status = "ok" if all(v["ok"] for v in out.values()) else ("degraded" if ready else "unavailable")
    return {"status": status, "ready": ready, "checks": out}


# -- the checks ---------------------------------------------------------------------------------------

@check("database", critical=True)
def _database(app: Flask) -> Result:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return Result(True, db.engine.dialect.name)


@check("redis", critical=True)
def _redis(app: Flask) -> Result:
    url = app.config.get("REDIS_URL")
    if not url:
        return Result(True, "not configured")
    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT - 0.5, socket_connect_timeout=TIMEOUT - 0.5)
    try:
        client.ping()
    finally:
        client.close()
    return Result(True, "answers")


@check("search", critical=False)
def _search(app: Flask) -> Result:
    st = search_state(app)
    h = st.backend.health()
    waiting = outbox_size()
    rebuilding = st.indexer.rebuilding()
    data = {"backend": st.backend.name, "documents": h.documents, "outbox": waiting, "rebuilding": rebuilding}
    if not h.ok:
        return Result(False, f"index: {h.reason}", data)
    if waiting > OUTBOX_BACKLOG_WARN:
        return Result(False, f"{waiting} index changes waiting", data)
    return Result(True, "rebuilding" if rebuilding else "index ok", data)


def media_http_url(ws_url: str, path: str) -> str:
    """The worker's plain-HTTP address for `path` (its signalling port answers both)."""
    parts = urlsplit(ws_url)
    return urlunsplit(("https" if parts.scheme == "wss" else "http", parts.netloc, parts.path.rstrip("/") + path,
                       "", ""))


def probe_media(ws_url: str, timeout: float = TIMEOUT - 0.5) -> tuple[bool, str]:
    """Ask one media worker's `/readyz` (no secret needed, says only ready or not)."""
    try:
        with urllib.request.urlopen(media_http_url(ws_url, "/readyz"), timeout=timeout) as resp:
            body = json.loads(resp.read(4096) or b"{}")
            return bool(body.get("ready", resp.status == 200)), "ready"
    except urllib.error.HTTPError as err:
        return False, f"answered {err.code}"
    except Exception as err:  # noqa: BLE001 - unreachable, refused, timed out: not ready
        return False, f"unreachable ({type(err).__name__})"


@check("media", critical=False)
def _media(app: Flask) -> Result:
    urls: list[str] = list(app.config.get("MEDIA_URLS") or [])
    workers = {}
    for url in urls:
        ok, why = probe_media(url)
        workers[url] = {"ok": ok, "detail": why}
    up = sum(1 for w in workers.values() if w["ok"])
    return Result(up == len(urls) and bool(urls), f"{up} of {len(urls)} media workers ready", {"workers": workers})


@check("disk", critical=True)
def _disk(app: Flask) -> Result:
    usage = shutil.disk_usage(app.config["DATA_DIR"])
    data = {"free_bytes": usage.free, "total_bytes": usage.total}
    if usage.free < DISK_MIN_FREE:
        return Result(False, f"only {usage.free // 1024 ** 2} MB free in the data folder", data)
    return Result(True, f"{usage.free // 1024 ** 3} GB free", data)


@check("media_supervisor", critical=False)
def _media_supervisor(app: Flask) -> Result:
    """The embedded worker's supervisor (media/supervisor.py): a crash loop or a failed self-test is reported here
    and on the System page, while meetings tell people they are unavailable instead of handing out tokens."""
    st = supervisor.state(app.config["DATA_DIR"])
    data = {k: st[k] for k in ("state", "restarts", "quick_failures", "last_exit", "backing_off_since", "port_taken")
            if k in st}
    if st.get("state") == "unknown":
        return Result(True, "no embedded media worker in this data folder", data)
    why = supervisor.unavailable(app.config["DATA_DIR"])
    if why:
        return Result(False, why, data)
    return Result(True, f"{st.get('state')}, {st.get('restarts', 0)} restarts", data)

