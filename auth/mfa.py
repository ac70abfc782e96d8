"""Two-step sign-in: TOTP (RFC 6238, pyotp) and ten single-use recovery codes.

- The TOTP secret is kept encrypted (Fernet, key derived from the app's secret
  key), so a copy of the database alone does not give away second factors.
- A code is accepted once only: the time-step of the last accepted code is
  stored, and only later steps are accepted (one step of clock drift allowed).
- Recovery codes carry 120 random bits, are shown once and stored as SHA-256.
- Administrators may require two-step sign-in for staff accounts (and
  administrators) or for everyone (a site setting in the database); such
  accounts are sent to set it up after their password, and can do nothing else
  until they have.
"""
from __future__ import annotations

import base64
import hmac
import io
import secrets
import time
from datetime import timedelta

import pyotp
import qrcode
import qrcode.image.svg
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import func, select, update

from auth import audit, lockout, notices, passwords, reauth
from auth import permissions as perm
from auth import sessions as user_sessions
from auth.account_models import RecoveryCode, SiteSetting, UserMfa
from auth.mfa_policy import (  # noqa: F401  (the policy's questions are asked as mfa.<name> too)
    POLICIES,
    POLICY_KEY,
    _row,
    enabled,
    enabled_at,
    must_enrol,
    policy,
    required_for,
    second_step_needed,
)
from auth.models import User
from collab import events, validate
from collab.db import utcnow
from collab.errors import Forbidden, Invalid, NotFound
from collab.extensions import db
from collab.tokens import digest

ISSUER = "Collab"
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
PENDING_FOR = timedelta(minutes=30)     # an unconfirmed enrolment secret is replaced after this
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


# -- secrets at rest -----------------------------------------------------------------------------

def _fernet():
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"collab-mfa", info=b"totp secret").derive(
        current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _open(sealed: str | None) -> str | None:
    if not sealed:
        return None
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None  # the secret key changed: the account must enrol again (an administrator resets it)


def secrets_readable() -> bool | None:
    """Whether the enrolled accounts' TOTP secrets open with this server's secret key (None: nobody enrolled).

    A restore without the old secret key leaves them sealed under a key this server does not have."""
    sealed = db.session.execute(select(UserMfa.secret).where(UserMfa.secret.is_not(None)).limit(1)).scalar()
    if sealed is None:
        return None
    return _open(sealed) is not None


# -- policy ----------------------------------------------------------------------------------------------

def set_policy(actor: User, value: object) -> str:
    if not perm.can_administer(actor):
        raise NotFound()
    if value not in POLICIES:
        raise Invalid("Choose one of the offered settings.", "mfa_policy")
    db.begin_write()
    row = db.session.get(SiteSetting, POLICY_KEY, populate_existing=True)
    old = row.value if row else "off"
    if row is None:
        row = SiteSetting(key=POLICY_KEY)
        db.session.add(row)
    row.value, row.updated_at, row.updated_by_id = value, utcnow(), actor.id
    if old != value:
        audit.record("site.mfa_policy", actor=actor, target_type="site", detail={"from": old, "to": value})
        # Anyone now required to enrol who has not: their live connections end; their pages lead to set-up.
        enrolled = select(UserMfa.user_id).where(UserMfa.enabled_at.is_not(None))
        for user in db.session.scalars(select(User).where(User.active.is_(True), User.id.not_in(enrolled))):
            if required_for(user, value) and user.id != actor.id:
                events.queue(db.session, "account.changed", {"user_id": user.id, "reason": "mfa_required"})
    db.session.commit()
    return value


# -- codes -----------------------------------------------------------------------------------------------

def _step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, interval=STEP_SECONDS, issuer=ISSUER)


def _clean(code: object) -> str:
    if not isinstance(code, str):
        return ""
    return "".join(code.split()).replace("-", "").lower()[:64]


def _matching_step(secret: str, code: str, after: int) -> int | None:
    """The time-step (now ± drift, later than `after`) whose code is `code`."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    now = _step()
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > after:
            found = step
    return found


def _is_recovery_shape(code: str) -> bool:
    return len(code) == 24 and all(c in _ALPHABET for c in code)


def _new_codes(user_id: int) -> list[str]:
    db.session.execute(update(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
                       .values(used_at=utcnow()))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(24))
        db.session.add(RecoveryCode(user_id=user_id, code_hash=digest(raw)))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 24, 4)))
    return codes


def remaining_codes(user: User) -> int:
    return db.session.scalar(select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def _verify_in_tx(user: User, code: object, *, allow_recovery: bool = True) -> str | None:
    """Inside a write transaction: accept a current TOTP code (once) or an unused
    recovery code (once). Returns "totp", "recovery" or None."""
    row = _row(user.id, fresh=True)
    secret = _open(row.secret) if row and row.enabled_at else None
    if secret is None:
        return None
    cleaned = _clean(code)
    step = _matching_step(secret, cleaned, row.last_step or 0)
    if step is not None:
        row.last_step = step
        return "totp"
    if allow_recovery and _is_recovery_shape(cleaned):
        rc = db.session.scalar(select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == digest(cleaned),
            RecoveryCode.used_at.is_(None)))
        if rc is not None:
            rc.used_at = utcnow()
            db.session.flush()
            audit.record("auth.recovery_code_used", actor=user, target_type="user", target_id=user.id,
                         detail={"remaining": remaining_codes(user)})
            return "recovery"
    return None


def verify_sign_in(user: User, code: object) -> str | None:
    """The second step of signing in: on success the sign-in is audited and the
    failure count cleared; on failure the caller counts a failed sign-in."""
    db.begin_write()
    how = _verify_in_tx(user, code)
    if how:
        lockout.reset_in_tx(user)
        audit.record("auth.login", actor=user, target_type="user", target_id=user.id,
                     detail={"second_factor": how})
    db.session.commit()
    return how


def record_enrolled_sign_in(user: User) -> None:
    """Signing in by setting up two-step sign-in (the code just confirmed was the second step)."""
    db.begin_write()
    lockout.reset_in_tx(user)
    audit.record("auth.login", actor=user, target_type="user", target_id=user.id,
                 detail={"second_factor": "enrolled"})
    db.session.commit()


# -- enrolment -----------------------------------------------------------------------------------------------

def pending_secret(user: User) -> str:
    """The secret being set up (made on first ask, kept while the page is reloaded)."""
    row = _row(user.id, fresh=True)
    secret = _open(row.pending_secret) if row else None
    if secret and row.pending_at and utcnow() - row.pending_at < PENDING_FOR:
        return secret
    secret = pyotp.random_base32(32)   # 160 bits
    db.begin_write()
    row = _row(user.id, fresh=True)
    if row is None:
        row = UserMfa(user_id=user.id, last_step=0)
        db.session.add(row)
    row.pending_secret, row.pending_at = _seal(secret), utcnow()
    db.session.commit()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    return _totp(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(text: str) -> str:
    """The QR code of `text` as an SVG data: URI (allowed by the CSP's img-src)."""
    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def confirm_enrolment(user: User, code: object, *, keep_session: str | None, signing_in: bool = False,
                      password: object = None, current_code: object = None) -> list[str]:
    """Turn on (or move to a new device) two-step sign-in once the app shows a
    matching code. Returns the new recovery codes (shown once). Other sessions end.

    A signed-in person proves it is them first (a hijacked session must not set
    up or move the second factor): their password for a first set-up, a code
    from the current phone (or a recovery code) to move it. While signing in the
    password has just been checked, and only accounts without it get here."""
    was_on = enabled(user)
    if signing_in and was_on:
        raise Forbidden("Enter a code from your phone to sign in.", "code")
    if not signing_in and not was_on and not (
            isinstance(password, str) and passwords.verify_password(user.password_hash, password)[0]):
        raise Invalid("Your password is not correct.", "password")
    db.begin_write()
    row = _row(user.id, fresh=True)
    secret = _open(row.pending_secret) if row else None
    try:
        if secret is None or row.pending_at is None or utcnow() - row.pending_at >= PENDING_FOR:
            raise Invalid("The set-up code has expired. Scan the new QR code and try again.", "code")
        step = _matching_step(secret, _clean(code), 0)
        if step is None:
            raise Invalid("That code does not match. Check the time on your phone and enter the current code.",
                          "code")
        if was_on and not _verify_in_tx(user, current_code):
            raise Invalid("Enter a current code from your old phone, or one of your recovery codes.", "current_code")
    except Invalid:
        db.session.rollback()
        raise
    row.secret, row.pending_secret, row.pending_at = _seal(secret), None, None
    row.enabled_at, row.last_step = utcnow(), step
    codes = _new_codes(user.id)
    audit.record("auth.mfa_enabled", actor=user, target_type="user", target_id=user.id,
                 detail={"replaced_device": was_on})
    user_sessions.end_others_in_tx(user, keep=keep_session, reason="mfa_enabled")
    db.session.commit()
    notices.security_change(user, "mfa_enabled")
    return codes


def disable(user: User, code: object, *, keep_session: str | None, password: object = None) -> None:
    """Turning it off needs the password again (auth/reauth.py) and a current code."""
    if required_for(user):
        raise Forbidden("Two-step sign-in is required for your account. To use a new phone, set it up again "
                        "instead of turning it off.", "code")
    reauth.require(user, password, what="turn off two-step sign-in")
    db.begin_write()
    if not _verify_in_tx(user, code):
        db.session.rollback()
        raise Invalid("That code is not correct. Enter the current code from your app, or a recovery code.",
                      "code")
    _switch_off_in_tx(user.id)
    audit.record("auth.mfa_disabled", actor=user, target_type="user", target_id=user.id)
    user_sessions.end_others_in_tx(user, keep=keep_session, reason="mfa_disabled")
    db.session.commit()
    notices.security_change(user, "mfa_disabled")


def regenerate_codes(user: User, code: object, *, keep_session: str | None) -> list[str]:
    db.begin_write()
    if not _verify_in_tx(user, code, allow_recovery=False):
        db.session.rollback()
        raise Invalid("That code is not correct. Enter the current code from your app.", "code")
    codes = _new_codes(user.id)
    audit.record("auth.recovery_codes_replaced", actor=user, target_type="user", target_id=user.id)
    user_sessions.end_others_in_tx(user, keep=keep_session, reason="mfa_codes_replaced")
    db.session.commit()
    notices.security_change(user, "recovery_codes")
    return codes


def _switch_off_in_tx(user_id: int) -> None:
    row = _row(user_id, fresh=True)
    if row is not None:
        row.secret = row.pending_secret = None
        row.enabled_at = row.pending_at = None
    db.session.execute(update(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
                       .values(used_at=utcnow()))


def admin_reset(actor: User, target_id: object) -> User:
    """An administrator turns off a person's two-step sign-in (lost phone and
    codes); their sessions end and they must set it up again if required."""
    try:
        tid = validate.int_id(target_id, "user_id")
    except Invalid:
        raise NotFound() from None
    target = db.session.get(User, tid)
    if target is None or not perm.can_manage_account(actor, target) or target.id == actor.id:
        raise NotFound()
    db.begin_write()
    _switch_off_in_tx(target.id)
    audit.record("auth.mfa_disabled", actor=actor, target_type="user", target_id=target.id,
                 detail={"by_administrator": True})
    user_sessions.end_others_in_tx(target, keep=None, reason="mfa_reset", actor=actor)
    db.session.commit()
    notices.security_change(target, "mfa_reset")
    return target
