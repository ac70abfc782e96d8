"""Per-account rate limits on expensive work anyone signed in can ask for (issue 10):
searching (COLLAB_SEARCH_LIMIT), uploading files (COLLAB_UPLOAD_LIMIT) and looking people up in a people
picker (COLLAB_PEOPLE_LIMIT: each look-up reveals names, so an account cannot page through everyone). One
account sending worst-case searches or uploads as fast as it can must not take the
server from everyone else; each limit is shared by the page and the API routes that
do the same work, counted per account (API callers by their token's account), and
answered with 429 and a message saying what was limited."""
from __future__ import annotations

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from flask_login import current_user

from collab.extensions import limiter


def account_key() -> str:
    """The signed-in account (page session or API token), else the address."""
    user = g.get("api_user")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user
    return f"acct:{user.id}" if user is not None else get_remote_address()


def _search_limit() -> str:
    return current_app.config["SEARCH_LIMIT"]


def _upload_limit() -> str:
    return current_app.config["UPLOAD_LIMIT"]


def _people_limit() -> str:
    return current_app.config["PEOPLE_LIMIT"]


def _no_files() -> bool:
    return not any(f and f.filename for f in request.files.values())


search_limit = limiter.shared_limit(
    _search_limit, scope="search", key_func=account_key,
    error_message="Too many searches from your account in a short time: please wait a minute and search again.")

upload_limit = limiter.shared_limit(
    _upload_limit, scope="upload", key_func=account_key, exempt_when=_no_files,
    error_message="Too many files uploaded from your account in a short time: please wait a minute and try again.")

people_limit = limiter.shared_limit(
    _people_limit, scope="people", key_func=account_key,
    error_message="Too many look-ups of people from your account in a short time: please wait a minute.")
