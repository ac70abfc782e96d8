"""Site-wide pages that belong to no package."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import login_required

bp = Blueprint("core", __name__)


@bp.get("/")
@login_required
def index():
    return redirect(url_for("rooms.rooms"))
