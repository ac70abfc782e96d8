"""Pages of data protection (issue 7): an account downloads its data, an
administrator erases an account (rooms/account_data.py). On the rooms blueprint
(rooms/blueprint.py): erasure removes room content, so it belongs here, not in
auth/, which imports nothing from rooms/."""
from __future__ import annotations

from flask import abort, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from auth import permissions as perm
from auth.models import User
from collab import validate
from collab.extensions import db
from collab.forms import attempt, field, flash_ok
from rooms import account_data
from rooms.blueprint import bp


@bp.post("/account/export")
@login_required
def export_data():
    path, name = account_data.export_zip(current_user)
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=name, max_age=0)


@bp.route("/admin/people/<int:user_id>/erase", methods=["GET", "POST"])
@login_required
def admin_erase(user_id: int):
    target = db.session.get(User, user_id) if 1 <= user_id <= validate.MAX_ID else None
    if target is None or not perm.can_erase_account(current_user, target):
        abort(404)
    errors: dict = {}
    if request.method == "POST":
        done = attempt(lambda: account_data.erase_account(current_user, user_id, posts=field("posts"),
                                                          confirm=field("confirm")), errors)
        if done:
            flash_ok(f"The account has been erased; {done['posts']} posts now show as a former member"
                     f"{' with their text removed' if done['content'] == 'remove' else ''}.")
            return redirect(url_for("auth.admin_people"))
    return render_template("auth/erase.html", target=target, errors=errors, form=request.form,
                           counts=account_data.erase_preview(target))
