"""a poll can belong to a meeting: its outcome goes into the meeting's minutes (issue 13)

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.add_column(sa.Column("meeting_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_polls_meeting", "meetings", ["meeting_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_polls_meeting", ["meeting_id"])


def downgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.drop_index("ix_polls_meeting")
        batch.drop_constraint("fk_polls_meeting", type_="foreignkey")
        batch.drop_column("meeting_id")
