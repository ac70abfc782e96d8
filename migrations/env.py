"""Alembic environment: the schema is made only by these migrations."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import auth.audit  # noqa: F401
import auth.account_models  # noqa: F401
import auth.models  # noqa: F401  (register tables)
import rooms.models  # noqa: F401
import rooms.meetings.models  # noqa: F401
import rooms.polls.models  # noqa: F401
import rooms.notifications  # noqa: F401
import rooms.watching  # noqa: F401
import rooms.moderation_models  # noqa: F401
import rooms.ideas.models  # noqa: F401
import rooms.qa.models  # noqa: F401
import search.models  # noqa: F401
from collab.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
