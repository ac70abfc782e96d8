"""Helpers for server-rendered forms: read fields, show a service error next
to the field it is about, keep what the user typed."""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import flash, request

from collab.errors import ServiceError

T = TypeVar("T")


def field(name: str, default: str = "") -> str:
    return request.form.get(name, default)


def attempt(action: Callable[[], T], errors: dict, fields: dict[str, str] | None = None) -> T | None:
    """Run a service call; on a ServiceError record it for the template and return None
    (a NotFound or Forbidden is raised on: the caller may not see or do this, and the
    answer is the 404/403 page).

    `fields` maps a service's field name to the form's input id where they differ
    (so the error summary links to the right input)."""
    try:
        return action()
    except ServiceError as err:
        key = err.field or "_form"
        errors[(fields or {}).get(key, key)] = err.message
        if err.status in (403, 404):  # a refusal for permission reasons is a 403/404 page, not the form again
            raise
        return None


def flash_ok(message: str) -> None:
    flash(message, "success")
