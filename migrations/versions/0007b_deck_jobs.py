"""pre-read decks: who is converting each one and when it last reported, so a deck left
half-converted by a restarted server is picked up again (or failed with a message)

Revision ID: 0007b
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0007b"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_decks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=120), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_decks", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("worker")
