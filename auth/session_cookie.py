"""What this browser's cookies say about its session: Flask-Login keeps
"<user id>:<secret>" (auth/sessions.py); its public key is the start of the
secret's digest. Apart from auth/sessions.py so that auth/reauth.py, which
sessions calls, can read it too."""
from __future__ import annotations

from flask import has_request_context, session

from collab import validate
from collab.tokens import digest


def parse(session_id: object) -> tuple[int, str] | None:
    """(user id, secret) from a session id, or None when it is not one."""
    if not isinstance(session_id, str):
        return None
    uid, _, raw = session_id.partition(":")
    if not validate.digits(uid) or not raw or len(raw) > 200 or len(uid) > 12:
        return None
    return int(uid), raw


def current_key() -> str | None:
    """The public key of the session this request's cookies carry (None when signed out)."""
    if not has_request_context():
        return None
    parsed = parse(session.get("_user_id"))
    return digest(parsed[1])[:16] if parsed else None
