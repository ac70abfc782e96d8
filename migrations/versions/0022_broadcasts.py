"""web broadcast (issue 16): meeting broadcasts and viewers' questions and requests to speak

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name="fk_meeting_broadcasts_meeting_id_meetings",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["started_by_id"], ["users.id"], name="fk_meeting_broadcasts_started_by_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_broadcasts"),
    )
    op.create_index("ix_meeting_broadcasts_meeting", "meeting_broadcasts", ["meeting_id", "started_at"])
    op.create_table(
        "meeting_viewer_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"],
                                name="fk_meeting_viewer_requests_meeting_id_meetings", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_meeting_viewer_requests_user_id_users",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["handled_by_id"], ["users.id"],
                                name="fk_meeting_viewer_requests_handled_by_id_users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_viewer_requests"),
    )
    op.create_index("ix_meeting_viewer_requests_meeting", "meeting_viewer_requests", ["meeting_id", "status"])
    op.create_index("ix_meeting_viewer_requests_user", "meeting_viewer_requests", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_meeting_viewer_requests_user", table_name="meeting_viewer_requests")
    op.drop_index("ix_meeting_viewer_requests_meeting", table_name="meeting_viewer_requests")
    op.drop_table("meeting_viewer_requests")
    op.drop_index("ix_meeting_broadcasts_meeting", table_name="meeting_broadcasts")
    op.drop_table("meeting_broadcasts")
