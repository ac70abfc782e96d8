"""Pages and endpoints of notifications (page, bell, settings), reactions and
@mention suggestions; the same on the JSON API; and `init_app`,
which wires the Socket.IO handlers, these routes and the digest command into
the app."""
from __future__ import annotations

import click
from flask import Blueprint, Flask, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from collab import tasks, validate
from collab.api import api_user, json_body, ok, query_int
from collab.api import bp as api_bp
from collab.forms import attempt, field, flash_ok
from collab.http import wants_json
from rooms import mentions, notifications, notify_email, reactions, watching
from rooms import notify_delivery  # noqa: F401  (its before_commit hook writes the notifications)
from rooms import revocation  # noqa: F401  (its commit listeners)
from rooms.live import connections, fanout, handlers, presence  # noqa: F401  (fanout, handlers: listeners, events)

bp = Blueprint("live", __name__)


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if validate.digits(raw) and len(raw) < 9 and 0 < int(raw) < 100_000 else 1


# -- notifications page ------------------------------------------------------------------

@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def notifications_page():
    errors: dict = {}
    if request.method == "POST":
        action = field("action")
        if action == "read-all":
            notifications.mark_all_read(current_user)
            flash_ok("All notifications are marked as read.")
            return redirect(url_for("live.notifications_page"))
        if action == "read":
            if attempt(lambda: notifications.mark_read(current_user, [field("id")]), errors) is not None:
                if wants_json():  # the thread page read it as it came
                    return jsonify({"unread": notifications.unread_count(current_user)})
                return redirect(url_for("live.notifications_page", page=_page()))
        elif action == "email":
            if attempt(lambda: notifications.set_prefs(current_user, email_mentions=field("email_mentions") == "on",
                                                       email_digest=field("email_digest") == "on"), errors):
                flash_ok("E-mail settings saved.")
                return redirect(url_for("live.notifications_page") + "#settings-h")
        elif action == "room":
            if attempt(lambda: watching.set_room_level(current_user, field("room_id"), field("level")), errors):
                flash_ok("Room notification setting saved.")
                return redirect(url_for("live.notifications_page") + "#rooms-h")
        else:
            errors["_form"] = "Unknown action."
    page = _page()
    unread_only = request.args.get("show") == "unread"
    items, total = notifications.list_for(current_user, page=page, unread_only=unread_only)
    return render_template("notifications.html", items=items, total=total, page=page,
                           per_page=notifications.PER_PAGE, unread_only=unread_only,
                           unread=notifications.unread_count(current_user), prefs=notifications.prefs(current_user),
                           rooms=watching.room_levels(current_user), levels=watching.ROOM_LEVELS,
                           headline=notifications.headline, excerpt=notifications.excerpt,
                           errors=errors), (422 if errors else 200)


# -- watch levels from the room and thread pages (their "Notifications" menu) ---------------------------

def _level_answer(errors: dict, back: str, saved: str):
    """The menu's answer: JSON for the page's script, else back to the page (or the refusal)."""
    as_json = wants_json()
    if errors:
        message = next(iter(errors.values()))
        if as_json:
            return jsonify({"error": {"message": message, "field": "level"}}), 422
        return render_template("error.html", status=422, message=message), 422
    if as_json:
        return jsonify({"message": saved})
    flash_ok(saved)
    return redirect(back)


@bp.app_template_global("thread_watch")
def _thread_watch(thread) -> dict:
    """For the thread page's menu: the account's level for the thread and the one in effect."""
    return watching.thread_state(current_user, thread)


@bp.post("/threads/<int:thread_id>/notifications")
@login_required
def thread_level(thread_id: int):
    errors: dict = {}
    level = attempt(lambda: watching.set_thread_level(current_user, thread_id, field("level")), errors)
    label = watching.THREAD_LEVELS.get(level or "", ("",))[0]
    return _level_answer(errors, url_for("rooms.thread", thread_id=thread_id),
                         f"This thread’s notifications: {label}.")


@bp.post("/rooms/<int:room_id>/notifications")
@login_required
def room_level(room_id: int):
    errors: dict = {}
    m = attempt(lambda: watching.set_room_level(current_user, room_id, field("level")), errors)
    label = watching.ROOM_LEVELS[m.notify_level][0] if m is not None else ""
    return _level_answer(errors, url_for("rooms.room", room_id=room_id), f"This room’s notifications: {label}.")


@bp.get("/notifications/<int:notification_id>")
@login_required
def open_notification(notification_id: int):
    n = notifications.open_notification(current_user, notification_id)
    return redirect(url_for("rooms.post_link", post_id=n.post_id))


# -- reactions and mentions for pages (session cookie) --------------------------------------------

@bp.get("/threads/<int:thread_id>/reactions.json")
@login_required
def thread_reactions_json(thread_id: int):
    return jsonify({"me": {"id": current_user.id, "name": current_user.name},
                    "emoji": [{"emoji": e, "label": label} for e, label in reactions.EMOJI.items()],
                    "reactions": {str(k): v for k, v in reactions.thread_reactions(current_user, thread_id).items()}})


@bp.post("/posts/<int:post_id>/reactions")
@login_required
def react(post_id: int):
    """Add or take back a reaction (the page's buttons post here with the CSRF token)."""
    on = field("on", "1") != "0"
    summary = reactions.set_reaction(current_user, post_id, field("emoji"), on)
    if wants_json():
        return jsonify({"post_id": post_id, "reactions": summary})
    return redirect(url_for("rooms.post_link", post_id=post_id))


@bp.get("/rooms/<int:room_id>/mentions.json")
@login_required
def mention_json(room_id: int):
    return jsonify({"people": mentions.mention_candidates(current_user, room_id, request.args.get("q", ""),
                                                               thread_id=request.args.get("thread_id"))})


# -- the JSON API ----------------------------------------------------------------------------------

@api_bp.get("/notifications")
def api_notifications():
    user = api_user()
    page = query_int("page", 1)
    items, total = notifications.list_for(user, page=page, unread_only=request.args.get("unread") == "true")
    return ok({"total": total, "page": page, "unread": notifications.unread_count(user),
               "notifications": [notifications.notification_dict(n) for n in items]})


@api_bp.post("/notifications/read")
def api_notifications_read():
    data = json_body()
    user = api_user()
    if data.get("all") is True:
        n = notifications.mark_all_read(user)
    else:
        n = notifications.mark_read(user, data.get("ids"))
    return ok({"marked": n, "unread": notifications.unread_count(user)})


@api_bp.put("/posts/<int:post_id>/reactions/<emoji>")
def api_react(post_id: int, emoji: str):
    return ok({"post_id": post_id, "reactions": reactions.set_reaction(api_user(), post_id, emoji, True)})


@api_bp.delete("/posts/<int:post_id>/reactions/<emoji>")
def api_unreact(post_id: int, emoji: str):
    return ok({"post_id": post_id, "reactions": reactions.set_reaction(api_user(), post_id, emoji, False)})


@api_bp.put("/rooms/<int:room_id>/notifications")
def api_room_level(room_id: int):
    data = json_body()
    m = watching.set_room_level(api_user(), room_id, data.get("level"))
    return ok({"room_id": room_id, "level": m.notify_level})


@api_bp.put("/threads/<int:thread_id>/notifications")
def api_thread_level(thread_id: int):
    data = json_body()
    level = watching.set_thread_level(api_user(), thread_id, data.get("level"))
    return ok({"thread_id": thread_id, "level": level})


# -- wiring -------------------------------------------------------------------------------------------

@click.command("send-digests")
def send_digests_command() -> None:
    """E-mail the daily notification digests that are due (for cron; `flask serve` also runs this)."""
    n = notify_email.send_due_digests(is_online=presence.is_online)
    click.echo(f"Sent {n} digest{'s' if n != 1 else ''}.")


@tasks.loop("notification digests", first=30, every=900,
            when=lambda app: app.config.get("LIVE_DIGEST_LOOP", tasks.server_process(app)))
def _digests(app: Flask) -> None:
    """What `send-digests` does, every 15 minutes in every server process; each account is claimed
    in the database, so only one process sends it."""
    notify_email.send_due_digests(is_online=lambda uid: presence.is_online(uid, app))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(room_levels=watching.ROOM_LEVELS, thread_levels=watching.THREAD_LEVELS)
    app.cli.add_command(send_digests_command)
    connections.state(app)

    @app.context_processor
    def _bell():
        def bell_count() -> int:
            if not current_user.is_authenticated:
                return 0
            try:
                return notifications.unread_count(current_user)
            except Exception:  # noqa: BLE001 - never break a page over the bell
                return 0
        return {"bell_count": bell_count}

