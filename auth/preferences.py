"""An account's display preferences (issue 14): text size and the high-contrast theme, kept per account so
they follow the person to any device. Applied on every page as classes on <html> (base.html reads
`display_classes`); the time zone, the third preference, is kept by auth/services.py `set_time_zone`
because times are formatted from it (collab/timezones.py)."""
from __future__ import annotations

from typing import Optional

from auth.models import TEXT_SIZES, User
from collab import validate
from collab.errors import Invalid
from collab.extensions import db


def set_display(user: User, *, text_size: object, high_contrast: object) -> User:
    """Save both preferences; a text size not offered is refused with a message and nothing changes."""
    size = validate.choice(text_size, "text_size", TEXT_SIZES, label="Text size")
    if high_contrast not in (True, False, "on", "", None):
        raise Invalid("high_contrast must be on or off.", "high_contrast")
    db.begin_write()
    user = db.session.merge(user)
    user.text_size = size
    user.high_contrast = high_contrast in (True, "on")
    db.session.commit()
    return user


def set_captions(user: User, on: object) -> User:
    """Captions on or off on meeting pages, remembered for the account (the meeting page's toggle)."""
    if not isinstance(on, bool):
        raise Invalid("captions must be true or false.", "captions")
    db.begin_write()
    user = db.session.merge(user)
    user.captions = on
    db.session.commit()
    return user


def html_class(user: Optional[User]) -> str:
    """The classes base.html puts on <html> for this reader ("" for the defaults and for anonymous pages)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    classes = []
    if user.text_size in ("large", "larger"):
        classes.append(f"text-{user.text_size}")
    if user.high_contrast:
        classes.append("contrast-high")
    return " ".join(classes)
