"""who was given a meeting's media token: losing access reaches API clients too

Revision ID: 0010
Revises: 0009n
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009n"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_media_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("minted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name=op.f("fk_meeting_media_grants_meeting_id_meetings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_meeting_media_grants_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_media_grants")),
        sa.UniqueConstraint("meeting_id", "user_id", name="uq_meeting_media_grants_meeting_id"),
    )


def downgrade() -> None:
    op.drop_table("meeting_media_grants")
