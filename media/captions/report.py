"""Final captions from a media worker to the web app, which saves them as the meeting's transcript.

The worker never touches the database. Until captions, the web app only ever called the worker
(media/control.py: signed GETs to `/control` and `/status`); captions are the first thing the worker
tells the web app, so they travel the other way, signed with the same key (derived from SECRET_KEY,
which web app and worker share for meeting tokens and control messages):

    POST <report url>/media/captions   Content-Type: application/json
    {"m": "<urlsafe base64 of the JSON message>", "s": "<hex HMAC-SHA256(report key, m)>"}

    {"op": "captions", "at": …, "nonce": "…", "meeting": 12,
     "segments": [{"account": 34, "key": "<run>-<account>-<n>", "text": "…", "start": …, "end": …}]}

The web app (rooms/meetings/transcript_report.py) refuses a bad signature or a message more than
MAX_AGE seconds from now, and saves each segment once by its key, so a message sent twice (a retry
after a lost answer, or a replay) changes nothing.

`Reporter` batches segments (at most every BATCH_EVERY seconds, per meeting), sends them from a
thread (urllib, off the event loop), retries a failed send RETRIES times, and keeps at most
MAX_WAITING segments: beyond that the oldest are dropped and logged (the captions themselves have
already reached the participants).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.request
from collections import deque

log = logging.getLogger(__name__)

SALT = b"collab.media.captions"
MAX_AGE = 30.0
MAX_BODY = 256 * 1024         # bytes of one report
MAX_SEGMENTS = 100            # segments in one report
MAX_TEXT = 2000               # characters of one segment's text
MAX_WAITING = 2000
BATCH_EVERY = 0.5
RETRIES = 3
TIMEOUT = 5.0
PATH = "/media/captions"


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def report_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("a secret key is required to sign caption reports")
    return hmac.new(secret_key.encode(), SALT, hashlib.sha256).digest()


def sign(secret_key: str, message: dict, *, now: float | None = None) -> bytes:
    """The request body carrying `message` with a fresh time and nonce."""
    message = dict(message, at=round(time.time() if now is None else now, 3), nonce=secrets.token_hex(12))
    m = base64.urlsafe_b64encode(json.dumps(message, separators=(",", ":")).encode()).decode()
    s = hmac.new(report_key(secret_key), m.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"m": m, "s": s}).encode()


def _num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _id(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def verify(secret_key: str, body: bytes, *, now: float | None = None) -> dict:
    """The message of an authentic, fresh, well-formed report; Refused otherwise."""
    now = time.time() if now is None else now
    if len(body) > MAX_BODY:
        raise Refused(413, "too large")
    try:
        outer = json.loads(body)
    except ValueError:
        raise Refused(403, "not signed") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("m"), str) or not isinstance(outer.get("s"), str):
        raise Refused(403, "not signed")
    expected = hmac.new(report_key(secret_key), outer["m"].encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), outer["s"].encode("utf-8", "replace")):
        raise Refused(403, "bad signature")
    try:
        msg = json.loads(base64.urlsafe_b64decode(outer["m"].encode()))
    except (ValueError, binascii.Error):
        raise Refused(400, "bad message") from None
    if not isinstance(msg, dict) or msg.get("op") != "captions" or not _num(msg.get("at")):
        raise Refused(400, "bad message")
    if abs(now - msg["at"]) > MAX_AGE:
        raise Refused(403, "stale")
    segments = msg.get("segments")
    if not _id(msg.get("meeting")) or not isinstance(segments, list) or not 0 < len(segments) <= MAX_SEGMENTS:
        raise Refused(400, "bad message")
    for s in segments:
        if not (isinstance(s, dict) and _id(s.get("account")) and isinstance(s.get("key"), str)
                and 0 < len(s["key"]) <= 64 and isinstance(s.get("text"), str) and len(s["text"]) <= MAX_TEXT
                and _num(s.get("start")) and _num(s.get("end")) and s["start"] <= s["end"]
                and abs(now - s["end"]) < 86400):
            raise Refused(400, "bad segment")
    return msg


def _post(url: str, body: bytes) -> bool:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status == 200
    except Exception as exc:  # noqa: BLE001 - the web app restarting, or refusing: logged, retried
        log.warning("captions: the web app at %s did not take a report: %s", url, exc)
        return False


class Reporter:
    """Sends final captions of this worker process to the web app (`base_url` + PATH)."""

    def __init__(self, base_url: str, secret_key: str) -> None:
        self.url = base_url.rstrip("/") + PATH
        self.secret_key = secret_key
        self.waiting: deque = deque()
        self.sent = 0
        self.dropped = 0
        self._task: asyncio.Task | None = None

    def __call__(self, meeting_id: int, caption: dict) -> None:
        if len(self.waiting) >= MAX_WAITING:
            self.waiting.popleft()
            self.dropped += 1
            log.warning("captions: %s final captions waiting for the web app; dropped the oldest", MAX_WAITING)
        self.waiting.append((meeting_id, {"account": caption["participant"], "key": caption["utterance"],
                                          "text": caption["text"][:MAX_TEXT], "start": caption["start"],
                                          "end": caption["end"]}))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            await asyncio.sleep(BATCH_EVERY)
            batch: dict[int, list] = {}
            while self.waiting and sum(len(v) for v in batch.values()) < MAX_SEGMENTS:
                meeting_id, seg = self.waiting.popleft()
                batch.setdefault(meeting_id, []).append(seg)
            for meeting_id, segments in batch.items():
                for attempt in range(RETRIES):
                    body = sign(self.secret_key, {"op": "captions", "meeting": meeting_id, "segments": segments})
                    if await loop.run_in_executor(None, _post, self.url, body):
                        self.sent += len(segments)
                        break
                    await asyncio.sleep(0.5 * 2 ** attempt)
                else:
                    self.dropped += len(segments)
                    log.error("captions: %s final captions of meeting %s could not be saved", len(segments),
                              meeting_id)
