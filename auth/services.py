"""Account operations. Views, the API and the CLI all call these."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Callable, Optional

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from auth import audit, invitation_links, lockout, mfa, notices, passwords, reauth, suspension
from auth import permissions as perm
from auth import sessions as user_sessions
from auth.models import ACCOUNT_KINDS, ORG_KINDS, SITE_ROLES, ApiToken, Invitation, Organisation, PasswordReset, User
from collab import events, mail, timezones, validate
from collab.db import utcnow
from collab.errors import Conflict, Invalid, NotFound
from collab.extensions import db
from collab.tokens import digest, new_secret
from collab.urls import external_url

log = logging.getLogger(__name__)


def setup_needed() -> bool:
    return db.session.scalar(select(func.count(User.id))) == 0


def find_user_by_email(email: str) -> Optional[User]:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def _new_user(*, email: str, name: str, password: str, kind: str = "staff", role: str = "member",
              organisation_id: Optional[int] = None, job_title: Optional[str] = None,
              org_admin: bool = False) -> User:
    email = validate.email(email)
    name = validate.display_name(name, "name", max_len=120)
    job_title = validate.text(job_title, "job_title", max_len=120, required=False, label="Rank or job title") or None
    kind = validate.choice(kind, "kind", ACCOUNT_KINDS)
    role = validate.choice(role, "role", SITE_ROLES)
    passwords.check_strength(password, email=email, name=name)
    if organisation_id is not None and db.session.get(Organisation, organisation_id) is None:
        raise Invalid("That organisation does not exist.", "organisation_id")
    if find_user_by_email(email):
        raise Conflict("An account with that e-mail address already exists.", "email")
    user = User(email=email, name=name, password_hash=passwords.hash_password(password), kind=kind, role=role,
                organisation_id=organisation_id, job_title=job_title, org_admin=org_admin)
    db.session.add(user)
    return user


def create_first_admin(*, email: str, name: str, password: str, organisation: str = "") -> User:
    """The setup page: only while no account exists."""
    db.begin_write()
    if not setup_needed():
        raise Conflict("Collab is already set up. Sign in instead.")
    org_id = None
    organisation = validate.text(organisation, "organisation", max_len=200, required=False)
    if organisation:
        org = Organisation(name=organisation, kind="force")
        db.session.add(org)
        db.session.flush()
        org_id = org.id
    user = _new_user(email=email, name=name, password=password, role="admin", organisation_id=org_id)
    db.session.commit()
    return user


def create_user(*, organisation_name: object = None, **fields) -> User:
    """Used by the CLI and tests; the web uses invitations. `organisation_name` names the
    organisation to join, created in the same transaction when new (so a refused account
    leaves no organisation behind)."""
    db.begin_write()
    try:
        if organisation_name:
            name = validate.display_name(organisation_name, "organisation", max_len=200, label="Organisation")
            org = db.session.scalar(select(Organisation).where(Organisation.name == name))
            if org is None:
                org = Organisation(name=name, kind="force")
                db.session.add(org)
                db.session.flush()
            fields["organisation_id"] = org.id
        user = _new_user(**fields)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return user


# Every refused sign-in gets this one answer (401): wrong password, unknown address, inactive or locked account.
# A locked account answering differently would tell anyone which addresses have accounts; its owner learns of
# the lock by e-mail instead (auth/lockout.py).
SIGN_IN_REFUSED = ("Those details do not match an active account, or there were too many attempts. Try again later, "
                   "or ask your administrator for a password reset link.")


def authenticate(email: object, password: object) -> Optional[User]:
    """The account these details sign in to, or None (see SIGN_IN_REFUSED) - locked accounts included, after the
    same password-hashing work as any other refusal, so neither the answer nor its timing tells them apart."""
    if not isinstance(email, str) or not isinstance(password, str) or len(password) > passwords.MAX_LENGTH:
        passwords.dummy_verify()
        return None
    user = find_user_by_email(email)
    if user is not None and not user.active:
        suspension.lift_if_due(user)  # a timed suspension that has run out ends here
    if user is None or not user.active:
        passwords.dummy_verify()
        audit.record_now("auth.login_failed", detail={"email": email.strip().lower()[:254], "reason": "no active account"})
        return None
    if lockout.locked_until(user):  # the password is not checked while locked, but the time is spent alike
        passwords.dummy_verify()
        audit.record_now("auth.login_failed", target_type="user", target_id=user.id,
                         detail={"email": user.email, "reason": "locked"})
        return None
    ok, new_hash = passwords.verify_password(user.password_hash, password)
    if not ok:
        lockout.failed(user, "wrong password")
        return None
    db.begin_write()
    if new_hash:
        user.password_hash = new_hash
    if not mfa.second_step_needed(user):  # otherwise signed in (and audited) after the second step
        lockout.reset_in_tx(user)
        audit.record("auth.login", actor=user, target_type="user", target_id=user.id)
    db.session.commit()
    return user


# -- organisations -----------------------------------------------------------

def create_organisation(actor: User, name: object, kind: object = "force") -> Organisation:
    if not perm.can_administer(actor):
        raise NotFound()
    name = validate.display_name(name, "name", max_len=200)
    kind = validate.choice(kind, "kind", ORG_KINDS)
    db.begin_write()
    if db.session.scalar(select(Organisation).where(func.lower(Organisation.name) == name.lower())):
        raise Conflict("An organisation with that name already exists.", "name")
    org = Organisation(name=name, kind=kind)
    db.session.add(org)
    db.session.commit()
    return org


def organisations() -> list[Organisation]:
    return list(db.session.scalars(select(Organisation).order_by(Organisation.name)))


# -- invitations --------------------------------------------------------------

def create_invitation(actor: User, *, email: object = None, kind: object = "staff", role: object = "member",
                      organisation_id: object = None, org_admin: bool = False, note: object = None,
                      room_id: Optional[int] = None, room_role: Optional[str] = None) -> tuple[Invitation, str]:
    """Returns the invitation and its link (shown once; e-mailed when SMTP is set). `room_id`/`room_role`:
    the room its account joins on accepting (the caller, rooms/people.py, has checked it may do that)."""
    fields = check_invitation(actor, email=email, kind=kind, role=role, organisation_id=organisation_id,
                              org_admin=org_admin, note=note)
    db.begin_write()
    inv, link = add_invitation_in_tx(actor, fields, room_id=room_id, room_role=room_role)
    db.session.commit()
    send_invitation(actor, inv, link)
    return inv, link


def check_invitation(actor: User, *, email: object = None, kind: object = "staff", role: object = "member",
                     organisation_id: object = None, org_admin: bool = False, note: object = None) -> dict:
    """Every check of an invitation, before anything is written: the fields to store (or Invalid/Conflict)."""
    org_id = validate.int_id(organisation_id, "organisation_id", required=False)
    if not perm.can_invite_accounts(actor, org_id):
        raise Invalid("You may invite people only into your own organisation.", "organisation_id")
    email_v = validate.email(email) if email else None
    kind = validate.choice(kind, "kind", ACCOUNT_KINDS)
    role = validate.choice(role, "role", SITE_ROLES)
    if role == "admin" and not actor.is_admin:
        raise Invalid("Only administrators can invite administrators.", "role")
    note_v = validate.text(note, "note", max_len=1000, required=False, multiline=True) or None
    if org_id is not None and db.session.get(Organisation, org_id) is None:
        raise Invalid("That organisation does not exist.", "organisation_id")
    if email_v and find_user_by_email(email_v):
        raise Conflict("An account with that e-mail address already exists.", "email")
    return {"email": email_v, "kind": kind, "role": role, "organisation_id": org_id, "note": note_v,
            "org_admin": bool(org_admin) and (actor.is_admin or actor.org_admin)}


def add_invitation_in_tx(actor: User, fields: dict, *, room_id: Optional[int] = None,
                         room_role: Optional[str] = None) -> tuple[Invitation, str]:
    """Inside the caller's write transaction: store one checked invitation (check_invitation), audited."""
    raw = new_secret()
    inv = Invitation(token_hash=digest(raw), created_by_id=actor.id, room_id=room_id, room_role=room_role,
                     expires_at=utcnow() + timedelta(days=current_app.config["INVITE_DAYS"]), **fields)
    db.session.add(inv)
    db.session.flush()
    raw = invitation_links.token_for(inv)   # derived, so the link can be shown again (auth/invitation_links.py)
    inv.token_hash = digest(raw)
    audit.record("account.invited", actor=actor, target_type="invitation", target_id=inv.id, room_id=room_id,
                 detail={"email": fields["email"], "kind": fields["kind"], "role": fields["role"],
                         "organisation_id": fields["organisation_id"], "room_role": room_role})
    return inv, external_url("auth.accept_invite", token=raw)


def send_invitation(actor: User, inv: Invitation, link: str) -> bool:
    """After the commit: e-mail the link when the invitation names an address and SMTP is set."""
    if not (inv.email and mail.enabled()):
        return False
    return mail.send(inv.email, "You are invited to Collab",
                     f"{actor.name} has invited you to Collab.\n\nCreate your account here (the link works once and "
                     f"expires at {timezones.fmt(inv.expires_at, timezones.site_zone_name(), 'long')}):\n{link}\n")


# What else accepting an invitation grants, added by the packages that own it (rooms: the membership of the room
# an invitation names, rooms/services.py). A registry, so that auth imports nothing from them. Each hook runs
# inside accept_invitation's write transaction, with the invitation and the new (flushed) account.
_invitation_accepted: list[Callable[[Invitation, User], None]] = []


def on_invitation_accepted(hook: Callable[[Invitation, User], None]) -> Callable[[Invitation, User], None]:
    """Register `hook` (a decorator); registering the same function twice keeps one."""
    if hook not in _invitation_accepted:
        _invitation_accepted.append(hook)
    return hook


# What the invitation page says accepting gives besides an account, from the same packages: each hook
# returns, for an invitation, the rooms it makes the new account a member of, as {"room": name,
# "role": role}.
_invitation_rooms: list[Callable[[Invitation], list[dict]]] = []


def on_invitation_rooms(hook: Callable[[Invitation], list[dict]]) -> Callable[[Invitation], list[dict]]:
    """Register `hook` (a decorator); registering the same function twice keeps one."""
    if hook not in _invitation_rooms:
        _invitation_rooms.append(hook)
    return hook


def invitation_rooms(inv: Invitation) -> list[dict]:
    """The rooms accepting `inv` makes its new account a member of (for the invitation page)."""
    return [room for hook in _invitation_rooms for room in hook(inv)]


def pending_invitations(actor: User) -> list[Invitation]:
    q = select(Invitation).where(Invitation.used_at.is_(None), Invitation.revoked_at.is_(None),
                                 Invitation.expires_at > utcnow())
    if not actor.is_admin:
        q = q.where(Invitation.organisation_id == actor.organisation_id)
    return list(db.session.scalars(q.order_by(Invitation.created_at.desc())))


def invitation_for(token: object) -> Invitation:
    if not isinstance(token, str) or len(token) > 200:
        raise NotFound("This invitation link is not valid.")
    inv = db.session.scalar(select(Invitation).where(Invitation.token_hash == digest(token)))
    if inv is None:
        raise NotFound("This invitation link is not valid.")
    if inv.used_at is not None:
        raise Invalid("This invitation has already been used.")
    if inv.revoked_at is not None:
        raise Invalid("This invitation has been withdrawn. Ask the person who invited you for a new one.")
    if inv.expires_at <= utcnow():
        raise Invalid("This invitation has expired. Ask the person who invited you for a new one.")
    return inv


def accept_invitation(token: object, *, name: object, email: object, password: object,
                      job_title: object = None) -> User:
    inv = invitation_for(token)
    db.begin_write()
    inv = invitation_for(token)  # re-read inside the write lock: single use
    user = _new_user(email=inv.email or email, name=name, password=password, kind=inv.kind, role=inv.role,
                     organisation_id=inv.organisation_id, job_title=job_title, org_admin=inv.org_admin)
    db.session.flush()
    inv.used_at = utcnow()
    inv.used_by_id = user.id
    audit.record("account.created", actor=user, target_type="user", target_id=user.id,
                 detail={"invitation_id": inv.id})
    for hook in _invitation_accepted:
        hook(inv, user)
    db.session.commit()
    return user


# -- passwords, activation ----------------------------------------------------

def change_password(user: User, current: object, new: object, *, keep_session: Optional[str] = None) -> User:
    """Every other session ends (all of them when `keep_session`, a session key, is None)."""
    if not isinstance(current, str) or not passwords.verify_password(user.password_hash, current)[0]:
        raise Invalid("Your current password is not correct.", "current_password")
    passwords.check_strength(new, email=user.email, name=user.name, field="new_password")
    db.begin_write()
    user = db.session.merge(user)
    user.password_hash = passwords.hash_password(new)
    audit.record("auth.password_changed", actor=user, target_type="user", target_id=user.id)
    user_sessions.end_others_in_tx(user, keep=keep_session, reason="password_changed")
    db.session.commit()
    notices.security_change(user, "password_changed")
    return user


def change_email(user: User, email: object, password: object) -> User:
    """A new sign-in address, after the password is entered again (auth/reauth.py). Other
    sessions end; the old address is told (when SMTP is set)."""
    new = validate.email(email, "email")
    reauth.require(user, password, what="change your e-mail address")
    if new == user.email:
        raise Invalid("That is already your e-mail address.", "email")
    if find_user_by_email(new) is not None:
        raise Invalid("Another account already uses that e-mail address.", "email")
    old = user.email
    db.begin_write()
    user = db.session.merge(user)
    user.email = new
    audit.record("account.email_changed", actor=user, target_type="user", target_id=user.id,
                 detail={"from": old, "to": new})
    keep = user_sessions.current_key()
    user_sessions.end_others_in_tx(user, keep=keep, reason="email_changed")
    db.session.commit()
    notices.email_changed(user, old)
    return user


def issue_password_reset(actor: User, target_id: int) -> str:
    target = db.session.get(User, validate.int_id(target_id, "user_id"))
    if target is None or not perm.can_manage_account(actor, target):
        raise NotFound()
    raw = new_secret()
    db.begin_write()
    db.session.add(PasswordReset(token_hash=digest(raw), user_id=target.id, created_by_id=actor.id,
                                 expires_at=utcnow() + timedelta(days=2)))
    audit.record("auth.password_reset_issued", actor=actor, target_type="user", target_id=target.id)
    db.session.commit()
    return external_url("auth.reset_password", token=raw)


def reset_for(token: object) -> PasswordReset:
    if not isinstance(token, str) or len(token) > 200:
        raise NotFound("This reset link is not valid.")
    reset = db.session.scalar(select(PasswordReset).where(PasswordReset.token_hash == digest(token)))
    if reset is None:
        raise NotFound("This reset link is not valid.")
    if reset.used_at is not None or reset.expires_at <= utcnow():
        raise Invalid("This reset link has expired or was already used. Ask for a new one from the sign-in page, "
                      "or ask an administrator.")
    return reset


def reset_password(token: object, new: object) -> User:
    reset = reset_for(token)
    passwords.check_strength(new, email=reset.user.email, name=reset.user.name)
    db.begin_write()
    reset = reset_for(token)
    reset.used_at = utcnow()
    # Every other open link of the account ends with it: one reset, one new password.
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == reset.user_id,
                                                   PasswordReset.used_at.is_(None)).values(used_at=reset.used_at))
    reset.user.password_hash = passwords.hash_password(new)
    user_sessions.rotate_in_tx(reset.user)
    lockout.unlock_in_tx(reset.user_id)
    audit.record("auth.password_reset", actor=reset.user, target_type="user", target_id=reset.user_id)
    db.session.commit()
    notices.security_change(reset.user, "password_reset")
    return reset.user


def set_active(actor: User, target_id: int, active: bool) -> User:
    """Deactivating ends every session of the account at once (its session token changes)."""
    target = db.session.get(User, validate.int_id(target_id, "user_id"))
    if target is None or not perm.can_manage_account(actor, target):
        raise NotFound()
    db.begin_write()
    if target.active and not active:  # its live connections, token ones too, end after the commit
        events.queue(db.session, "account.changed", {"user_id": target.id, "reason": "deactivated"})
    target.active = active
    user_sessions.rotate_in_tx(target)
    if not active:
        user_sessions.end_others_in_tx(target, keep=None, reason="deactivated", actor=actor, disconnect=False)
    audit.record("account.reactivated" if active else "account.deactivated", actor=actor, target_type="user",
                 target_id=target.id)
    db.session.commit()
    return target


def update_profile(user: User, *, name: object, job_title: object) -> User:
    name_v = validate.display_name(name, "name", max_len=120)
    title_v = validate.text(job_title, "job_title", max_len=120, required=False, label="Rank or job title") or None
    db.begin_write()
    user = db.session.merge(user)
    user.name, user.job_title = name_v, title_v
    db.session.commit()
    return user


def set_time_zone(user: User, name: object) -> User:
    """The zone `user` reads times in; "" or None: the site's (COLLAB_TIME_ZONE). A name the tz
    database does not know is refused with a message and nothing is changed."""
    zone_v = None if name in (None, "") else timezones.check(name, "time_zone")
    db.begin_write()
    user = db.session.merge(user)
    user.time_zone = zone_v
    db.session.commit()
    return user


def list_users(actor: User) -> list[User]:
    q = select(User).order_by(User.name)
    if not actor.is_admin:
        q = q.where(User.organisation_id == actor.organisation_id)
    return list(db.session.scalars(q))


# -- personal access tokens ----------------------------------------------------

TOKEN_PREFIX = "collab_"


def create_token(user: User, name: object) -> tuple[ApiToken, str]:
    name_v = validate.text(name, "name", max_len=100, label="Token name")
    raw = new_secret(TOKEN_PREFIX)
    db.begin_write()
    token = ApiToken(user_id=user.id, name=name_v, token_hash=digest(raw), prefix=raw[:12])
    db.session.add(token)
    db.session.commit()
    return token, raw


def list_tokens(user: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)))


def revoke_token(user: User, token_id: object) -> None:
    tid = validate.int_id(token_id, "token_id")
    token = db.session.get(ApiToken, tid)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound()
    db.begin_write()
    token = db.session.get(ApiToken, tid)
    token.revoked_at = utcnow()
    events.queue(db.session, "account.changed", {"user_id": user.id, "reason": "token_revoked", "token_id": tid})
    db.session.commit()


def user_for_token(raw: object) -> Optional[User]:
    """The account a personal access token signs in (API and Socket.IO), its use noted (`note_token_use`)."""
    if not isinstance(raw, str) or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest(raw), ApiToken.revoked_at.is_(None)))
    if token is None or not token.user.active:
        return None
    note_token_use(token.token_hash)
    return token.user


TOKEN_USE_EVERY = timedelta(minutes=1)
_TOKEN_USES = "collab_token_uses"  # app.extensions: token hash -> when this process last wrote its use


def note_token_use(token_hash: str) -> None:
    """Record that a token was just used, so its owner can see whether a leaked token is in use ("Last used"
    on the account page). Cheap: at most once a minute per token and process (remembered here, no query
    otherwise), and the UPDATE changes the row only if its mark is older than a minute (other processes).
    It runs in its own short transaction on its own connection, not the request's: the request may be
    read-only, and it must not look like a change to tokens (collab/api.py forgets remembered tokens on
    those). Best effort: a failure to write the mark never refuses the request. Call it before the caller
    has changed anything (it ends the session's read-only transaction)."""
    now = utcnow()
    seen: dict[str, object] = current_app.extensions.setdefault(_TOKEN_USES, {})
    last = seen.get(token_hash)
    if last is not None and now - last < TOKEN_USE_EVERY:
        return
    sess = db.session()
    if sess.new or sess.dirty or sess.deleted:  # called at the start of a request or connection: never so
        return
    if len(seen) >= 10_000:
        seen.clear()
    seen[token_hash] = now
    # End the caller's read-only transaction first (objects stay loaded: expire_on_commit is off). On SQLite
    # a read snapshot older than this write could not later become a write transaction of its own.
    sess.commit()
    table = ApiToken.__table__
    stmt = (update(table).where(table.c.token_hash == token_hash,
                                or_(table.c.last_used_at.is_(None), table.c.last_used_at < now - TOKEN_USE_EVERY))
            .values(last_used_at=now))
    try:
        with db.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                conn.execute(stmt)
    except SQLAlchemyError:
        log.warning("could not record the use of a personal access token", exc_info=True)


def load_session_user(session_id: str) -> Optional[User]:
    """Flask-Login's loader: "<id>:<session secret>", one server-side session each (auth/sessions.py);
    rotating the account's session token still ends all of them."""
    return user_sessions.load(session_id)
