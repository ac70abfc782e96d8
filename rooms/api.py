"""Room, thread and post endpoints of the JSON API; every one calls a service."""
from __future__ import annotations

from flask import request
from sqlalchemy import select

from collab.api import api_user, bp, json_body, ok, query_int
from collab.errors import Invalid
from collab.extensions import db
from collab.limits import upload_limit
from rooms import policy, services
from rooms import posts as room_posts
from rooms.models import Post
from rooms.serialize import post_dict, room_dict, thread_dict


@bp.get("/rooms")
def list_rooms():
    user = api_user()
    roles = services.my_roles(user)
    return ok({"rooms": [room_dict(r, role=roles.get(r.id)) for r in services.readable_rooms(user)]})


@bp.post("/rooms")
def create_room():
    data = json_body()
    room = services.create_room(api_user(), name=data.get("name"), description=data.get("description", ""),
                                visibility=data.get("visibility", "private"),
                                organisation_id=data.get("organisation_id"),
                                non_attributed=data.get("non_attributed", False))
    return ok(room_dict(room, role="owner"), 201)


@bp.get("/rooms/<int:room_id>")
def get_room(room_id: int):
    user = api_user()
    room = services.get_room(user, room_id)
    m = policy.membership(user, room)
    return ok(room_dict(room, role=m.role if m else None))


@bp.get("/rooms/<int:room_id>/threads")
def list_threads(room_id: int):
    user = api_user()
    room = services.get_room(user, room_id)
    page = query_int("page", 1)
    threads, total = services.room_threads(user, room, page=page)
    return ok({"total": total, "page": page, "threads": [thread_dict(t) for t in threads]})


@bp.post("/rooms/<int:room_id>/threads")
def create_thread(room_id: int):
    data = json_body()
    thread = room_posts.create_thread(api_user(), room_id, title=data.get("title"), body=data.get("body"),
                                      client_id=data.get("client_id"))
    return ok(_thread_full(thread), 201)


def _thread_full(thread, viewer=None) -> dict:
    posts = db.session.scalars(select(Post).where(Post.thread_id == thread.id).order_by(Post.path))
    return dict(thread_dict(thread), posts=[post_dict(p, viewer=viewer) for p in posts])


@bp.get("/threads/<int:thread_id>")
def get_thread(thread_id: int):
    return ok(_thread_full(services.get_thread(api_user(), thread_id), viewer=api_user()))


@bp.post("/threads/<int:thread_id>/posts")
def create_post(thread_id: int):
    data = json_body()
    post, created = room_posts.create_post(api_user(), thread_id, body=data.get("body"),
                                           parent_id=data.get("parent_id"), client_id=data.get("client_id"))
    return ok(post_dict(post), 201 if created else 200)


@bp.get("/posts/<int:post_id>")
def get_post(post_id: int):
    return ok(post_dict(services.get_post(api_user(), post_id), viewer=api_user()))


@bp.patch("/posts/<int:post_id>")
def edit_post(post_id: int):
    data = json_body()
    return ok(post_dict(room_posts.edit_post(api_user(), post_id, body=data.get("body"))))


@bp.delete("/posts/<int:post_id>")
def delete_post(post_id: int):
    return ok(post_dict(room_posts.delete_post(api_user(), post_id)))


@bp.post("/posts/<int:post_id>/attachments")
@upload_limit
def add_attachments(post_id: int):
    uploads = [(f.filename, f.stream) for f in request.files.getlist("file") if f]
    if not uploads:
        raise Invalid("Send the file as multipart/form-data in a field named 'file'.", "file")
    atts = room_posts.add_attachments(api_user(), post_id, uploads)
    post = services.get_post(api_user(), post_id)
    return ok(post_dict(post) | {"added": [a.id for a in atts]}, 201)


@bp.get("/rooms/<int:room_id>/members")
def list_members(room_id: int):
    user = api_user()
    room = services.get_room(user, room_id)
    return ok({"members": [{"user": {"id": m.user.id, "name": m.user.name}, "role": m.role}
                           for m in services.room_members(user, room)]})


@bp.post("/rooms/<int:room_id>/members")
def add_member(room_id: int):
    data = json_body()
    m = services.add_member(api_user(), room_id, user_id=data.get("user_id"), role=data.get("role", "member"))
    return ok({"user": {"id": m.user_id, "name": m.user.name}, "role": m.role}, 201)


@bp.delete("/rooms/<int:room_id>/members/<int:user_id>")
def remove_member(room_id: int, user_id: int):
    services.remove_member(api_user(), room_id, user_id)
    return ok({"removed": user_id})
