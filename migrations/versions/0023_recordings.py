"""recordings (issue 16): meeting recordings, the slide changes while they ran, and the room setting that
allows them

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("recording_allowed", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "meeting_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("worker", sa.String(length=120), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name="fk_meeting_recordings_meeting_id_meetings",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["started_by_id"], ["users.id"], name="fk_meeting_recordings_started_by_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_recordings"),
    )
    op.create_index("ix_meeting_recordings_meeting", "meeting_recordings", ["meeting_id", "started_at"])
    op.create_index("ix_meeting_recordings_status", "meeting_recordings", ["status"])
    op.create_table(
        "meeting_recording_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("deck_id", sa.Integer(), nullable=True),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["meeting_recordings.id"],
                                name="fk_meeting_recording_marks_recording_id_meeting_recordings", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["deck_id"], ["meeting_decks.id"],
                                name="fk_meeting_recording_marks_deck_id_meeting_decks", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_recording_marks"),
    )
    op.create_index("ix_meeting_recording_marks_recording", "meeting_recording_marks", ["recording_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_meeting_recording_marks_recording", table_name="meeting_recording_marks")
    op.drop_table("meeting_recording_marks")
    op.drop_index("ix_meeting_recordings_status", table_name="meeting_recordings")
    op.drop_index("ix_meeting_recordings_meeting", table_name="meeting_recordings")
    op.drop_table("meeting_recordings")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("recording_allowed")
