"""Sign-in, first-run setup, invitations, password resets, account settings
and account administration pages. Views only translate forms to services."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user

from auth import account_admin, invitation_links, mfa, password_reset, preferences, services, suspension
from auth import permissions as perm
from auth import sessions as user_sessions
from auth.models import ACCOUNT_KINDS, ORG_KINDS, SITE_ROLE_LABELS, TEXT_SIZES, User
from auth.security_views import begin_second_step
from collab import timezones
from collab.errors import NotFound, ServiceError
from collab.extensions import db, limiter
from collab.forms import attempt, field, flash_ok

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("rooms.rooms")


def _drop_sign_in_prompt() -> None:
    """Before set-up nobody can sign in, so Flask-Login's "Please sign in to see that page." (flashed on
    the way here from any page) would only mislead: the set-up screen does not show it."""
    prompt = current_app.login_manager.login_message
    flashes = session.get("_flashes")
    if flashes and any(message == prompt for _category, message in flashes):
        session["_flashes"] = [(c, m) for c, m in flashes if m != prompt]


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if not services.setup_needed():
        return redirect(url_for("auth.login"))
    _drop_sign_in_prompt()
    errors: dict = {}
    if request.method == "POST":
        user = attempt(lambda: services.create_first_admin(
            email=field("email"), name=field("name"), password=field("password"),
            organisation=field("organisation")), errors)
        if user:
            user_sessions.sign_in(user)
            flash_ok("Collab is ready. You are its first administrator: invite people from Administration.")
            return redirect(url_for("rooms.rooms"))
    return render_template("auth/setup.html", errors=errors, form=request.form)


def _login_limit() -> str:
    return current_app.config["LOGIN_LIMIT"]


def _account_key() -> str:
    return "acct:" + request.form.get("email", "").strip().lower()[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key)
def login():
    if services.setup_needed():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    errors: dict = {}
    if request.method == "POST":
        user = services.authenticate(request.form.get("email"), request.form.get("password"))
        remember = request.form.get("remember") == "on"
        if user is None:
            errors["_form"] = services.SIGN_IN_REFUSED
        elif mfa.second_step_needed(user):  # a code, or setting up two-step sign-in, comes first
            return begin_second_step(user, remember=remember, next_url=request.args.get("next"))
        else:
            user_sessions.sign_in(user, remember=remember)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", errors=errors, form=request.form), (401 if errors else 200)


@bp.post("/logout")
@login_required
def logout():
    user_sessions.end_current("signed_out")
    logout_user()
    flash_ok("You have signed out.")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    errors: dict = {}
    try:
        inv = services.invitation_for(token)
    except ServiceError as err:
        return render_template("auth/invite_invalid.html", message=err.message), err.status
    if request.method == "POST":
        user = attempt(lambda: services.accept_invitation(
            token, name=field("name"), email=field("email"), password=field("password"),
            job_title=field("job_title")), errors)
        if user:
            logout_user()
            user_sessions.sign_in(user)
            flash_ok(f"Welcome to Collab, {user.name}.")
            return redirect(url_for("rooms.rooms"))
    return render_template("auth/accept_invite.html", inv=inv, errors=errors, form=request.form,
                           rooms=services.invitation_rooms(inv))


def _reset_limit() -> str:
    return current_app.config["RESET_LIMIT"]


def _reset_address_key() -> str:
    return "reset:" + request.form.get("email", "").strip().lower()[:254]


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
@limiter.limit(_reset_limit, methods=["POST"], key_func=_reset_address_key)
def forgot_password():
    """Self-service reset (auth/password_reset.py): only where Collab can send e-mail."""
    if not password_reset.available():
        raise NotFound("Password reset by e-mail is not available here: ask your administrator for a reset link.")
    if current_user.is_authenticated:
        return redirect(url_for("auth.account"))
    answer = None
    if request.method == "POST":
        answer = password_reset.request_reset(request.form.get("email"))
    return render_template("auth/forgot.html", answer=answer)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    errors: dict = {}
    try:
        services.reset_for(token)
    except ServiceError as err:
        return render_template("auth/invite_invalid.html", message=err.message), err.status
    if request.method == "POST":
        if field("password") != field("confirm"):
            errors["confirm"] = "The two passwords do not match."
        else:
            user = attempt(lambda: services.reset_password(token, field("password")), errors)
            if user:
                logout_user()
                flash_ok("Your password has been changed. Sign in with the new one.")
                return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", errors=errors)


# -- account settings -----------------------------------------------------------

@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    errors: dict = {}
    new_token = None
    if request.method == "POST":
        action = field("action")
        if action == "profile":
            if attempt(lambda: services.update_profile(current_user, name=field("name"),
                                                       job_title=field("job_title")), errors):
                flash_ok("Your profile has been saved.")
                return redirect(url_for("auth.account"))
        elif action == "time_zone":
            user = attempt(lambda: services.set_time_zone(current_user, field("time_zone")), errors)
            if user:
                flash_ok(f"Your time zone has been saved: times are now shown in {timezones.zone_name_for(user)}.")
                return redirect(url_for("auth.account"))
        elif action == "display":
            if attempt(lambda: preferences.set_display(current_user, text_size=field("text_size", "default"),
                                                       high_contrast=field("high_contrast")), errors):
                flash_ok("Your display preferences have been saved.")
                return redirect(url_for("auth.account") + "#prefs-h")
        elif action == "password":
            if field("new_password") != field("confirm_password"):
                errors["confirm_password"] = "The two new passwords do not match."
            else:
                user = attempt(lambda: services.change_password(current_user, field("current_password"),
                                                                 field("new_password"),
                                                                 keep_session=user_sessions.current_key()), errors)
                if user:
                    flash_ok("Your password has been changed. Other devices have been signed out.")
                    return redirect(url_for("auth.account"))
        elif action == "email":
            user = attempt(lambda: services.change_email(current_user, field("email"), field("password")), errors,
                           {"email": "new_email", "password": "email_password"})
            if user:
                flash_ok(f"Your e-mail address is now {user.email}. Other devices have been signed out.")
                return redirect(url_for("auth.account"))
        elif action == "token":
            created = attempt(lambda: services.create_token(current_user, field("token_name")), errors,
                              {"name": "token_name"})
            if created:
                new_token = created[1]
        elif action == "revoke":
            attempt(lambda: services.revoke_token(current_user, field("token_id")), errors)
            if not errors:
                flash_ok("The token has been revoked.")
                return redirect(url_for("auth.account"))
        else:
            errors["_form"] = "Unknown action."
    return render_template("auth/account.html", errors=errors, form=request.form,
                           tokens=services.list_tokens(current_user), new_token=new_token,
                           zones=timezones.choices(), text_sizes=TEXT_SIZES)


@bp.app_context_processor
def _display_preferences() -> dict:
    """Every page's <html> classes for the reader's text size and contrast (base.html)."""
    return {"display_classes": preferences.html_class(current_user)}


# -- administration --------------------------------------------------------------

def _require_inviter():
    if not (current_user.is_admin or current_user.org_admin):
        abort(404)


@bp.route("/admin/people", methods=["GET", "POST"])
@login_required
def admin_people():
    _require_inviter()
    errors: dict = {}
    invite_link = reset_link = None
    relinked = False
    if request.method == "POST":
        action = field("action")
        if action == "invite":
            created = attempt(lambda: services.create_invitation(
                current_user, email=field("email") or None, kind=field("kind", "staff"),
                role=field("role", "member"), organisation_id=field("organisation_id") or None,
                org_admin=field("org_admin") == "on", note=field("note")), errors)
            if created:
                invite_link = created[1]
        elif action == "invite-link":
            again = attempt(lambda: invitation_links.link_again(current_user, field("invitation_id")), errors)
            if again:
                invite_link, relinked = again[1], again[2]
        elif action == "revoke-invite":
            inv = attempt(lambda: invitation_links.revoke(current_user, field("invitation_id")), errors)
            if inv:
                flash_ok(f"The invitation for {inv.email or 'anyone with the link'} has been withdrawn: its link no "
                         "longer works.")
                return redirect(url_for("auth.admin_people") + "#pend-h")
        elif action in ("deactivate", "activate"):
            # An account this administrator may not manage is a 404, like one that does not exist.
            try:
                target = services.set_active(current_user, int(field("user_id") or 0), action == "activate")
                flash_ok(f"{target.name} has been {'reactivated' if action == 'activate' else 'deactivated'}.")
                return redirect(url_for("auth.admin_people"))
            except ValueError:
                errors["_form"] = "That account was not found."
            except NotFound:
                raise NotFound("That account was not found.") from None
        elif action == "reset":
            try:
                reset_link = services.issue_password_reset(current_user, int(field("user_id") or 0))
            except ValueError:
                errors["_form"] = "That account was not found."
            except NotFound:
                raise NotFound("That account was not found.") from None
        elif action == "organisation":
            if attempt(lambda: services.create_organisation(current_user, field("org_name"),
                                                            field("org_kind", "force")), errors,
                       {"name": "org_name", "kind": "org_kind"}):
                flash_ok("The organisation has been added.")
                return redirect(url_for("auth.admin_people"))
        else:
            errors["_form"] = "Unknown action."
    orgs = _orgs_for(current_user)
    account_filter = account_admin.AccountFilter.from_args(request.args)
    users, matched = account_admin.search_accounts(current_user, account_filter)
    return render_template("auth/admin_people.html", errors=errors, form=request.form,
                           users=users, matched=matched, account_filter=account_filter,
                           statuses=account_admin.STATUSES, site_roles=SITE_ROLE_LABELS, orgs=orgs,
                           invitations=services.pending_invitations(current_user),
                           invite_link=invite_link, relinked=relinked, reset_link=reset_link, kinds=ACCOUNT_KINDS,
                           org_kinds=ORG_KINDS, can_manage=lambda u: perm.can_manage_account(current_user, u))


def _orgs_for(actor: User) -> list:
    orgs = services.organisations()
    return orgs if actor.is_admin else [o for o in orgs if o.id == actor.organisation_id]


@bp.route("/admin/people/<int:user_id>/edit", methods=["GET", "POST"])
@login_required
def edit_account(user_id: int):
    """Change a person's kind, organisation, job title and site role (auth/account_admin.py)."""
    _require_inviter()
    if not 0 < user_id < 2**31:
        raise NotFound("That account was not found.")
    target = account_admin.account_to_edit(current_user, user_id)
    errors: dict = {}
    if request.method == "POST":
        updated = attempt(lambda: account_admin.update_account(
            current_user, user_id, kind=field("kind"), organisation_id=field("organisation_id"),
            job_title=field("job_title"), role=field("role") or None), errors)
        if updated:
            flash_ok(f"{updated.name}'s account has been saved.")
            return redirect(url_for("auth.admin_people", q=updated.email))
    return render_template("auth/admin_edit.html", target=target, errors=errors, form=request.form,
                           kinds=ACCOUNT_KINDS, orgs=_orgs_for(current_user), site_roles=SITE_ROLE_LABELS,
                           standing=perm.can_change_account_standing(current_user, target)), (422 if errors else 200)


@bp.route("/admin/people/<int:user_id>/suspend", methods=["GET", "POST"])
@login_required
def suspend_account(user_id: int):
    target = db.session.get(User, user_id) if 0 < user_id < 2**31 else None
    if target is None or not perm.can_suspend_account(current_user, target):
        raise NotFound()
    errors: dict = {}
    if request.method == "POST" and attempt(
            lambda: suspension.suspend_account(current_user, user_id, field("days"), field("reason")), errors):
        flash_ok(f"{target.name}'s account is suspended.")
        return redirect(url_for("auth.admin_people"))
    return render_template("auth/suspend.html", target=target, errors=errors, form=request.form,
                           current=suspension.current_suspension(target)), (422 if errors else 200)
