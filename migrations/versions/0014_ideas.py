"""ideas (issue 13): a room's idea settings and named decision-makers, ideas (each a thread), their votes
and the history of their status

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idea_settings",
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("vote_budget", sa.Integer(), nullable=True),
        sa.Column("judge_on_merit", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "idea_deciders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("named_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("room_id", "user_id", name="uq_idea_deciders_room_id"),
    )
    op.create_index("ix_idea_deciders_room_id", "idea_deciders", ["room_id"])
    op.create_table(
        "ideas",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("thread_id", sa.Integer(), sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), sa.ForeignKey("ideas.id", ondelete="SET NULL"), nullable=True),
        sa.Column("vote_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("thread_id", name="uq_ideas_thread_id"),
    )
    op.create_index("ix_ideas_room_status", "ideas", ["room_id", "status"])
    op.create_table(
        "idea_votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idea_id", sa.Integer(), sa.ForeignKey("ideas.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("idea_id", "user_id", name="uq_idea_votes_idea_id"),
    )
    op.create_index("ix_idea_votes_idea_id", "idea_votes", ["idea_id"])
    op.create_index("ix_idea_votes_user_room", "idea_votes", ["user_id", "room_id"])
    op.create_table(
        "idea_status_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idea_id", sa.Integer(), sa.ForeignKey("ideas.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_idea_status_changes_idea_id", "idea_status_changes", ["idea_id"])


def downgrade() -> None:
    op.drop_table("idea_status_changes")
    op.drop_table("idea_votes")
    op.drop_table("ideas")
    op.drop_table("idea_deciders")
    op.drop_table("idea_settings")
