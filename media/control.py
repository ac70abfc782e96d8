"""Signed requests from the web app to a media worker, and what the worker remembers of them.

The web app alone decides who may be in a meeting; the worker never touches the database. When
someone loses that right, or a meeting ends, the web app sends the worker a signed message over
the worker's own HTTP port, and the worker obeys it. Its load (`/status`) is asked the same way,
so nobody else learns how many people are in meetings:

    GET /control?m=<urlsafe base64 of the JSON message>&s=<hex HMAC-SHA256(control_key, m)>
    GET /status?m=…&s=…

    {"op": "drop",   "meeting": 12, "account": 34, "reason": "removed", "message": "…", "at": …, "nonce": "…"}
    {"op": "end",    "meeting": 12, "reason": "ended", "message": "…", "at": …, "nonce": "…"}
    {"op": "unwatch", "meeting": 12, "reason": "broadcast_ended", "message": "…", "at": …, "nonce": "…"}
    {"op": "whep_stop", "meeting": 12, "session": "…", "reason": "left", "message": "…", "at": …, "nonce": "…"}
    {"op": "record", "meeting": 12, "recording": 5, "at": …, "nonce": "…"}
    {"op": "record_stop", "meeting": 12, "recording": 5, "at": …, "nonce": "…"}
    {"op": "status", "at": …, "nonce": "…"}

("unwatch": the meeting's broadcast stopped; its viewers are let go and their tokens refused, the
participants stay. "whep_stop": a WHEP player ended its session (HTTP DELETE): that session alone closes,
nothing is refused. "record"/"record_stop": every process writes the streams its participants publish to
the recordings folder, media/recorder.py; nothing is refused.)

The key is derived from SECRET_KEY, which web app and worker already share for meeting tokens.
`Gate` refuses a bad signature, a message more than MAX_AGE seconds from now (either way: the
clocks of the web and worker hosts agree, as for token expiry) and a nonce it has seen; nonces
are forgotten once their message is too old anyway, so memory stays bounded.

`Revocations` is what a worker keeps of "drop" and "end": the issue time of the newest token each
one cancels, for as long as any such token could still be valid (tokens.MAX_TTL).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qs, urlencode

from media import tokens

SALT = b"collab.media.control"
MAX_AGE = 30.0          # seconds a signed request stays acceptable
MAX_MESSAGE = 4096      # characters of the encoded message
MAX_NONCES = 100_000    # seen nonces kept at most (only validly signed requests are stored)
REVOKING = ("drop", "end", "unwatch")   # the operations that take people out (`Revocations.apply`)
RECORDING = ("record", "record_stop")   # a meeting's recording starts / stops (media/recorder.py)
CONTROL = (*REVOKING, "whep_stop", *RECORDING)   # what /control accepts
OPS = (*CONTROL, "status")
MAX_TEXT = 300          # characters of a reason or message shown to the person


class Refused(Exception):
    """The request is not acceptable; `status` is the HTTP answer (400 malformed, 403 not authentic)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def control_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("a secret key is required to sign media control messages")
    return hmac.new(secret_key.encode(), SALT, hashlib.sha256).digest()


def signed_query(secret_key: str, message: dict, *, now: float | None = None) -> str:
    """The query string `m=…&s=…` carrying `message` with a fresh time and nonce."""
    message = dict(message, at=round(now if now is not None else time.time(), 3), nonce=secrets.token_hex(12))
    m = base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).decode()
    s = hmac.new(control_key(secret_key), m.encode(), hashlib.sha256).hexdigest()
    return urlencode({"m": m, "s": s})


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT


class Gate:
    """Checks signed requests for one process; remembers the nonces it accepted."""

    def __init__(self, secret_key: str) -> None:
        self._key = control_key(secret_key)
        self._nonces: dict[str, float] = {}   # nonce → time after which its message is refused anyway
        self._next_prune = 0.0

    def check(self, query: str, *, op: str | tuple[str, ...], now: float | None = None) -> dict:
        """The message carried by `query` if it is authentic, fresh, new and of the operation `op`."""
        now = time.time() if now is None else now
        if not query:
            raise Refused(403)  # no credentials
        try:
            params = parse_qs(query, strict_parsing=True, max_num_fields=4)
        except ValueError:
            raise Refused(400) from None
        ms, ss = params.get("m"), params.get("s")
        if not ms or not ss:
            raise Refused(403)  # no credentials
        if set(params) != {"m", "s"} or len(ms) != 1 or len(ss) != 1 or len(ms[0]) > MAX_MESSAGE:
            raise Refused(400)
        m, s = ms[0], ss[0]
        expected = hmac.new(self._key, m.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), s.encode("utf-8", "replace")):
            raise Refused(403)
        try:
            msg = json.loads(base64.urlsafe_b64decode(m.encode()))
        except (ValueError, binascii.Error):
            raise Refused(400) from None
        if not isinstance(msg, dict) or not _number(msg.get("at")) or not isinstance(msg.get("nonce"), str) \
                or not 8 <= len(msg["nonce"]) <= 64:
            raise Refused(400)
        if msg.get("op") not in ((op,) if isinstance(op, str) else op):
            raise Refused(403)
        if abs(now - msg["at"]) > MAX_AGE:
            raise Refused(403)
        self._prune(now)
        if msg["nonce"] in self._nonces or len(self._nonces) >= MAX_NONCES:
            raise Refused(403)
        self._nonces[msg["nonce"]] = msg["at"] + MAX_AGE
        if msg["op"] == "drop" and not (_id(msg.get("meeting")) and _id(msg.get("account"))
                                        and _text(msg.get("reason")) and _text(msg.get("message"))):
            raise Refused(400)
        if msg["op"] in ("end", "unwatch") and not (_id(msg.get("meeting")) and _text(msg.get("reason"))
                                                    and _text(msg.get("message"))):
            raise Refused(400)
        if msg["op"] == "whep_stop" and not (_id(msg.get("meeting")) and _text(msg.get("session"))
                                             and _text(msg.get("reason")) and _text(msg.get("message"))):
            raise Refused(400)
        if msg["op"] in RECORDING and not (_id(msg.get("meeting")) and _id(msg.get("recording"))):
            raise Refused(400)
        return msg

    def _prune(self, now: float) -> None:
        if now < self._next_prune and len(self._nonces) < MAX_NONCES:
            return
        self._next_prune = now + 5.0
        for nonce in [n for n, until in self._nonces.items() if until < now]:
            del self._nonces[nonce]


class Revocations:
    """Tokens the web app has cancelled: those of one account in a meeting ("drop"), or of everyone
    in a meeting ("end"), issued at or before a given time. Entries are kept until every token they
    cancel has expired (a token lives at most tokens.MAX_TTL seconds)."""

    KEEP = tokens.MAX_TTL + MAX_AGE

    def __init__(self) -> None:
        self._drops: dict[tuple[int, int], tuple[float, str]] = {}
        self._ends: dict[int, tuple[float, str]] = {}
        self._unwatched: dict[int, tuple[float, str]] = {}   # meeting → its broadcast's end (viewers only)
        self._next_prune = 0.0

    def apply(self, msg: dict) -> None:
        """Remember a checked "drop", "end" or "unwatch" message (worker.obey, and a restarted process
        reading those sent before it started)."""
        meeting, at, message = msg["meeting"], float(msg["at"]), msg["message"]
        if msg["op"] not in REVOKING:   # "whep_stop" closes one session and voids nothing
            return
        if msg["op"] == "drop":
            self.drop(meeting, msg["account"], at, message)
        elif msg["op"] == "end":
            self.end(meeting, at, message)
        else:
            old = self._unwatched.get(meeting)
            if old is None or old[0] < at:
                self._unwatched[meeting] = (at, message)

    def drop(self, meeting: int, account: int, at: float, message: str) -> None:
        old = self._drops.get((meeting, account))
        if old is None or old[0] < at:
            self._drops[(meeting, account)] = (at, message)

    def end(self, meeting: int, at: float, message: str) -> None:
        old = self._ends.get(meeting)
        if old is None or old[0] < at:
            self._ends[meeting] = (at, message)

    def refusal(self, grant: tokens.Grant, *, now: float | None = None) -> str | None:
        """Why `grant` may no longer be used (the message for the person), or None if it may."""
        self._prune(time.time() if now is None else now)
        watching = self._unwatched.get(grant.meeting) if grant.role == "viewer" else None
        for entry in (self._ends.get(grant.meeting), self._drops.get((grant.meeting, grant.account)), watching):
            if entry is not None and grant.issued <= entry[0]:
                return entry[1]
        return None

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + 60.0
        for store in (self._drops, self._ends, self._unwatched):
            for key in [k for k, (at, _) in store.items() if at + self.KEEP < now]:
                del store[key]
