"""Cross-cutting HTTP behaviour: security headers, error pages, template helpers."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from collab import outage
from collab.errors import ServiceError
from collab.extensions import db

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def allow_media(resp, media_urls: list[str]):
    """A page that talks to the media workers' WebSockets (the meeting page, the broadcast's viewer page):
    they are on other origins (another port), which its Content-Security-Policy must name."""
    origins = " ".join(sorted({f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in media_urls}))
    resp.headers["Content-Security-Policy"] = CSP.replace("connect-src 'self'", f"connect-src 'self' {origins}")
    return resp


def wants_json() -> bool:
    """The API, and a page's script that asked for JSON (a composer uploading files: its refusal is shown
    beside the files, not as a page)."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, code: str, message: str, field: str | None = None):
    if wants_json():
        body = {"error": {"code": code, "message": message}}
        if field:
            body["error"]["field"] = field
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def confidential(resp):
    """A file drawn from a room (attachment, thumbnail, deck, slide image, minutes PDF): never stored by the
    browser or anything between (Cache-Control: no-store, replacing send_file's cacheable default, so it is
    not left on a shared computer after the reader signs out or loses access), never sniffed as another type."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(resp):
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "same-origin"
        if app.config["PUBLIC_URL"].startswith("https://"):
            h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        h.setdefault("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()")
        if request.path.startswith(("/api/", "/attachments/")) or (current_user and current_user.is_authenticated):
            h.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(ServiceError)
    def _service_error(err: ServiceError):
        return error_response(err.status, err.code, err.message, err.field)

    @app.errorhandler(CSRFError)
    def _csrf(err: CSRFError):
        return error_response(400, "csrf", "The form had expired or came from another site. Reload the page and try again.")

    @app.errorhandler(413)
    def _too_large(_err):
        mb = app.config["MAX_UPLOAD_MB"]
        return error_response(413, "too_large", f"That upload is too large: attachments may be at most {mb} MB.")

    @app.errorhandler(429)
    def _rate(err):
        # (a limit with its own message, collab/limits.py, says what was limited)
        own = getattr(getattr(err, "limit", None), "error_message", None)
        return error_response(429, "rate_limited",
                              err.description if own else "Too many attempts. Please wait a minute and try again.")

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        messages = {404: "Page not found.", 405: "That action is not allowed here.", 400: "The request was not understood."}
        return error_response(err.code or 500, err.name.lower().replace(" ", "_"),
                              messages.get(err.code, err.description or err.name))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if outage.is_database_down(err):  # 503 "try again shortly", logged once per cause per minute
            return outage.answer(app, err)
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return error_response(500, "server_error", "Something went wrong on our side. Nothing was saved; please try again.")

    @app.context_processor
    def _globals():
        return {"app_name": "Collab"}
