"""Per-account rate limits on expensive work anyone signed in can ask for (issue 10):
searching (COLLAB_SEARCH_LIMIT), uploading files (COLLAB_UPLOAD_LIMIT) and looking people up in a people
picker (COLLAB_PEOPLE_LIMIT: each look-up reveals names, so an account cannot page through everyone). One
account sending worst-case searches or uploads as fast as it can must not take the
server from everyone else; each limit is shared by the page and the API routes that
do the same work, counted per account (API callers by their token's account), and
answered with 429 and a message saying what was limited.

Redis down (issue 17): with COLLAB_REDIS_URL the counts live in Redis, shared by every process. When Redis does
not answer, limits are counted in this process's memory instead (Flask-Limiter's in-memory fallback for the
page and API limits, `hit` below for the live connections' limits), so signing in and everything else keeps
working, still limited, per process; Flask-Limiter goes back to Redis once it answers again (it checks with
back-off), `hit` after RETRY_SECONDS."""
from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from collab.extensions import limiter

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0          # how long `hit` counts in memory before asking Redis again
REDIS_TIMEOUT = 1.0          # seconds a rate-limit look-up waits for Redis before falling back


def configure(app: Flask) -> None:
    """Settings for Flask-Limiter, before `limiter.init_app`: Redis (when configured) with short timeouts,
    and counting in memory while it does not answer."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": REDIS_TIMEOUT,
                                                            "socket_timeout": REDIS_TIMEOUT})
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)


class _Fallback:
    """This process's own counts, used by `hit` while the shared storage does not answer."""

    def __init__(self) -> None:
        self.limiter = FixedWindowRateLimiter(MemoryStorage())
        self.until = 0.0     # monotonic time before which the shared storage is not asked


_fallback = _Fallback()


def hit(item: RateLimitItem, *identifiers: str) -> tuple[bool, float]:
    """Count one hit of `item` for `identifiers`: (allowed, reset time as a Unix time). Uses the shared
    storage (Redis) when it answers, else this process's memory (logged once per outage)."""
    if time.monotonic() >= _fallback.until:
        try:
            shared = limiter.limiter
            ok = shared.hit(item, *identifiers)
            if _fallback.until:
                log.info("rate-limit storage answers again: live limits are shared again")
                _fallback.until = 0.0
            return ok, (time.time() if ok else shared.get_window_stats(item, *identifiers).reset_time)
        except Exception as exc:  # noqa: BLE001 - any storage error: count in memory instead
            if _fallback.until == 0.0:
                log.warning("rate-limit storage unreachable (%s): counting live limits in this process's "
                            "memory until it answers", exc)
            _fallback.until = time.monotonic() + RETRY_SECONDS
            return _memory_hit(item, *identifiers)
    return _memory_hit(item, *identifiers)


def _memory_hit(item: RateLimitItem, *identifiers: str) -> tuple[bool, float]:
    ok = _fallback.limiter.hit(item, *identifiers)
    return ok, (time.time() if ok else _fallback.limiter.get_window_stats(item, *identifiers).reset_time)


def account_key() -> str:
    """The signed-in account (page session or API token), else the address."""
    user = g.get("api_user")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user
    return f"acct:{user.id}" if user is not None else get_remote_address()


def _search_limit() -> str:
    return current_app.config["SEARCH_LIMIT"]


def _upload_limit() -> str:
    return current_app.config["UPLOAD_LIMIT"]


def _people_limit() -> str:
    return current_app.config["PEOPLE_LIMIT"]


def _no_files() -> bool:
    return not any(f and f.filename for f in request.files.values())


search_limit = limiter.shared_limit(
    _search_limit, scope="search", key_func=account_key,
    error_message="Too many searches from your account in a short time: please wait a minute and search again.")

upload_limit = limiter.shared_limit(
    _upload_limit, scope="upload", key_func=account_key, exempt_when=_no_files,
    error_message="Too many files uploaded from your account in a short time: please wait a minute and try again.")

people_limit = limiter.shared_limit(
    _people_limit, scope="people", key_func=account_key,
    error_message="Too many look-ups of people from your account in a short time: please wait a minute.")
