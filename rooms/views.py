"""Room, thread and post pages. Each handler reads the form, calls one
service, and renders or redirects."""
from __future__ import annotations

from flask import abort, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from auth.models import ACCOUNT_KINDS
from collab import validate
from collab.errors import Forbidden
from collab.extensions import db
from collab.forms import attempt, field, flash_ok
from collab.http import confidential, wants_json
from collab.limits import upload_limit
from rooms import account_data_views, moderation_views, people_views, policy, services, thread_page  # noqa: F401  (their routes are on `bp` too)
from rooms import composer_views
from rooms import posts as room_posts
from rooms import people, room_list
from rooms import attachments as files
from rooms.ideas import pages as idea_pages
from rooms.blueprint import bp
from rooms.models import ROOM_ROLES, VISIBILITIES, Post


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if validate.digits(raw) and len(raw) < 9 and 0 < int(raw) < 100_000 else 1


def _uploads() -> list:
    return [(f.filename, f.stream) for f in request.files.getlist("file") if f and f.filename]


@bp.get("/rooms")
@login_required
def rooms():
    sort = room_list.sort_arg(request.args.get("sort"))
    return render_template("rooms/list.html", sections=room_list.rows(current_user, sort), sort=sort,
                           sorts=room_list.SORTS, visibilities=VISIBILITIES)


@bp.route("/rooms/new", methods=["GET", "POST"])
@login_required
def new_room():
    errors: dict = {}
    if request.method == "POST":
        room = attempt(lambda: services.create_room(current_user, name=field("name"),
                                                    description=field("description"),
                                                    visibility=field("visibility", "private"),
                                                    non_attributed=field("non_attributed") == "on"), errors)
        if room:
            flash_ok(f"Room “{room.name}” created. Invite members from its Members page.")
            return redirect(url_for("rooms.room", room_id=room.id))
    allowed = {k: v for k, v in VISIBILITIES.items() if policy.can_create_room(current_user, k)}
    return render_template("rooms/new.html", errors=errors, form=request.form, visibilities=allowed)


@bp.get("/rooms/<int:room_id>")
@login_required
def room(room_id: int):
    r = services.get_room(current_user, room_id)
    page = _page_arg()
    threads, total = services.room_threads(current_user, r, page=page)
    unread = services.thread_unread_counts(current_user, [t.id for t in threads])
    m = policy.membership(current_user, r)
    return render_template("rooms/room.html", room=r, threads=threads, total=total, page=page, per_page=30,
                           unread=unread, membership=m, can_post=policy.can_post(current_user, r),
                           can_manage=policy.can_manage_room(current_user, r),
                           can_join=m is None and policy.can_join_room(current_user, r), visibilities=VISIBILITIES)


@bp.post("/rooms/<int:room_id>/join")
@login_required
def join(room_id: int):
    services.join_room(current_user, room_id)
    flash_ok("You have joined the room.")
    return redirect(url_for("rooms.room", room_id=room_id))


@bp.post("/rooms/<int:room_id>/leave")
@login_required
def leave(room_id: int):
    """Asked first (the room page's dialog, or this page without script): a private room closes at once."""
    errors: dict = {}
    if field("confirm") != "yes":
        r = services.get_room(current_user, room_id)
        problem = services.leave_problem(current_user, r)
        if problem:
            return render_template("error.html", status=400, message=problem), 400
        return render_template("rooms/leave.html", room=r)
    room_name = services.get_room(current_user, room_id).name
    attempt(lambda: services.leave_room(current_user, room_id), errors)
    if errors:
        return render_template("error.html", status=400, message=errors.popitem()[1]), 400
    flash_ok(f"You have left {room_name}.")
    return redirect(url_for("rooms.rooms"))


@bp.route("/rooms/<int:room_id>/settings", methods=["GET", "POST"])
@login_required
def settings(room_id: int):
    r = services.get_room(current_user, room_id)
    if not policy.can_manage_room(current_user, r):
        abort(404)
    errors: dict = {}
    if request.method == "POST":
        action = field("action", "save")
        if action in ("archive", "unarchive"):
            services.set_archived(current_user, room_id, action == "archive")
            flash_ok("The room is archived (read-only)." if action == "archive" else "The room is open again.")
            return redirect(url_for("rooms.room", room_id=room_id))
        if attempt(lambda: services.update_room(current_user, room_id, name=field("name"),
                                                description=field("description"),
                                                visibility=field("visibility")), errors):
            flash_ok("Room settings saved.")
            return redirect(url_for("rooms.room", room_id=room_id))
    return render_template("rooms/settings.html", room=r, errors=errors, form=request.form,
                           visibilities=VISIBILITIES)


@bp.route("/rooms/<int:room_id>/members", methods=["GET", "POST"])
@login_required
def members(room_id: int):
    r = services.get_room(current_user, room_id)
    errors: dict = {}
    invite = None
    if request.method == "POST":
        if not (policy.can_moderate(current_user, r) or policy.can_manage_room(current_user, r)):
            raise Forbidden("Only the room's owners and moderators can change who belongs to it.")
        action = field("action")
        if action == "add":
            # one step (rooms/people.py): the person chosen in the picker, an existing account's address, or
            # an invitation for an address with no account that makes them a member when they accept
            done = attempt(lambda: people.add_or_invite(current_user, room_id, user_id=field("user_id") or None,
                                                        email=field("email"), role=field("role", "member"),
                                                        kind=field("kind", "iag")), errors)
            if done and done[0] == "added":
                flash_ok(f"{done[1].user.name} is now a{'n' if done[1].role[0] in 'aeiou' else ''} "
                         f"{done[1].role} of this room.")
                return redirect(url_for("rooms.members", room_id=room_id))
            if done:
                invite = {"email": done[2].email, "link": done[3], "role": done[2].room_role}
        elif action == "role":
            if attempt(lambda: services.add_member(current_user, room_id, user_id=field("user_id"),
                                                   role=field("role")), errors):
                flash_ok("Role changed.")
                return redirect(url_for("rooms.members", room_id=room_id))
        elif action == "remove":
            attempt(lambda: services.remove_member(current_user, room_id, field("user_id")), errors)
            if not errors:
                flash_ok("Member removed.")
                return redirect(url_for("rooms.members", room_id=room_id))
        else:
            errors["_form"] = "Unknown action."
    return render_template("rooms/members.html", room=r, members=services.room_members(current_user, r),
                           errors=errors, form=request.form, roles=ROOM_ROLES,
                           can_invite=policy.can_invite_to_room(current_user, r),
                           members_hidden=not policy.sees_names(current_user, r),
                           show_ranks=policy.sees_member_ranks(current_user, r),
                           can_manage=policy.can_manage_room(current_user, r), invite=invite,
                           can_invite_new=policy.can_invite_by_email(current_user, r), kinds=ACCOUNT_KINDS,
                           invite_roles=people.INVITE_ROLES), (422 if errors else 200)


@bp.route("/rooms/<int:room_id>/threads/new", methods=["GET", "POST"])
@login_required
@upload_limit
def new_thread(room_id: int):
    r = services.get_room(current_user, room_id)
    if not policy.can_post(current_user, r):
        raise Forbidden("You can read this room but not start threads in it.")
    errors: dict = {}
    if request.method == "POST":
        thread = attempt(lambda: room_posts.create_thread(current_user, room_id, title=field("title"),
                                                          body=field("body"), client_id=field("client_id") or None,
                                                          uploads=_uploads()), errors)
        if thread:
            return _done(url_for("rooms.thread", thread_id=thread.id))
        if wants_json():
            return composer_views.refused_json(errors)
    return render_template("rooms/new_thread.html", room=r, errors=errors, form=request.form), (
        422 if errors else 200)


@bp.get("/threads/<int:thread_id>")
@login_required
def thread(thread_id: int):
    t = services.get_thread(current_user, thread_id)
    view = "flat" if request.args.get("view") == "flat" else "tree"
    me = current_user._get_current_object()
    read = thread_page.read_state(me, t)  # noqa: F841 - held, so the lookups below find it in the session
    if "page" not in request.args and view == "tree":
        first_unread, unread_page = room_posts.first_unread_page(current_user, t)
        if unread_page > 1:
            return redirect(url_for("rooms.thread", thread_id=t.id, page=unread_page, _anchor=f"post-{first_unread}"))
    tp = thread_page.load(me, t, page=_page_arg(), view=view)
    room_posts.mark_read(me, t, max(tp.shown_ids))
    return render_template("rooms/thread.html", thread=t, room=t.room, tp=tp, can_post=tp.can_post,
                           posts_url=_posts_url(), **idea_pages.panel(me, t))


def _done(url: str):
    """After a post was written: go to it (a composer uploading with progress asked for JSON: it goes there)."""
    return composer_views.answer_json(url) if wants_json() else redirect(url)


def _posts_url() -> str:
    """The prefix of every post address ("/posts/"): the thread page writes `<prefix><id>/edit` and so on
    rather than asking url_for a few times for each of its hundreds of posts."""
    url = url_for("rooms.post_link", post_id=0)
    return url[:-1]


@bp.route("/posts/<int:post_id>/reply", methods=["GET", "POST"])
@login_required
@upload_limit
def reply(post_id: int):
    parent = services.get_post(current_user, post_id)
    if not policy.can_post(current_user, parent.thread.room):
        raise Forbidden("You can read this room but not post in it.")
    errors: dict = {}
    if request.method == "POST":
        result = attempt(lambda: room_posts.create_post(current_user, parent.thread_id, body=field("body"),
                                                        parent_id=parent.id, client_id=field("client_id") or None,
                                                        uploads=_uploads()), errors)
        if result:
            return _done(url_for("rooms.post_link", post_id=result[0].id))
        if wants_json():
            return composer_views.refused_json(errors)
    return render_template("rooms/reply.html", parent=parent, thread=parent.thread, room=parent.thread.room,
                           quoted=thread_page.post_view(current_user._get_current_object(), parent),
                           posts_url=_posts_url(), errors=errors, form=request.form), (422 if errors else 200)


@bp.get("/posts/<int:post_id>")
@login_required
def post_link(post_id: int):
    """A stable link to a post: opens its thread on the right page at its anchor."""
    post = services.get_post(current_user, post_id)
    page = 1
    if post.depth >= 1:
        root_path = post.path[: 2 * 10 + 1]
        before = db.session.scalar(select(func.count(Post.id)).where(
            Post.thread_id == post.thread_id, Post.depth == 1, Post.path < root_path)) or 0
        page = before // room_posts.ROOTS_PER_PAGE + 1
    return redirect(url_for("rooms.thread", thread_id=post.thread_id, page=page, _anchor=f"post-{post.id}"))


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@login_required
def edit(post_id: int):
    post = services.get_post(current_user, post_id)
    if not policy.can_edit_post(current_user, post):
        raise Forbidden("Only the author can edit this post.")
    errors: dict = {}
    if request.method == "POST":
        if field("action") == "attach":
            if attempt(lambda: room_posts.add_attachments(current_user, post_id, _uploads()), errors):
                return _done(url_for("rooms.post_link", post_id=post_id))
        elif attempt(lambda: room_posts.edit_post(current_user, post_id, body=field("body")), errors):
            return _done(url_for("rooms.post_link", post_id=post_id))
        if wants_json():
            return composer_views.refused_json(errors)
    return render_template("rooms/edit.html", post=post, thread=post.thread, room=post.thread.room, errors=errors,
                           form=request.form), (422 if errors else 200)


@bp.post("/posts/<int:post_id>/delete")
@login_required
def delete(post_id: int):
    room_posts.delete_post(current_user, post_id)
    flash_ok("The post has been removed.")
    return redirect(url_for("rooms.post_link", post_id=post_id))


@bp.get("/posts/<int:post_id>/history")
@login_required
def history(post_id: int):
    post, revs = room_posts.revisions(current_user, post_id)
    return render_template("rooms/history.html", post=post, revisions=revs, thread=post.thread,
                           room=post.thread.room)


@bp.get("/attachments/<int:attachment_id>/<path:filename>")
@login_required
def attachment(attachment_id: int, filename: str):
    att = services.get_attachment(current_user, attachment_id)
    path = files.blob_path(att.sha256)
    if not path.exists():
        abort(404)
    mimetype = att.content_type if att.is_image else "application/octet-stream"
    resp = confidential(send_file(path, mimetype=mimetype, as_attachment=True, download_name=att.filename))
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox; frame-ancestors 'none'"
    return resp


@bp.get("/thumbnails/<int:attachment_id>")
@login_required
def attachment_thumb(attachment_id: int):
    att = services.get_attachment(current_user, attachment_id)
    path = files.thumb_path(att.sha256)
    if not att.is_image or not path.exists():
        abort(404)
    return confidential(send_file(path, mimetype="image/png"))
