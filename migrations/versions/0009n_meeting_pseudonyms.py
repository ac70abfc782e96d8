"""meetings of non-attributed rooms: "Participant <n>" per person per meeting

Revision ID: 0009n
Revises: 0007b
"""
import sqlalchemy as sa
from alembic import op

revision = "0009n"
down_revision = "0007b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_pseudonyms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name=op.f("fk_meeting_pseudonyms_meeting_id_meetings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_meeting_pseudonyms_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_pseudonyms")),
        sa.UniqueConstraint("meeting_id", "user_id", name=op.f("uq_meeting_pseudonyms_meeting_id")),
        sa.UniqueConstraint("meeting_id", "number", name="uq_meeting_pseudonyms_meeting_id_number"),
    )


def downgrade() -> None:
    op.drop_table("meeting_pseudonyms")
