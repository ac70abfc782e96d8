"""Collab: rooms, threads, search and hybrid meetings for police staff and their IAGs."""
from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from flask import Flask

__version__ = "0.1.0"


def create_app(test_config: Optional[dict[str, Any]] = None) -> Flask:
    """Build the app. `test_config` overrides settings read from the environment."""
    from collab import config

    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(config.from_env(test_config))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        RATELIMIT_HEADERS_ENABLED=False,
        JSON_SORT_KEYS=False,
    )
    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(days=app.config.get("REMEMBER_DAYS", 30))
    if test_config:
        app.config.update(test_config)
    secure = app.config["PUBLIC_URL"].startswith("https://")
    app.config.update(SESSION_COOKIE_SECURE=secure, REMEMBER_COOKIE_SECURE=secure,
                      PREFERRED_URL_SCHEME="https" if secure else "http")
    # Room for the largest attachment plus the rest of the form.
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + 1024 * 1024
    Path(app.config["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app.json.sort_keys = False
    _init_extensions(app)
    if app.config.get("TRUSTED_PROXIES"):
        # Behind COLLAB_TRUSTED_PROXIES reverse proxies: believe that many X-Forwarded-For/-Proto hops, so the
        # audit log, rate limits and session lists see the client's address (Socket.IO requests included).
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    from collab.urls import AsciiIntConverter

    app.url_map.converters["int"] = AsciiIntConverter  # before any route is added
    _register_blueprints(app)
    from rooms import notification_views

    notification_views.init_app(app)  # Socket.IO handlers, notifications, reactions

    from collab import cli, http

    http.init_app(app)
    cli.init_app(app)
    import search

    search.init_app(app)  # outbox hooks, indexer, start-up index check
    return app


def _init_extensions(app: Flask) -> None:
    from auth.services import load_session_user
    from collab import live_queue
    from collab.extensions import csrf, db, limiter, login_manager, socketio
    from collab.socket_packets import SafePacket

    db.init_app(app)
    csrf.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_session_user)

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    # Flask-Limiter's default for "enabled" is whatever the last app it served said: set it explicitly.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)

    socketio.init_app(
        app,
        async_mode=app.config.get("ASYNC_MODE", "threading"),
        cors_allowed_origins=[app.config["PUBLIC_URL"]],
        # With Redis: the message queue between server processes, which also carries their notes to
        # each other (revocations, collab/live_queue.py). Redis pub/sub ignores database numbers: the
        # channel is named after ours, so installs sharing one Redis server never hear each other.
        client_manager=live_queue.client_manager(
            app, app.config.get("REDIS_URL"),
            channel="collab-socketio-" + ((app.config.get("REDIS_URL") or "").rsplit("/", 1)[-1] or "0")),
        manage_session=False,
        ping_interval=25,
        ping_timeout=20,
        max_http_buffer_size=1_000_000,
        serializer=SafePacket,  # nesting too deep to parse reaches the handler, which refuses it clearly
    )


def _register_blueprints(app: Flask) -> None:
    from auth.security_views import bp as security_bp
    from auth.views import bp as auth_bp
    from collab.api import bp as api_bp
    from collab.views import bp as core_bp
    from rooms.views import bp as rooms_bp
    import auth.api  # noqa: F401  (registers routes on the API blueprint)
    import rooms.api  # noqa: F401
    from rooms.meetings.views import bp as meetings_bp  # its import also adds the meetings API
    import search.api  # noqa: F401
    from search.views import bp as search_bp
    import rooms.notification_views  # noqa: F401

    app.register_blueprint(core_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(security_bp)  # two-step sign-in, sessions, data, audit log (issue 7)
    app.register_blueprint(rooms_bp)
    app.register_blueprint(meetings_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(api_bp)
