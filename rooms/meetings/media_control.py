"""Telling a media worker to drop someone, or to end a meeting, without the worker touching the database.

The web app decides who loses access (rooms/policy.py, the revocation path); the worker only obeys a
signed control message. The message travels over the worker's own HTTP endpoint (the one that answers
`/status`, which is signed the same way), as a GET whose query carries the message and its signature:

    GET /control?m=<urlsafe base64 of the JSON message>&s=<hex HMAC-SHA256(control_key(SECRET_KEY), m)>

    {"op": "drop", "meeting": 12, "account": 34, "reason": "removed", "message": "…", "at": 1733490000.1,
     "nonce": "…"}
    {"op": "end",  "meeting": 12, "reason": "ended", "message": "…", "at": …, "nonce": …}

The protocol (key, encoding, checks) lives in media/control.py, shared with the worker as
media/tokens.py is. The worker refuses a bad signature, a message more than MAX_AGE seconds old and a
nonce it has seen. On "drop" it closes that account's sessions in the meeting (the page is sent
`{"type": "bye", "reason": reason, "message": message}`) and refuses any meeting token for them issued
at or before `at`; on "end" it closes everyone and refuses every token of that meeting issued at or
before `at`.

Call these after the commit and off the request (collab.tasks.spawn): each waits up to TIMEOUT
seconds for the worker.
"""
from __future__ import annotations

import logging
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from collab import logs
from media.control import MAX_AGE, control_key, signed_query

__all__ = ["MAX_AGE", "control_key", "control_url", "drop", "end", "record", "record_stop", "status_url", "unwatch",
           "whep_stop"]

log = logging.getLogger(__name__)

TIMEOUT = 2.0


def _url(ws_url: str, path: str, query: str) -> str:
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, query, ""))


def control_url(ws_url: str, secret_key: str, message: dict) -> str:
    """The signed `/control` URL for `message` (a fresh time and nonce are added)."""
    return _url(ws_url, "/control", signed_query(secret_key, message))


def status_url(ws_url: str, secret_key: str) -> str:
    """A signed, single-use `/status` URL of the worker at `ws_url` (its load)."""
    return _url(ws_url, "/status", signed_query(secret_key, {"op": "status"}))


def _traced() -> dict:
    """The X-Request-Id of the web request on whose behalf the worker is asked (its log names it)."""
    rid = logs.request_id()
    return {logs.HEADER: rid} if rid else {}


def _send(ws_url: str, secret_key: str, message: dict) -> bool:
    try:
        req = urllib.request.Request(control_url(ws_url, secret_key, message), headers=_traced())
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - a worker that does not answer has no sessions to drop; logged
        log.warning("media worker %s did not take %s for meeting %s", ws_url, message["op"], message["meeting"])
        return False


def workers(meeting_url: str | None, configured: list[str]) -> list[str]:
    """Whom to tell about a meeting: its own worker first, then every configured one (a token names a
    meeting, not a worker, so any of them could be asked to take it)."""
    return list(dict.fromkeys(u for u in [meeting_url, *configured] if u))


def drop(ws_url: str, secret_key: str, *, meeting_id: int, account_id: int, reason: str, message: str) -> bool:
    """Close `account_id`'s media sessions in `meeting_id` now, and refuse their older tokens."""
    return _send(ws_url, secret_key, {"op": "drop", "meeting": int(meeting_id), "account": int(account_id),
                                      "reason": reason, "message": message})


def end(ws_url: str, secret_key: str, *, meeting_id: int, reason: str, message: str) -> bool:
    """Close every media session of `meeting_id` and refuse every token minted for it so far."""
    return _send(ws_url, secret_key, {"op": "end", "meeting": int(meeting_id), "reason": reason,
                                      "message": message})


def unwatch(ws_url: str, secret_key: str, *, meeting_id: int, message: str) -> bool:
    """The meeting's broadcast stopped: close its viewers' sessions now and refuse their older tokens
    (participants stay)."""
    return _send(ws_url, secret_key, {"op": "unwatch", "meeting": int(meeting_id), "reason": "broadcast_ended",
                                      "message": message})


def whep_stop(ws_url: str, secret_key: str, *, meeting_id: int, session: str) -> bool:
    """Close one WHEP session (its player ended it); nothing is refused afterwards."""
    return _send(ws_url, secret_key, {"op": "whep_stop", "meeting": int(meeting_id), "session": session,
                                      "reason": "left", "message": "The player ended the session."})


def record(ws_url: str, secret_key: str, *, meeting_id: int, recording_id: int) -> bool:
    """Start writing the meeting's streams to the recordings folder (media/recorder.py)."""
    return _send(ws_url, secret_key, {"op": "record", "meeting": int(meeting_id), "recording": int(recording_id)})


def record_stop(ws_url: str, secret_key: str, *, meeting_id: int, recording_id: int) -> bool:
    """Stop that recording; the worker closes its files."""
    return _send(ws_url, secret_key, {"op": "record_stop", "meeting": int(meeting_id),
                                      "recording": int(recording_id)})
