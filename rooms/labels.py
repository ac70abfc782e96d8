"""Confidentiality labels (COLLAB_LABELS, lowest first; default OFFICIAL,
OFFICIAL-SENSITIVE) and the non-attributed flag: the room settings of issue 7."""
from __future__ import annotations

from flask import current_app, has_app_context

from rooms.models import Room

DEFAULT_LABELS = ["OFFICIAL", "OFFICIAL-SENSITIVE"]


def labels() -> list[str]:
    if has_app_context():
        return list(current_app.config.get("LABELS") or DEFAULT_LABELS)
    return list(DEFAULT_LABELS)


def normal(label: str | None) -> str:
    """A stored label as shown: none (or one no longer configured) is the lowest."""
    known = labels()
    return label if label in known else known[0]


def label_of(room: Room | None) -> str:
    return normal(room.label if room is not None else None)


def recording_max_label() -> str:
    """COLLAB_RECORDING_MAX_LABEL: the highest label whose rooms' meetings may be recorded (default the lowest)."""
    known = labels()
    wanted = current_app.config.get("RECORDING_MAX_LABEL") if has_app_context() else None
    return wanted if wanted in known else known[0]


def rank(label: str) -> int:
    known = labels()
    return known.index(label) if label in known else 0


def is_sensitive(room: Room | None) -> bool:
    """Any label above the lowest: attachments are kept from guests and post text out of e-mail."""
    return rank(label_of(room)) > 0


def subject(room: Room | None, text: str) -> str:
    """An e-mail subject line carrying the room's label."""
    return f"[{label_of(room)}] {text}"
