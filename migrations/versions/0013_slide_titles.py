"""each deck's slide titles (the first line of each page's text), read while converting; none for older decks

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("meeting_decks", sa.Column("page_titles", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_decks") as batch:
        batch.drop_column("page_titles")
