"""The composer's server side (issue 14): the Preview tab's rendering, a post's actions as a page, and the
JSON answers a composer sending files gets instead of a page.

- `POST /preview` renders Markdown with the very function that renders a post when it is saved
  (rooms/markdown.py), so the preview is what will be posted. It reads nothing from any room, so any signed-in
  account may ask; it is bounded (the post size limit, a small request body) and rate-limited per account.
- `GET /posts/<id>/actions` lists what the reader may do with a post: the "…" menu of the thread page
  (static/js/post_menu.js) without JavaScript. The menu and this page offer the same actions.
- `answer_json()` / `refused_json()`: a composer that uploads with progress (static/js/composer_files.js)
  asks for JSON, so a refusal (too large, too many files, empty) keeps the composer and the typed text and is
  shown beside the files, never as an error page.

Registered on the rooms blueprint (imported by rooms/views.py)."""
from __future__ import annotations

from flask import jsonify, render_template, request
from flask_login import current_user, login_required

from collab.errors import Invalid, TooLarge
from collab.extensions import limiter
from collab.limits import account_key
from rooms import posts as room_posts
from rooms import policy, services, thread_page
from rooms.blueprint import bp
from rooms.markdown import render

PREVIEW_LIMIT = "60 per minute"  # a preview per keystroke pause is far fewer; more is someone scripting it
PREVIEW_MAX_REQUEST = room_posts.MAX_BODY * 4 + 4096  # the form-encoded body of the largest post, with its token

preview_limit = limiter.shared_limit(
    PREVIEW_LIMIT, scope="preview", key_func=account_key,
    error_message="Too many previews from your account in a short time: please wait a minute and try again.")


@bp.record_once
def _register_helpers(state) -> None:
    # The composer's limits, written into the page so a file is checked when it is picked.
    state.app.jinja_env.globals["composer_max_files"] = room_posts.MAX_FILES


def answer_json(url: str):
    """Done: where the page goes next."""
    return jsonify({"url": url}), 201


def refused_json(errors: dict):
    """Refused with the form's messages (field -> message); the composer shows them beside its files."""
    key, message = next(iter(errors.items()))
    return jsonify({"error": {"code": "invalid", "message": message, "field": None if key == "_form" else key},
                    "errors": errors}), 422


@bp.post("/preview")
@login_required
@preview_limit
def preview():
    if (request.content_length or 0) > PREVIEW_MAX_REQUEST:
        raise TooLarge(f"A post may be at most {room_posts.MAX_BODY:,} characters long.", "body")
    body = request.form.get("body", "")
    if len(body) > room_posts.MAX_BODY:
        raise Invalid(f"A post may be at most {room_posts.MAX_BODY:,} characters long.", "body")
    return jsonify({"html": render(body)})


@bp.get("/posts/<int:post_id>/actions")
@login_required
def post_actions(post_id: int):
    post = services.get_post(current_user, post_id)
    me = current_user._get_current_object()
    view = thread_page.post_view(me, post, can_reply=policy.can_post(me, post.thread.room), allow_edit=True)
    return render_template("rooms/post_actions.html", post=post, p=view, thread=post.thread, room=post.thread.room)
