"""Errors raised by services; views, the API and socket handlers translate them.

`NotFound` covers both "does not exist" and "you may not see it", so nothing
reveals that a private thing exists.
"""
from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    status = 404
    code = "not_found"

    def __init__(self, message: str = "Not found.", field: str | None = None) -> None:
        super().__init__(message, field)


class Forbidden(ServiceError):
    """The caller can see the thing but may not do this to it."""

    status = 403
    code = "forbidden"


class Invalid(ServiceError):
    status = 422
    code = "invalid"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    status = 413
    code = "too_large"


class Unauthorized(ServiceError):
    """Not signed in, or the session behind the request has ended."""

    status = 401
    code = "unauthorized"


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"


class Unavailable(ServiceError):
    """Something the request needs is down for now (the media worker in a crash loop): try again later."""

    status = 503
    code = "unavailable"


class NoRoom(ServiceError):
    """The data folder's disk is full: retrying will not help until an administrator makes room."""

    status = 507
    code = "no_room"
