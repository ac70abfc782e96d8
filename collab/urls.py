"""The site's paths: the `int` URL converter, and building paths with or without a
request (CLI commands and background jobs serialise posts too)."""
from __future__ import annotations

from flask import current_app, has_request_context, url_for
from werkzeug.routing import IntegerConverter


class AsciiIntConverter(IntegerConverter):
    """`<int:...>` in every route: ASCII digits only. Werkzeug's own matches `\\d`, which takes any script's
    digits ("/rooms/١" was room 1). The range is the services' to check (validate.int_id): refusing a large
    number here would make Werkzeug answer 405 where another method has the same path."""

    regex = r"[0-9]+"


def path_for(endpoint: str, **values) -> str:
    if has_request_context():
        return url_for(endpoint, **values)
    return current_app.url_map.bind("localhost").build(endpoint, values)


def external_url(endpoint: str, **values) -> str:
    """An absolute address under COLLAB_PUBLIC_URL (for e-mails and invitation links)."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + path_for(endpoint, **values)
