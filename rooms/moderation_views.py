"""Pages of issue 7's room side: report a post, the moderation queue and actions,
room label, attribution and retention settings. On the rooms blueprint
(rooms/blueprint.py; imported by rooms/views.py); every route needs a signed-in
account and answers 404 to anyone who may not see the room."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required

from collab.errors import NotFound, ServiceError
from collab.forms import attempt, field, flash_ok
from rooms import labels, moderation, policy, pseudonyms, retention, services, trust_settings
from rooms.blueprint import bp
from rooms.notifications import actor_name


@bp.record_once
def _register_helpers(state) -> None:
    # Globals, not a context processor: imported macros (rooms/_post.html) see globals only.
    state.app.jinja_env.globals.update(_trust_helpers())


def _trust_helpers() -> dict:
    def me():
        return current_user._get_current_object() if current_user.is_authenticated else None

    def author_label(post_or_thread) -> str:
        return pseudonyms.display(post_or_thread)

    def notice_actor(n) -> str:
        return actor_name(n)

    return {
        "room_label": labels.label_of,
        "label_is_sensitive": labels.is_sensitive,
        "author_label": author_label,
        "notice_actor": notice_actor,
        "can_see_hidden": lambda p: policy.can_see_hidden_post(me(), p),
        "can_flag": lambda p: p.author_id != getattr(me(), "id", None) and policy.can_flag_post(me(), p),
        "can_moderate_post": lambda p: not p.deleted and policy.can_moderate(me(), p.thread.room),
        "can_moderate_room": lambda r: policy.can_moderate(me(), r),
        "can_download": lambda r: policy.can_download_attachments(me(), r),
        "retention_preview": lambda room: retention.preview(me(), room),
    }


@bp.route("/posts/<int:post_id>/flag", methods=["GET", "POST"])
@login_required
def flag_post(post_id: int):
    post = services.get_post(current_user, post_id)
    if not policy.can_flag_post(current_user, post):
        raise NotFound("Post not found.")
    errors: dict = {}
    if request.method == "POST" and attempt(lambda: moderation.flag_post(current_user, post_id, field("reason")),
                                            errors):
        flash_ok("Thank you. The room's moderators will look at this post.")
        return redirect(url_for("rooms.post_link", post_id=post_id))
    return render_template("rooms/flag.html", post=post, thread=post.thread, room=post.thread.room, errors=errors,
                           form=request.form), (422 if errors else 200)


@bp.get("/rooms/<int:room_id>/moderation")
@login_required
def moderation_queue(room_id: int):
    q = moderation.queue(current_user, room_id)
    return render_template("rooms/moderation.html", room=q.room, q=q)


@bp.route("/posts/<int:post_id>/moderate", methods=["GET", "POST"])
@login_required
def moderate_post(post_id: int):
    post = services.get_post(current_user, post_id)
    room = post.thread.room
    if not policy.can_moderate(current_user, room):
        raise NotFound("Post not found.")
    errors: dict = {}
    revealed = None
    if request.method == "POST":
        action = field("action")
        done = None
        if action == "hide":
            done = attempt(lambda: moderation.hide_post(current_user, post_id, field("reason")), errors)
            msg = "The post is hidden. Its author has been told why."
        elif action == "restore":
            done = attempt(lambda: moderation.restore_post(current_user, post_id), errors)
            msg = "The post is shown again."
        elif action == "delete":
            done = attempt(lambda: moderation.delete_post(current_user, post_id, field("reason")), errors)
            msg = "The post has been removed. Its author has been told."
        elif action == "dismiss":
            done = attempt(lambda: moderation.dismiss_flags(current_user, post_id), errors) is not None
            msg = "Reports dismissed."
        elif action == "mute":
            done = attempt(lambda: moderation.mute_member(current_user, room.id, post.author_id, field("hours"),
                                                          field("reason"), post_id=post.id), errors)
            msg = "The author is muted in this room."
        elif action == "reveal":
            result = attempt(lambda: moderation.reveal_author(current_user, post_id, field("reason")), errors)
            if not errors:
                revealed = result or "former"
        else:
            errors["_form"] = "Unknown action."
        if done and not errors:
            flash_ok(msg)
            return redirect(url_for("rooms.moderation_queue", room_id=room.id))
    return render_template("rooms/moderate_post.html", post=post, thread=post.thread, room=room, errors=errors,
                           form=request.form, revealed=revealed,
                           muted_until=policy.muted_until(post.author, room) if post.author else None), (
        422 if errors else 200)


@bp.post("/rooms/<int:room_id>/mutes/<int:mute_id>/lift")
@login_required
def lift_mute(room_id: int, mute_id: int):
    moderation.lift_mute(current_user, room_id, mute_id)
    flash_ok("The mute has been lifted.")
    return redirect(url_for("rooms.moderation_queue", room_id=room_id))


@bp.route("/rooms/<int:room_id>/trust", methods=["GET", "POST"])
@login_required
def room_trust(room_id: int):
    """The room's confidentiality label and whether posts are attributed (owners)."""
    room = services.get_room(current_user, room_id)
    if not policy.can_manage_room(current_user, room):
        raise NotFound("Room not found.")
    errors: dict = {}
    if request.method == "POST":
        if field("action") == "label":
            if attempt(lambda: trust_settings.set_label(current_user, room_id, field("label")), errors):
                flash_ok(f"The room is now labelled {labels.label_of(services.get_room(current_user, room_id))}.")
                return redirect(url_for("rooms.room", room_id=room_id))
        elif field("action") == "attribution":
            on = field("non_attributed") == "on"
            if attempt(lambda: trust_settings.set_non_attributed(current_user, room_id, on), errors):
                flash_ok("Posts in this room will appear as “Participant n”." if on
                         else "Posts in this room will show their authors' names.")
                return redirect(url_for("rooms.room", room_id=room_id))
        elif field("action") == "recording":
            on = field("recording_allowed") == "on"
            if attempt(lambda: trust_settings.set_recording_allowed(current_user, room_id, on), errors):
                flash_ok("Chairs may record this room's meetings." if on
                         else "This room's meetings will not be recorded.")
                return redirect(url_for("rooms.room", room_id=room_id))
        else:
            errors["_form"] = "Unknown action."
    return render_template("rooms/trust_settings.html", room=room, errors=errors, labels=labels.labels(),
                           current=labels.label_of(room), recording_refusal=policy.recording_refusal(room)), \
        (422 if errors else 200)



@bp.post("/rooms/<int:room_id>/retention")
@login_required
def room_retention(room_id: int):
    """How long the room keeps its posts (site administrators; rooms/retention.py)."""
    try:
        room = retention.set_retention(current_user, room_id, field("retention_days"))
    except ServiceError as err:
        if err.status == 404:
            raise
        return render_template("error.html", status=err.status, message=err.message), err.status
    flash_ok(f"Posts are kept for {room.retention_days} days." if room.retention_days
             else "Posts are kept until someone deletes them.")
    return redirect(url_for("rooms.settings", room_id=room_id) + "#ret-h")
