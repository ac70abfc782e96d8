"""Meeting tokens and TURN credentials, shared by the web app and the media worker.

The web app (which knows who may join which meeting) mints a short-lived token
signed with the app's SECRET_KEY; the browser hands it to the media worker,
which only verifies it. Nothing else about the account reaches the worker.
The token carries its issue time (`i`), so that the worker can refuse every
token issued before a revocation the web app sent it (media/control.py).

TURN credentials follow coturn's "TURN REST API" convention
(`use-auth-secret` + `static-auth-secret`): the user name is
"<unix expiry>:<label>" and the password is base64(HMAC-SHA1(secret, user name)).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "collab.media.join"
ROLES = ("host", "member", "observer", "viewer")  # viewer: a broadcast's audience (receives the stage only)
DEFAULT_TTL = 120  # seconds: long enough to join, short enough to be useless if leaked
MAX_TTL = 3600     # a worker refuses longer-lived tokens: it remembers revocations this long


class TokenError(Exception):
    """The token is forged, malformed or expired; `reason` says which, for the participant."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    meeting: int
    account: int
    name: str
    role: str
    expires: int
    issued: float

    @property
    def may_publish(self) -> bool:
        return self.role not in ("observer", "viewer")


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    if not secret_key:
        raise ValueError("a secret key is required to sign or verify meeting tokens")
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def mint(secret_key: str, *, meeting: int, account: int, name: str, role: str, ttl: int = DEFAULT_TTL,
         now: float | None = None) -> str:
    """A signed token letting `account` (shown as `name`) into `meeting` until now + ttl."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if ttl > MAX_TTL:
        raise ValueError(f"ttl must be at most {MAX_TTL} seconds")
    issued = round(now if now is not None else time.time(), 3)
    payload = {"m": int(meeting), "a": int(account), "n": str(name)[:120], "r": role, "i": issued,
               "e": int(issued + ttl)}
    return _serializer(secret_key).dumps(payload)


def verify(secret_key: str, token: object, *, now: float | None = None) -> Grant:
    """The grant inside `token`, or TokenError if it is forged, malformed or expired."""
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise TokenError("The meeting token is missing or malformed.")
    try:
        payload = _serializer(secret_key).loads(token)
    except SignatureExpired:  # pragma: no cover - we check expiry ourselves below
        raise TokenError("The meeting token has expired.") from None
    except BadSignature:
        raise TokenError("The meeting token is not valid.") from None
    try:
        grant = Grant(meeting=_whole(payload["m"]), account=_whole(payload["a"]), name=str(payload["n"]),
                      role=str(payload["r"]), expires=_whole(payload["e"]), issued=_number(payload["i"]))
    except (KeyError, TypeError, ValueError):
        raise TokenError("The meeting token is malformed.") from None
    if grant.role not in ROLES or grant.meeting <= 0 or grant.account <= 0 \
            or grant.expires - grant.issued > MAX_TTL + 1:
        raise TokenError("The meeting token is malformed.")
    if grant.expires < (now if now is not None else time.time()):
        raise TokenError("The meeting token has expired.")
    return grant


def _whole(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not a whole number")
    return value


def _number(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise TypeError("not a number")
    return float(value)


def turn_credentials(secret: str, label: str, ttl: int = 86400, now: float | None = None) -> tuple[str, str]:
    """(username, credential) for coturn's shared-secret REST authentication."""
    expiry = int((now if now is not None else time.time()) + ttl)
    username = f"{expiry}:{label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
