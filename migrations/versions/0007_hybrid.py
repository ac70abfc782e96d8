"""hybrid meetings: schedule, chairs and invitees, pre-read decks, hands, attendance, chat, key messages and votes

Revision ID: 0007
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def _fk(table: str, col: str, ref: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [f"{ref}.id"], name=op.f(f"fk_{table}_{col}_{ref}"), ondelete=ondelete)


def _meeting(table: str) -> list:
    return [sa.Column("meeting_id", sa.Integer(), nullable=False), _fk(table, "meeting_id", "meetings")]


def upgrade() -> None:
    op.create_table(
        "meeting_decks",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_decks"),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _fk("meeting_decks", "uploaded_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_decks")),
    )
    op.create_index("ix_meeting_decks_meeting", "meeting_decks", ["meeting_id"])
    op.create_table(
        "meeting_plans",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("all_members", sa.Boolean(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.Column("ics_sequence", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("presenter_id", sa.Integer(), nullable=True),
        sa.Column("deck_id", sa.Integer(), nullable=True),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("announce_thread_id", sa.Integer(), nullable=True),
        sa.Column("minutes_thread_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _fk("meeting_plans", "meeting_id", "meetings"),
        _fk("meeting_plans", "presenter_id", "users", "SET NULL"),
        _fk("meeting_plans", "deck_id", "meeting_decks", "SET NULL"),
        _fk("meeting_plans", "announce_thread_id", "threads", "SET NULL"),
        _fk("meeting_plans", "minutes_thread_id", "threads", "SET NULL"),
        sa.PrimaryKeyConstraint("meeting_id", name=op.f("pk_meeting_plans")),
    )
    op.create_table(
        "meeting_people",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_people"),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        _fk("meeting_people", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_people")),
        sa.UniqueConstraint("meeting_id", "user_id", "role", name=op.f("uq_meeting_people_meeting_id")),
    )
    op.create_index("ix_meeting_people_meeting_id", "meeting_people", ["meeting_id"])
    op.create_table(
        "meeting_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_attendance"),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("head_count", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
        _fk("meeting_attendance", "user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_attendance")),
    )
    op.create_index("ix_meeting_attendance_meeting", "meeting_attendance", ["meeting_id"])
    op.create_table(
        "meeting_hands",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_hands"),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("in_room", sa.Boolean(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("floor_at", sa.DateTime(), nullable=True),
        sa.Column("lowered_at", sa.DateTime(), nullable=True),
        _fk("meeting_hands", "user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_hands")),
    )
    op.create_index("ix_meeting_hands_meeting", "meeting_hands", ["meeting_id", "lowered_at"])
    op.create_table(
        "meeting_chat",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_chat"),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _fk("meeting_chat", "user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_chat")),
    )
    op.create_index("ix_meeting_chat_meeting", "meeting_chat", ["meeting_id", "id"])
    op.create_table(
        "meeting_key_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_key_messages"),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("room_agree", sa.Integer(), nullable=False),
        sa.Column("room_disagree", sa.Integer(), nullable=False),
        sa.Column("room_abstain", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_key_messages")),
    )
    op.create_index("ix_meeting_key_messages_meeting", "meeting_key_messages", ["meeting_id"])
    op.create_table(
        "meeting_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _fk("meeting_votes", "key_message_id", "meeting_key_messages"),
        _fk("meeting_votes", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_votes")),
        sa.UniqueConstraint("key_message_id", "user_id", name=op.f("uq_meeting_votes_key_message_id")),
    )
    op.create_table(
        "meeting_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        *_meeting("meeting_actions"),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_actions")),
    )
    op.create_index("ix_meeting_actions_meeting", "meeting_actions", ["meeting_id"])


def downgrade() -> None:
    for table in ("meeting_actions", "meeting_votes", "meeting_key_messages", "meeting_chat", "meeting_hands",
                  "meeting_attendance", "meeting_people", "meeting_plans", "meeting_decks"):
        op.drop_table(table)
