"""people (issue 14): display preferences per account (text size, high contrast) and the role an
invitation made from a room gives its new account there

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("text_size", sa.String(length=10), nullable=False, server_default="default"))
    op.add_column("users", sa.Column("high_contrast", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("invitations", sa.Column("room_role", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("room_role")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("high_contrast")
        batch.drop_column("text_size")
