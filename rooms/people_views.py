"""People pages (issue 14): the people picker's look-up and bulk invitations. Views only translate
requests to rooms/people.py and rooms/bulk_invite.py."""
from __future__ import annotations

from flask import abort, jsonify, render_template, request
from flask_login import current_user, login_required

from auth.models import ACCOUNT_KINDS
from collab.forms import attempt, field
from collab.limits import people_limit
from rooms import bulk_invite, people, policy, services
from rooms.blueprint import bp


@bp.get("/rooms/<int:room_id>/people.json")
@login_required
@people_limit
def people_json(room_id: int):
    """?q=<start of a name>&for=members|add (rooms/people.py lookup)."""
    return jsonify(people.lookup(current_user, room_id, request.args.get("q", ""), request.args.get("for", "members")))


def _uploaded_text() -> str | None:
    """The CSV file chosen, as text (None: no file); too large or not text: Invalid via bulk_invite.parse."""
    f = request.files.get("file")
    if not f or not f.filename:
        return None
    raw = f.stream.read(bulk_invite.MAX_BYTES + 1)
    if len(raw) > bulk_invite.MAX_BYTES:
        return "x" * (bulk_invite.MAX_BYTES + 1)  # parse() refuses it with the size message
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return ""


@bp.route("/admin/people/bulk", methods=["GET", "POST"])
@login_required
def bulk_invite_page():
    if not bulk_invite.may_bulk_invite(current_user):
        abort(404)
    errors: dict = {}
    plan = created = None
    text = ""
    if request.method == "POST":
        text = _uploaded_text()
        text = field("people") if text is None else text
        args = {"kind": field("kind", "iag"), "room_id": field("room_id") or None, "role": field("role", "member")}
        if field("action") == "create":
            created = attempt(lambda: bulk_invite.create(current_user, text, **args), errors)
            if errors.get("people") and not created:
                plan = attempt(lambda: bulk_invite.preview(current_user, text, **args), {})
        else:
            plan = attempt(lambda: bulk_invite.preview(current_user, text, **args), errors)
    rooms = [r for r in services.readable_rooms(current_user)
             if not r.archived and policy.can_invite_by_email(current_user, r)]
    chosen_room = field("room_id") if request.method == "POST" else request.args.get("room_id", "")
    return render_template("rooms/bulk_invite.html", errors=errors, plan=plan, created=created, text=text,
                           rooms=rooms, kinds=ACCOUNT_KINDS, roles=people.INVITE_ROLES, chosen_room=chosen_room,
                           form=request.form, max_rows=bulk_invite.MAX_ROWS), (422 if errors else 200)
