"""The JSON API under /api/v1: bearer-token authentication, JSON errors,
request-body helpers. Endpoints live beside their services (auth/api.py,
rooms/api.py) and register on this blueprint."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from auth.models import User
from collab.errors import Invalid, ServiceError
from collab.extensions import csrf, db
from collab.http import error_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # no cookies are accepted here, only bearer tokens


@bp.before_request
def _authenticate():
    from auth.services import user_for_token

    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    user = user_for_token(raw.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        resp, status = error_response(401, "unauthorized", "A valid personal access token is required "
                                      "(Authorization: Bearer <token>).")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="collab"'
        return resp, status
    from auth import mfa

    if mfa.must_enrol(user):
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


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong."""
    if request.mimetype != "application/json":
        raise ServiceError("Send a JSON object with Content-Type: application/json.", "body")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError("The request body must be a JSON object.", "body")
    return data


def query_int(name: str, default: int, *, lo: int = 1, hi: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise Invalid(f"{name} must be a whole number from {lo} to {hi}.", name)
    return int(raw)


def ok(data: Any, status: int = 200):
    return jsonify(data), status


@bp.get("/openapi.json")
def openapi():
    from collab.openapi import document

    return jsonify(document())


@bp.teardown_request
def _rollback(_exc):
    if _exc is not None:
        db.session.rollback()
