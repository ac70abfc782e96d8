"""Discourse's watch levels: a room's levels become watching / tracking / normal / muted, and each
account may set its own level on a thread; an open invitation can be withdrawn (issue 14)

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Old room level -> new one, and back. "all" (new threads, replies, mentions) is now "tracking";
# "mentions" becomes "normal" (replies to you as well, as Discourse does).
_UP = {"all": "tracking", "mentions": "normal", "mute": "muted"}
_DOWN = {"watching": "all", "tracking": "all", "normal": "mentions", "muted": "mute"}


def _remap(mapping: dict) -> None:
    for old, new in mapping.items():
        op.execute(sa.text("UPDATE memberships SET notify_level = :new WHERE notify_level = :old")
                   .bindparams(old=old, new=new))


def upgrade() -> None:
    _remap(_UP)
    op.create_table(
        "thread_watches",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("thread_id", sa.Integer(), sa.ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_thread_watches_thread", "thread_watches", ["thread_id"])
    op.add_column("invitations", sa.Column("revoked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("revoked_at")
    op.drop_index("ix_thread_watches_thread", table_name="thread_watches")
    op.drop_table("thread_watches")
    _remap(_DOWN)
