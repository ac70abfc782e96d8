"""Small input checks shared by forms, the API and socket handlers.

Each raises `Invalid` naming the field, so every caller reports bad input the
same way and nothing is written.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from typing import Any, Iterable

from collab.errors import Invalid

EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
_CONTROL = {"Cc", "Cs", "Co", "Cn"}
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database (PostgreSQL refuses larger ones)


def clean_text(value: str, *, multiline: bool = False) -> str:
    """Drop control characters (keeping newlines and tabs in multi-line text)."""
    keep = "\n\t" if multiline else ""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in value if ch in keep or unicodedata.category(ch) not in _CONTROL)


def text(value: Any, field: str, *, max_len: int, required: bool = True, multiline: bool = False,
         label: str | None = None) -> str:
    label = label or field.replace("_", " ").capitalize()
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(f"{label} must be text.", field)
    value = clean_text(value, multiline=multiline).strip()
    if required and not value:
        raise Invalid(f"{label} is required.", field)
    if len(value) > max_len:
        raise Invalid(f"{label} must be at most {max_len} characters (it has {len(value)}).", field)
    return value


_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def display_name(value: Any, field: str, *, max_len: int, label: str | None = None) -> str:
    """A name others see as who someone is (a person's or a room's): one line in NFC, refused with a clear
    message if it holds a control or format character (category Cf: right-to-left overrides and isolates,
    zero-width joiners and spaces, soft hyphens...), which can make one name show as another. Dropping them
    silently would still let "Adam" and "Ad\u200bam" be two accounts that look the same."""
    label = label or field.replace("_", " ").capitalize()
    if isinstance(value, str):
        value = unicodedata.normalize("NFC", value)
        bad = sorted({f"U+{ord(ch):04X}" for ch in value if unicodedata.category(ch) in _INVISIBLE})
        if bad:
            raise Invalid(f"{label} cannot contain invisible control or formatting characters (such as "
                          f"right-to-left overrides); remove {', '.join(bad[:5])}.", field)
    return text(value, field, max_len=max_len, label=label)


def email(value: Any, field: str = "email") -> str:
    value = text(value, field, max_len=254, label="Email").lower()
    if not EMAIL_RE.match(value):
        raise Invalid("Email must be an address like name@example.org.", field)
    return value


def choice(value: Any, field: str, options: Iterable[str], *, label: str | None = None) -> str:
    options = list(options)
    label = label or field.replace("_", " ").capitalize()
    if not isinstance(value, str) or value not in options:
        raise Invalid(f"{label} must be one of: {', '.join(options)}.", field)
    return value


def digits(value: str) -> bool:
    """Only the ASCII digits 0-9 (str.isdigit also takes "١", "²" and other scripts' digits, which int() reads:
    an id written that way would name a different object than it shows)."""
    return value.isascii() and value.isdigit()


def int_id(value: Any, field: str, *, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise Invalid(f"{field} is required.", field)
        return None
    if isinstance(value, bool):
        raise Invalid(f"{field} must be a whole number.", field)
    if isinstance(value, str):
        value = value.strip()
        if not digits(value) or len(value) > 10:
            raise Invalid(f"{field} must be a whole number.", field)
        value = int(value)
    if not isinstance(value, int) or value < 1 or value > MAX_ID:
        raise Invalid(f"{field} must be a whole number from 1 to {MAX_ID}.", field)
    return value


def iso_datetime(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{field} must be an ISO 8601 date and time.", field)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{field} must be an ISO 8601 date and time, like 2026-03-01T10:00:00Z.", field) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt
