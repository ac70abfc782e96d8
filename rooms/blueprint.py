"""The rooms pages' blueprint. Its routes are written in three modules by concept:
rooms/views.py (rooms, threads, posts, files), rooms/moderation_views.py (reports,
moderation, a room's label, attribution and retention) and
rooms/account_data_views.py (an account's data download and erasure, which
remove or gather room content). rooms/views.py imports the other two, so the
factory's one import of `rooms.views.bp` brings every route; none of them imports
rooms/views.py back."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("rooms", __name__)
