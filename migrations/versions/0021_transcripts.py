"""captions (issue 16): meeting transcript segments (final captions from the media worker, corrected by
a chair) and each account's captions on/off preference

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_transcript_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("corrected_text", sa.Text(), nullable=True),
        sa.Column("corrected_by_id", sa.Integer(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], 
                                name="fk_meeting_transcript_segments_meeting_id_meetings",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["speaker_id"], ["users.id"], 
                                name="fk_meeting_transcript_segments_speaker_id_users",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["corrected_by_id"], ["users.id"],
                                name="fk_meeting_transcript_segments_corrected_by_id_users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_transcript_segments"),
        sa.UniqueConstraint("meeting_id", "key", name="uq_meeting_transcript_segments_meeting_id"),
    )
    op.create_index("ix_meeting_transcript_segments_meeting", "meeting_transcript_segments",
                    ["meeting_id", "started_at"])
    op.create_index("ix_meeting_transcript_segments_speaker", "meeting_transcript_segments", ["speaker_id"])
    op.add_column("users", sa.Column("captions", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("captions")
    op.drop_index("ix_meeting_transcript_segments_speaker", table_name="meeting_transcript_segments")
    op.drop_index("ix_meeting_transcript_segments_meeting", table_name="meeting_transcript_segments")
    op.drop_table("meeting_transcript_segments")
