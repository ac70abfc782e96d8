"""The site's paths: the `int` URL converter, and building paths with or without a
request (CLI commands and background jobs serialise posts too)."""
from __future__ import annotations

from flask import current_app, has_request_context, url_for
from werkzeug.routing import IntegerConverter

from collab.validate import MAX_ID


class AsciiIntConverter(IntegerConverter):
    """`<int:...>` in every route: ASCII digits only, 1 to MAX_ID. Werkzeug's own matches `\\d`, which takes any
    script's digits ("/rooms/١" was room 1), and any size (past the database's 32-bit ids)."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def path_for(endpoint: str, **values) -> str:
    if has_request_context():
        return url_for(endpoint, **values)
    return current_app.url_map.bind("localhost").build(endpoint, values)


def external_url(endpoint: str, **values) -> str:
    """An absolute address under COLLAB_PUBLIC_URL (for e-mails and invitation links)."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + path_for(endpoint, **values)
