"""Running the Alembic migrations from code: the CLI, restore, the tests and the benches share this.

Alembic is imported when a migration runs, not when the app starts: importing it logs its plugin set-up and adds
to every process's start-up, and only commands that change the schema need it.
"""
from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str):
    from alembic.config import Config  # imported when a migration runs (see the module docstring)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str, revision: str = "heads") -> None:
    from alembic import command  # imported when a migration runs (see the module docstring)

    command.upgrade(alembic_config(url), revision)
