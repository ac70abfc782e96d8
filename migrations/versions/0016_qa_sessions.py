"""Q&A sessions: sessions (a thread each), hosts, questions (a post each) and one vote per person (issue 13)

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _user(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True, **kw)


def upgrade() -> None:
    op.create_table(
        "qa_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("thread_id", sa.Integer(), sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("meeting_id", sa.Integer(), sa.ForeignKey("meetings.id", ondelete="SET NULL"), nullable=True),
        _user("created_by_id"),
        sa.Column("moderated", sa.Boolean(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        _user("ended_by_id"),
        sa.Column("now_answering_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_qa_sessions_room", "qa_sessions", ["room_id"])
    op.create_index("ix_qa_sessions_meeting_id", "qa_sessions", ["meeting_id"])
    op.create_table(
        "qa_hosts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("qa_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        _user("added_by_id"),
        sa.UniqueConstraint("session_id", "user_id", name="uq_qa_hosts_session_user"),
    )
    op.create_index("ix_qa_hosts_session_id", "qa_hosts", ["session_id"])
    op.create_table(
        "qa_questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("qa_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("room_id", sa.Integer(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        _user("asker_id"),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("vote_count", sa.Integer(), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), sa.ForeignKey("qa_questions.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("edited_by_moderator", sa.Boolean(), nullable=False),
        sa.Column("answer_post_id", sa.Integer(), sa.ForeignKey("posts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("answered_aloud", sa.Boolean(), nullable=False),
        _user("answered_by_id"),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        _user("owner_id"),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_qa_questions_session_status", "qa_questions", ["session_id", "status"])
    op.create_index("ix_qa_questions_due", "qa_questions", ["status", "due_on"])
    op.create_table(
        "qa_votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("question_id", sa.Integer(), sa.ForeignKey("qa_questions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("question_id", "user_id", name="uq_qa_votes_question_user"),
    )
    op.create_index("ix_qa_votes_question_id", "qa_votes", ["question_id"])


def downgrade() -> None:
    op.drop_table("qa_votes")
    op.drop_table("qa_questions")
    op.drop_table("qa_hosts")
    op.drop_table("qa_sessions")
