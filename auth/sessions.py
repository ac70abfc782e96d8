"""Server-side sessions: one `user_sessions` row per signed-in browser.

Flask-Login keeps "<user id>:<secret>" in the session cookie (and in the
remember-me cookie); only the secret's SHA-256 is stored. A session is live
while its row is not ended, the account is active, the account's
`session_token` has not been rotated since (rotation ends every session) and it
has not been idle longer than COLLAB_IDLE_TIMEOUT_HOURS ("keep me signed in"
sessions are exempt), nor older than COLLAB_REMEMBER_DAYS (every session).

Ending a session (from account settings, by signing out, or because the
password or two-step sign-in changed) also disconnects its Socket.IO
connections on every server process: the functions here queue `account.changed`,
which rooms/revocation.py acts on after the commit.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from flask import current_app, has_request_context, request, session
from flask_login import login_user
from sqlalchemy import delete, func, or_, select

from auth import audit, mfa_policy, reauth
from auth import permissions as perm
from auth.account_models import UserSession
from auth.models import User
from auth.session_cookie import current_key, parse  # noqa: F401  (current_key: asked as sessions.current_key too)
from collab import events, validate
from collab.db import utcnow
from collab.errors import Invalid, NotFound
from collab.extensions import db
from collab.tokens import digest

TOUCH_EVERY = timedelta(seconds=60)   # last-seen is written at most this often per session


def generation(user: User) -> str:
    return digest(user.session_token)[:16]


def idle_limit() -> timedelta:
    return timedelta(hours=float(current_app.config.get("IDLE_TIMEOUT_HOURS", 12)))


def remember_limit() -> timedelta:
    return timedelta(days=float(current_app.config.get("REMEMBER_DAYS", 30)))


def _client() -> tuple[str | None, str | None]:
    if not has_request_context():
        return None, None
    return request.remote_addr, (request.user_agent.string or "")[:300] or None


# -- starting and loading -------------------------------------------------------------------

def sign_in(user: User, *, remember: bool = False) -> None:
    """Start a new server-side session for `user` in this browser and sign the browser in to it
    (Flask-Login's login_user puts `User.get_id()`, the new session's id, in the cookies)."""
    for key in [k for k in session if k.startswith("mfa_")]:
        session.pop(key, None)
    user.login_id = start(user, remember=remember)
    login_user(user, remember=remember)


def start(user: User, *, remember: bool = False) -> str:
    """Record a new session and return the id Flask-Login keeps in the cookies."""
    raw = secrets.token_urlsafe(32)
    ip, ua = _client()
    db.begin_write()
    fresh = db.session.get(User, user.id)
    rec = UserSession(user_id=user.id, token_hash=digest(raw), generation=generation(fresh or user),
                      remember=remember, ip=ip, user_agent=ua)
    db.session.add(rec)
    db.session.commit()
    return f"{user.id}:{raw}"


def _expired(rec: UserSession, now: datetime) -> str | None:
    """Every session ends COLLAB_REMEMBER_DAYS after sign-in at the latest; one not kept
    with "keep me signed in" also ends after COLLAB_IDLE_TIMEOUT_HOURS unused."""
    if now - rec.created_at > remember_limit():
        return "expired"
    if not rec.remember and now - rec.last_seen_at > idle_limit():
        return "idle"
    return None


def _live_record(user: User, rec: UserSession | None, *, touch: bool) -> bool:
    """Check a session row of `user`; end it if it timed out; refresh last-seen."""
    if rec is None or rec.user_id != user.id or rec.ended_at is not None:
        return False
    if not user.active or rec.generation != generation(user):
        return False
    now = utcnow()
    why = _expired(rec, now)
    if why:
        _end_ids(user.id, [rec.id], why)
        return False
    if touch and now - rec.last_seen_at > TOUCH_EVERY:
        ip, ua = _client()
        db.begin_write()
        row = db.session.get(UserSession, rec.id, populate_existing=True)
        if row is not None and row.ended_at is None:
            row.last_seen_at = now
            if ip and request.path and not request.path.startswith("/socket.io"):
                row.ip, row.user_agent = ip, ua or row.user_agent
        db.session.commit()
    return True


def load(session_id: str) -> User | None:
    """Flask-Login's user loader (session cookie and remember-me cookie alike)."""
    parsed = parse(session_id)
    if parsed is None:
        return None
    uid, raw = parsed
    rec = db.session.scalar(select(UserSession).where(UserSession.token_hash == digest(raw)))
    user = db.session.get(User, uid)
    if user is None or not _live_record(user, rec, touch=True):
        return None
    return user


def _by_key(user_id: int, key: str) -> UserSession | None:
    if not key or len(key) != 16:
        return None
    return db.session.scalar(select(UserSession).where(
        UserSession.user_id == user_id, func.substr(UserSession.token_hash, 1, 16) == key))


def connection_key(user: User) -> str | None:
    """For a Socket.IO connection opened with a browser session: the session's key,
    or None when the session may not be used for live updates (ended, or the account
    must first set up two-step sign-in)."""
    key = current_key()
    if key is None or not is_live_key(user, key):
        return None
    return key


def is_live_key(user: User, key: str) -> bool:
    """Is the session named `key` still live? Asked by live connections on every event."""
    if not _live_record(user, _by_key(user.id, key), touch=True):
        return False
    return not mfa_policy.must_enrol(user)


# -- listing and ending -----------------------------------------------------------------------

def live_sessions(user: User) -> list[UserSession]:
    now = utcnow()
    gen = generation(user)
    rows = db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None), UserSession.generation == gen)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))
    return [r for r in rows if not _expired(r, now)]


def _end_ids(user_id: int, ids: list[int], reason: str) -> int:
    """End the sessions with these ids in their own transaction; disconnects follow the commit."""
    db.begin_write()
    n = _end_in_tx(user_id, ids, reason)
    db.session.commit()
    return n


def _end_in_tx(user_id: int, ids: list[int], reason: str) -> int:
    now = utcnow()
    n = 0
    for rec in db.session.scalars(select(UserSession).where(UserSession.id.in_(ids), UserSession.user_id == user_id,
                                                            UserSession.ended_at.is_(None))):
        rec.ended_at, rec.end_reason = now, reason[:30]
        events.queue(db.session, "account.changed", {"user_id": user_id, "reason": "session_ended",
                                                      "stoken": rec.key})
        n += 1
    return n


def rotate_in_tx(user: User) -> None:
    """Inside the caller's write transaction: rotate the account's session token, which ends every
    browser session at once (their generation no longer matches), and queue `account.changed`
    ("signed_out") so that after the commit its cookie connections end on every server process
    (rooms/revocation.py)."""
    user.rotate_session_token()
    events.queue(db.session, "account.changed", {"user_id": user.id, "reason": "signed_out",
                                                  "stoken": generation(user)})


def end_others_in_tx(user: User, *, keep: str | None, reason: str, actor: User | None = None,
                     disconnect: bool = True) -> int:
    """Inside the caller's write transaction: end every session of `user` but the
    one named `keep` (None: all of them). Their live connections are disconnected
    after the commit (unless the caller's change already does that), and the
    change is audited."""
    now = utcnow()
    n = 0
    for rec in db.session.scalars(select(UserSession).where(UserSession.user_id == user.id,
                                                            UserSession.ended_at.is_(None))):
        if keep and rec.key == keep:
            continue
        rec.ended_at, rec.end_reason = now, reason[:30]
        n += 1
    # Cookie connections of any other session (including ones older than these rows) end.
    if disconnect:
        events.queue(db.session, "account.changed", {"user_id": user.id, "reason": "signed_out",
                                                      "stoken": keep or ""})
    if n:
        audit.record("auth.sessions_ended", actor=actor or user, target_type="user", target_id=user.id,
                     detail={"reason": reason, "count": n, "kept_current": bool(keep)})
    return n


def end_session(user: User, session_id: object, *, password: object = None) -> None:
    """The account holder ends one of their sessions (from account settings), after
    confirming their password (auth/reauth.py)."""
    try:
        sid = validate.int_id(session_id, "session_id")
    except Invalid:
        raise NotFound() from None
    rec = db.session.get(UserSession, sid)
    if rec is None or rec.user_id != user.id or rec.ended_at is not None:
        raise NotFound("That session has already ended.")
    reauth.require(user, password, what="sign out another device")
    db.begin_write()
    if _end_in_tx(user.id, [sid], "ended_by_user"):
        audit.record("auth.sessions_ended", actor=user, target_type="user", target_id=user.id,
                     detail={"reason": "ended_by_user", "count": 1, "session_id": sid})
    db.session.commit()


def end_all_others(user: User, *, keep: str | None, password: object = None) -> int:
    reauth.require(user, password, what="sign out everywhere else")
    db.begin_write()
    n = end_others_in_tx(user, keep=keep, reason="ended_by_user")
    db.session.commit()
    return n


def end_all_for(actor: User, target_id: object) -> User:
    """An administrator signs a person out everywhere (their live connections end too)."""
    try:
        tid = validate.int_id(target_id, "user_id")
    except Invalid:
        raise NotFound() from None
    target = db.session.get(User, tid)
    if target is None or not perm.can_manage_account(actor, target):
        raise NotFound()
    db.begin_write()
    end_others_in_tx(target, keep=None, reason="ended_by_administrator", actor=actor)
    db.session.commit()
    return target


def end_current(reason: str = "signed_out") -> None:
    """Signing out: the session in this request's cookies ends (and its live connections)."""
    key = current_key()
    parsed = parse(session.get("_user_id")) if has_request_context() else None
    if key is None or parsed is None:
        return
    rec = _by_key(parsed[0], key)
    if rec is None or rec.ended_at is not None:
        return
    db.begin_write()
    if _end_in_tx(rec.user_id, [rec.id], reason):
        audit.record("auth.logout", actor=db.session.get(User, rec.user_id), target_type="user",
                     target_id=rec.user_id)
    db.session.commit()


def prune(now: datetime | None = None) -> int:
    """Forget sessions that ended (or could no longer be used) over 90 days ago:
    their addresses and browsers are not kept for ever. Run by the daily job."""
    cutoff = (now or utcnow()) - max(timedelta(days=90), remember_limit())
    db.begin_write()
    n = db.session.execute(delete(UserSession).where(or_(UserSession.ended_at < cutoff,
                                                         UserSession.last_seen_at < cutoff))).rowcount
    db.session.commit()
    return n or 0


# -- describing a session -------------------------------------------------------------------------

_BROWSERS = [("Edge", r"Edg(?:e|A|iOS)?/"), ("Opera", r"OPR/"), ("Samsung Internet", r"SamsungBrowser/"),
             ("Firefox", r"Firefox/|FxiOS/"), ("Chrome", r"Chrome/|CriOS/"), ("Safari", r"Version/[\d.]+.*Safari/")]
_SYSTEMS = [("iPhone", r"iPhone"), ("iPad", r"iPad"), ("Android", r"Android"), ("Windows", r"Windows"),
            ("ChromeOS", r"CrOS"), ("macOS", r"Macintosh|Mac OS X"), ("Linux", r"Linux|X11")]


def device(user_agent: str | None) -> str:
    """A readable name for a user agent: "Firefox on Windows", "curl"."""
    ua = user_agent or ""
    if not ua:
        return "Unknown device"
    browser = next((name for name, pat in _BROWSERS if re.search(pat, ua)), None)
    system = next((name for name, pat in _SYSTEMS if re.search(pat, ua)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or f"Browser on {system}"
    first = re.match(r"[A-Za-z][\w.-]{0,40}", ua)
    return first.group(0) if first else "Unknown device"
