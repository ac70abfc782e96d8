"""Telling a media worker to drop someone, or to end a meeting, without the worker touching the database.

The web app decides who loses access (rooms/policy.py, the revocation path); the worker only obeys a
signed control message. The message travels over the worker's own HTTP endpoint (the one that answers
`/status`), as a GET whose query carries the message and its signature:

    GET /control?m=<urlsafe base64 of the JSON message>&s=<hex HMAC-SHA256 of m>

    {"op": "drop", "meeting": 12, "account": 34, "reason": "removed", "message": "…", "at": 1733490000.1,
     "nonce": "…"}
    {"op": "end",  "meeting": 12, "reason": "ended", "message": "…", "at": …, "nonce": …}

The key is derived from SECRET_KEY (`control_key`), shared by the web app and the worker like the
meeting-token key. The worker refuses a bad signature, a message older than MAX_AGE seconds and a nonce
it has seen. On "drop" it closes that account's sessions in the meeting (the page is told `message`) and
refuses any meeting token for them issued at or before `at`; on "end" it closes everyone and refuses
every token of that meeting issued at or before `at`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.request
from urllib.parse import urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

SALT = b"collab.media.control"
MAX_AGE = 30.0     # seconds a control message stays acceptable (clocks of web and worker hosts agree)
TIMEOUT = 2.0


def control_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("a secret key is required to sign media control messages")
    return hmac.new(secret_key.encode(), SALT, hashlib.sha256).digest()


def sign(secret_key: str, message: dict) -> tuple[str, str]:
    """(m, s): the encoded message and its signature, as sent in the query."""
    m = base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).decode()
    s = hmac.new(control_key(secret_key), m.encode(), hashlib.sha256).hexdigest()
    return m, s


def control_url(ws_url: str, secret_key: str, message: dict) -> str:
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    m, s = sign(secret_key, message)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/control", urlencode({"m": m, "s": s}), ""))


def _send(ws_url: str, secret_key: str, message: dict) -> bool:
    message = dict(message, at=time.time(), nonce=secrets.token_hex(12))
    try:
        with urllib.request.urlopen(control_url(ws_url, secret_key, message), timeout=TIMEOUT) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - a worker that does not answer has no sessions to drop; logged
        log.warning("media worker %s did not take %s for meeting %s", ws_url, message["op"], message["meeting"])
        return False


def drop(ws_url: str, secret_key: str, *, meeting_id: int, account_id: int, reason: str, message: str) -> bool:
    """Close `account_id`'s media sessions in `meeting_id` now, and refuse their older tokens."""
    return _send(ws_url, secret_key, {"op": "drop", "meeting": int(meeting_id), "account": int(account_id),
                                      "reason": reason, "message": message})


def end(ws_url: str, secret_key: str, *, meeting_id: int, reason: str, message: str) -> bool:
    """Close every media session of `meeting_id` and refuse every token minted for it so far."""
    return _send(ws_url, secret_key, {"op": "end", "meeting": int(meeting_id), "reason": reason,
                                      "message": message})
