"""The JSON API under /api/v1: bearer-token authentication, JSON errors,
request-body helpers. Endpoints live beside their services (auth/api.py,
rooms/api.py) and register on this blueprint."""
from __future__ import annotations

import time
from itertools import chain
from typing import Any, Optional

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from werkzeug.exceptions import HTTPException

from auth import mfa
from auth.models import User
from auth.services import note_token_use, user_for_token
from collab import validate
from collab.errors import Invalid, ServiceError, TooLarge
from collab.extensions import csrf, db
from collab.http import error_response
from collab.openapi import document
from collab.tokens import digest

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # no cookies are accepted here, only bearer tokens


# -- bearer tokens -----------------------------------------------------------------------------------------
#
# A token once checked against the database (not revoked, account active, two-step sign-in set up if
# required) is trusted by this process for TOKEN_TRUST_SECONDS without asking again: the check cost more
# than the rest of a typical API request. Any change this process makes to an account, a token, an
# organisation or the two-step settings (through the ORM, in any session) forgets every remembered token
# at once, on flush and again on commit; so in the usual one-process server a revoked token or a
# deactivated account is refused by the very next request. Another process's change (several servers
# sharing a database) is seen within TOKEN_TRUST_SECONDS.

TOKEN_TRUST_SECONDS = 2.0
_TOKEN_CACHE_MAX = 10_000
_WATCHED_TABLES = frozenset({"users", "api_tokens", "organisations", "site_settings", "user_mfa"})
_generation = 0  # bumped by every such change; an entry from an older generation is not used


def _forget_tokens() -> None:
    global _generation
    _generation += 1


def _watched(obj: object) -> bool:
    table = getattr(type(obj), "__table__", None)
    return table is not None and table.name in _WATCHED_TABLES


@event.listens_for(Session, "after_flush")
def _token_flush(session: Session, _ctx) -> None:
    if any(_watched(obj) for obj in chain(session.new, session.dirty, session.deleted)):
        session.info["collab_tokens_stale"] = True
        _forget_tokens()


@event.listens_for(Session, "do_orm_execute")
def _token_bulk_write(state) -> None:
    if state.is_select:
        return
    table = getattr(state.statement, "table", None)
    if table is not None and getattr(table, "name", None) in _WATCHED_TABLES:
        state.session.info["collab_tokens_stale"] = True
        _forget_tokens()


@event.listens_for(Session, "after_commit")
def _token_commit(session: Session) -> None:
    # Again at commit: a request that read the token between this flush and the commit saw the old row.
    if session.info.pop("collab_tokens_stale", False):
        _forget_tokens()


@event.listens_for(Session, "after_rollback")
def _token_rollback(session: Session) -> None:
    session.info.pop("collab_tokens_stale", None)


def _detached_copy(obj: Any) -> Any:
    """A detached copy of a loaded row (its columns only), or None if some column is not loaded."""
    mapper = inspect(type(obj))
    copy = mapper.class_manager.new_instance()
    for attr in mapper.column_attrs:
        if attr.key not in obj.__dict__:
            return None
        set_committed_value(copy, attr.key, obj.__dict__[attr.key])
    make_transient_to_detached(copy)
    return copy


def _remember(cache: dict, key: str, user: User, generation: int) -> None:
    if "organisation" not in user.__dict__:
        return
    copy = _detached_copy(user)
    org = user.__dict__["organisation"]
    org_copy = _detached_copy(org) if org is not None else None
    if copy is None or (org is not None and org_copy is None):
        return
    set_committed_value(copy, "organisation", org_copy)
    if len(cache) >= _TOKEN_CACHE_MAX:
        cache.clear()
    cache[key] = (generation, time.monotonic() + TOKEN_TRUST_SECONDS, copy)


def _token_user(raw: str) -> tuple[Optional[User], bool]:
    """(account, must set up two-step sign-in first) for a bearer token; (None, False) if it is not valid."""
    if not raw:
        return None, False
    cache = current_app.extensions.setdefault("collab_token_cache", {})
    key = digest(raw)
    hit = cache.get(key)
    if hit is not None and hit[0] == _generation and hit[1] > time.monotonic():
        note_token_use(key)  # the database is not asked, but the use is still noted (at most once a minute)
        sess = db.session()
        user = sess.identity_map.get(identity_key(User, hit[2].id))
        return (user if user is not None else sess.merge(hit[2], load=False)), False
    generation = _generation  # taken before reading: a change meanwhile makes the entry unusable
    user = user_for_token(raw)
    if user is None:
        cache.pop(key, None)
        return None, False
    if mfa.must_enrol(user):
        return user, True
    _remember(cache, key, user, generation)
    return user, False


@bp.before_request
def _authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    user, must_enrol = _token_user(raw.strip()) if scheme.lower() == "bearer" else (None, False)
    if user is None:
        resp, status = error_response(401, "unauthorized", "A valid personal access token is required "
                                      "(Authorization: Bearer <token>).")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="collab"'
        return resp, status
    if must_enrol:
        return error_response(403, "mfa_required", "This account must set up two-step sign-in first: "
                                                   "sign in to Collab in a browser.")
    g.api_user = user


@bp.errorhandler(ServiceError)
def _service_error(err: ServiceError):
    return error_response(err.status, err.code, err.message, err.field)


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    return error_response(err.code or 500, err.name.lower().replace(" ", "_"), err.description or err.name)


def api_user() -> User:
    return g.api_user


MAX_JSON_BYTES = 1024 * 1024  # the longest post (50,000 characters) fits many times over, even escaped


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 4xx that says what is wrong: 400 for not JSON, not an object, or nested too
    deeply to read (the parser gives up with RecursionError, not ValueError); 413 past MAX_JSON_BYTES."""
    if request.mimetype != "application/json":
        raise ServiceError("Send a JSON object with Content-Type: application/json.", "body")
    size = request.content_length
    if size is None:  # chunked: read (as far as MAX_CONTENT_LENGTH allows) to know
        size = len(request.get_data(cache=True))
    if size > MAX_JSON_BYTES:
        raise TooLarge(f"The request body is too large: send a JSON object of at most {MAX_JSON_BYTES // 1024} KB.",
                       "body")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise ServiceError("The request body is nested too deeply to read; send a flat JSON object.",
                           "body") from None
    if not isinstance(data, dict):
        raise ServiceError("The request body must be a JSON object.", "body")
    return data


def query_int(name: str, default: int, *, lo: int = 1, hi: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not validate.digits(raw) or len(raw) > 9 or not lo <= int(raw) <= hi:
        raise Invalid(f"{name} must be a whole number from {lo} to {hi}.", name)
    return int(raw)


def ok(data: Any, status: int = 200):
    return jsonify(data), status


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


@bp.teardown_request
def _rollback(_exc):
    if _exc is not None:
        db.session.rollback()
