"""a key message's vote may hide its running tally until one has voted or until it closes

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_key_messages") as batch:
        batch.add_column(sa.Column("hide_tally", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("meeting_key_messages") as batch:
        batch.drop_column("hide_tally")
