"""Pages for two-step sign-in, sessions and the audit log (issue 7). Views only
translate forms to services (auth/mfa.py, auth/sessions.py, auth/audit_log.py).
Data download and erasure are rooms/account_data_views.py (they gather or
remove room content)."""
from __future__ import annotations

import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required

from auth import audit_log, lockout, mfa, reauth
from auth import permissions as perm
from auth import sessions as user_sessions
from auth.models import User
from collab.errors import NotFound, ServiceError
from collab.extensions import db, limiter
from collab.forms import attempt, field, flash_ok

bp = Blueprint("security", __name__)

PENDING_SECONDS = 600   # time allowed between the password and the second step


# -- the second step of signing in ----------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("rooms.rooms")


def begin_second_step(user: User, *, remember: bool, next_url: str | None):
    """After a correct password: not signed in yet. The browser's (signed) session
    remembers who passed the first step; the code page or first set-up follows."""
    session["mfa_uid"] = user.id
    session["mfa_gen"] = user_sessions.generation(user)
    session["mfa_at"] = int(time.time())
    session["mfa_remember"] = bool(remember)
    session["mfa_next"] = _safe_next(next_url)
    if mfa.enabled(user):
        return redirect(url_for("security.login_code"))
    return redirect(url_for("security.two_step"))


def _pending_user() -> User | None:
    uid, at = session.get("mfa_uid"), session.get("mfa_at")
    if not isinstance(uid, int) or not isinstance(at, int) or time.time() - at > PENDING_SECONDS:
        return None
    user = db.session.get(User, uid)
    if user is None or not user.active or session.get("mfa_gen") != user_sessions.generation(user):
        return None
    return user


def _drop_pending() -> None:
    for key in [k for k in session if k.startswith("mfa_")]:
        session.pop(key, None)


def _login_limit() -> str:
    return current_app.config["LOGIN_LIMIT"]


def _pending_key() -> str:
    return "acct-id:" + str(session.get("mfa_uid", ""))


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_pending_key)
def login_code():
    if current_user.is_authenticated:
        return redirect(url_for("rooms.rooms"))
    user = _pending_user()
    if user is None or not mfa.enabled(user):
        _drop_pending()
        return redirect(url_for("auth.login"))
    errors: dict = {}
    status = 200
    if request.method == "POST":
        try:
            lockout.check(user)
            how = mfa.verify_sign_in(user, field("code"))
            if how:
                remember, next_url = bool(session.get("mfa_remember")), session.get("mfa_next")
                user_sessions.sign_in(user, remember=remember)
                if how == "recovery":
                    flash_ok(f"You signed in with a recovery code; it cannot be used again. "
                             f"{mfa.remaining_codes(user)} recovery codes are left.")
                return redirect(_safe_next(next_url))
            lockout.failed(user, "wrong second-step code")
            lockout.check(user)
            errors["code"] = "That code is not correct, or was already used. Enter the current code from your app."
            status = 401
        except lockout.AccountLocked as err:
            _drop_pending()
            return render_template("auth/login.html", errors={"_form": err.message}, form={}), 423
    return render_template("auth/login_code.html", errors=errors), status


# -- setting up two-step sign-in --------------------------------------------------------------------------

def _two_step_user() -> tuple[User | None, bool]:
    """(the account, whether it is signing in) for the set-up page."""
    if current_user.is_authenticated:
        return current_user._get_current_object(), False
    return _pending_user(), True


@bp.route("/account/two-step", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def two_step():
    user, signing_in = _two_step_user()
    if user is None:
        _drop_pending()
        return redirect(url_for("auth.login"))
    if signing_in and mfa.enabled(user):  # half signed in: the code comes first, not a new phone
        return redirect(url_for("security.login_code"))
    errors: dict = {}
    if request.method == "POST":
        keep = None if signing_in else user_sessions.current_key()
        codes = attempt(lambda: mfa.confirm_enrolment(
            user, field("code"), keep_session=keep, signing_in=signing_in, password=field("password"),
            current_code=field("current_code")), errors)
        if codes:
            next_url = url_for("auth.account")
            if signing_in:
                remember, next_url = bool(session.get("mfa_remember")), _safe_next(session.get("mfa_next"))
                mfa.record_enrolled_sign_in(user)
                user_sessions.sign_in(user, remember=remember)
            return render_template("auth/recovery_codes.html", codes=codes, next_url=next_url, new=True)
    secret = mfa.pending_secret(user)
    uri = mfa.provisioning_uri(user, secret)
    return render_template("auth/two_step.html", errors=errors, secret=secret, qr=mfa.qr_data_uri(uri),
                           signing_in=signing_in, required=mfa.required_for(user), enabled=mfa.enabled(user),
                           grouped=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)))


@bp.post("/account/two-step/off")
@login_required
@limiter.limit(_login_limit)
def two_step_off():
    try:
        mfa.disable(current_user, field("code"), keep_session=user_sessions.current_key(),
                    password=field("password"))
    except ServiceError as err:
        return _error_page(err)
    flash_ok("Two-step sign-in is off. Your other devices have been signed out.")
    return redirect(url_for("auth.account"))


@bp.post("/account/two-step/codes")
@login_required
def two_step_codes():
    try:
        codes = mfa.regenerate_codes(current_user, field("code"), keep_session=user_sessions.current_key())
    except ServiceError as err:
        return _error_page(err)
    return render_template("auth/recovery_codes.html", codes=codes, next_url=url_for("auth.account"), new=False)


def _error_page(err: ServiceError):
    """A refused form posted from the account or administration page: say why, with a way back."""
    return render_template("error.html", status=err.status, message=err.message), err.status


# -- sessions ----------------------------------------------------------------------------------------------

@bp.post("/account/sessions/<int:session_id>/end")
@login_required
@limiter.limit(_login_limit)
def end_session(session_id: int):
    try:
        user_sessions.end_session(current_user, session_id, password=field("password"))
    except NotFound:
        raise
    except ServiceError as err:
        return _error_page(err)
    flash_ok("That session has been ended.")
    return redirect(url_for("auth.account") + "#sessions-h")


@bp.post("/account/sessions/end-others")
@login_required
@limiter.limit(_login_limit)
def end_other_sessions():
    try:
        n = user_sessions.end_all_others(current_user, keep=user_sessions.current_key(), password=field("password"))
    except ServiceError as err:
        return _error_page(err)
    flash_ok(f"Signed out of {n} other session{'s' if n != 1 else ''}.")
    return redirect(url_for("auth.account") + "#sessions-h")


# -- administration ------------------------------------------------------------------------------------------

@bp.post("/admin/security")
@login_required
def admin_security():
    if not perm.can_administer(current_user):
        abort(404)
    try:
        mfa.set_policy(current_user, field("mfa_policy"))
    except ServiceError as err:
        return _error_page(err)
    flash_ok(f"Two-step sign-in: {mfa.POLICIES[mfa.policy()].lower()}.")
    return redirect(url_for("auth.admin_people"))


@bp.post("/admin/people/<int:user_id>/reset-two-step")
@login_required
def admin_reset_two_step(user_id: int):
    if not (current_user.is_admin or current_user.org_admin):
        abort(404)
    target = mfa.admin_reset(current_user, user_id)
    flash_ok(f"Two-step sign-in of {target.name} is off and their sessions have ended.")
    return redirect(url_for("auth.admin_people"))


@bp.post("/admin/people/<int:user_id>/end-sessions")
@login_required
def admin_end_sessions(user_id: int):
    if not (current_user.is_admin or current_user.org_admin):
        abort(404)
    target = user_sessions.end_all_for(current_user, user_id)
    flash_ok(f"{target.name} has been signed out everywhere.")
    return redirect(url_for("auth.admin_people"))


@bp.get("/admin/audit")
@login_required
def admin_audit():
    if not perm.can_administer(current_user):
        abort(404)
    errors: dict = {}
    filters = audit_log.Filters()
    try:
        filters = audit_log.parse_filters(request.args)
    except ServiceError as err:
        errors[err.field or "_form"] = err.message
    page = audit_log.page_of(filters, request.args.get("page"))
    return render_template("auth/audit.html", errors=errors, page=page, filters=filters,
                           actions=audit_log.action_choices(), args=request.args, describe=audit_log.describe,
                           detail_text=audit_log.detail_text)


@bp.get("/admin/audit.csv")
@login_required
def admin_audit_csv():
    if not perm.can_administer(current_user):
        abort(404)
    filters = audit_log.parse_filters(request.args)
    audit_log.record_export(current_user, filters)
    resp = Response(stream_with_context(audit_log.csv_rows(filters)), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="collab-audit-{time.strftime("%Y%m%d-%H%M%S")}.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- accounts that must set up two-step sign-in can do nothing else --------------------------------------------

_ENROL_ALLOWED = {"static", "security.two_step", "auth.logout", "auth.login", "security.login_code"}


@bp.before_app_request
def _enforce_enrolment():
    if request.endpoint in _ENROL_ALLOWED or request.endpoint is None:
        return None
    if request.path.startswith("/api/"):
        return None  # the API checks enrolment where it resolves the token (collab/api.py)
    if current_user.is_authenticated and mfa.must_enrol(current_user):
        return redirect(url_for("security.two_step"))
    return None


@bp.app_context_processor
def _helpers():
    def account_security():
        user = current_user._get_current_object()
        return {"sessions": user_sessions.live_sessions(user), "current_key": user_sessions.current_key(),
                "device": user_sessions.device, "mfa_on": mfa.enabled(user), "mfa_since": mfa.enabled_at(user),
                "codes_left": mfa.remaining_codes(user), "mfa_required": mfa.required_for(user),
                "recent": reauth.recent(user)}

    def admin_security():
        return {"policy": mfa.policy(), "policies": mfa.POLICIES, "mfa_on": mfa.enabled,
                "can_erase": lambda u: perm.can_erase_account(current_user, u)}

    return {"account_security": account_security, "admin_security": admin_security}
