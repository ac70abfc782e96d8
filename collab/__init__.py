"""Collab: rooms, threads, search and hybrid meetings for police staff and their IAGs."""
from __future__ import annotations

import gc
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
    _import_socket_handlers()
    _init_extensions(app)
    if app.config.get("TRUSTED_PROXIES"):
        # Behind COLLAB_TRUSTED_PROXIES reverse proxies: believe that many X-Forwarded-For/-Proto hops, so the
        # audit log, rate limits and session lists see the client's address (Socket.IO requests included).
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    from collab.urls import AsciiIntConverter

    app.url_map.converters["int"] = AsciiIntConverter  # before any route is added
    # Werkzeug compiles every route with ast.parse, which CPython 3.11 can fail with "SystemError: AST
    # constructor recursion depth mismatch" (python/cpython#106905; a fresh-clone test run hit it once while
    # making a test app). The likely trigger is other Python code running in the middle of the parse, such as
    # a garbage collection's finalizers: none runs while the routes are added and compiled.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _register_blueprints(app)
        from rooms import notification_views

        notification_views.init_app(app)  # notifications, reactions, presence
    finally:
        if collecting:
            gc.enable()

    from collab import cli, http, monitoring_views, timezones

    http.init_app(app)
    monitoring_views.init_app(app)  # request ids, JSON logs, metrics; /healthz /readyz /metrics /admin/system
    timezones.init_app(app)   # checks COLLAB_TIME_ZONE; |localtime for templates
    cli.init_app(app)
    import search

    search.init_app(app)  # outbox hooks, indexer, start-up index check
    from collab import tasks

    tasks.start(app)  # the background loops every package registered (collab/tasks.py), once per process
    return app


def _init_extensions(app: Flask) -> None:
    from auth.services import load_session_user
    from collab import limits, live_queue
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

    limits.configure(app)   # Redis when configured, counting in memory while it does not answer
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


def _import_socket_handlers() -> tuple:
    """The modules whose Socket.IO handlers attach to the one `socketio` object (collab/extensions.py)
    when imported. Flask-SocketIO gives the handlers it holds to each server that `init_app`
    makes, but a handler added once a server exists goes to that server only: so they are
    imported here, before `socketio.init_app`, and every app made in the process (not only the
    first) answers every event."""
    from rooms.ideas import realtime as idea_realtime  # idea.vote, idea.withdraw
    from rooms.live import handlers
    from rooms.meetings import realtime as meeting_realtime
    from rooms.polls import realtime as poll_realtime  # poll.vote, and live tallies

    return handlers, meeting_realtime, idea_realtime, poll_realtime


def _import_route_modules() -> tuple:
    """Modules that add their routes to a blueprint defined elsewhere when imported (each
    package's JSON endpoints to collab.api.bp; the moderation pages to rooms.views.bp; the live
    rooms' endpoints to collab.api.bp): imported here, before the blueprints are registered, and
    by no module's bottom line."""
    from auth import api as auth_api
    from rooms import api as rooms_api
    from rooms import moderation_views, notification_views
    from rooms.ideas import api as ideas_api
    from rooms.meetings import api as meetings_api
    from rooms.meetings import transcript_api  # transcripts of captions (issue 16)
    from rooms.polls import api as polls_api
    from rooms.polls import realtime as polls_realtime  # live tallies, to those who may see them
    from rooms.qa import api as qa_api
    from rooms.qa import realtime as qa_realtime  # questions waiting for approval, to their moderators
    from search import api as search_api

    return (auth_api, rooms_api, meetings_api, polls_api, polls_realtime, search_api, notification_views,
            moderation_views, ideas_api, qa_api, qa_realtime, transcript_api)


def _register_blueprints(app: Flask) -> None:
    """Every blueprint of the app's packages, registered here and nowhere else (rooms/notification_views.py
    `init_app` registers its own, with the rest of the live rooms' wiring)."""
    from auth import security_views
    from auth import views as auth_views
    from collab import api
    from collab import views as core_views
    from rooms import views as rooms_views
    from rooms.ideas import pages as idea_pages
    from rooms.meetings import broadcast_views, recording_views
    from rooms.meetings import pages as meeting_pages
    from rooms.meetings import transcript_views
    from rooms.polls import pages as poll_pages
    from rooms.qa import pages as qa_pages
    from search import views as search_views

    _import_route_modules()
    app.register_blueprint(core_views.bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(security_views.bp)  # two-step sign-in, sessions, data, audit log (issue 7)
    app.register_blueprint(rooms_views.bp)
    app.register_blueprint(meeting_pages.bp)
    app.register_blueprint(transcript_views.bp)  # transcripts and the worker's captions reports (issue 16)
    app.register_blueprint(broadcast_views.bp)   # the web broadcast's viewer page and the chair's queue (issue 16)
    app.register_blueprint(recording_views.bp)   # recordings: the replay page, its file, timeline and captions
    app.register_blueprint(idea_pages.bp)
    app.register_blueprint(poll_pages.bp)   # polls and proposals (issue 13)
    app.register_blueprint(qa_pages.bp)     # Q&A sessions (issue 13)
    app.register_blueprint(search_views.bp)
    app.register_blueprint(api.bp)
