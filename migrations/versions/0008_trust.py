"""trust and safety in rooms: labels, non-attributed rooms, hidden posts, flags, mutes, suspensions

Revision ID: 0008
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str | None = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"),
                                   ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("non_attributed", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hidden_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("hidden_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hidden_reason", sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_posts_hidden_by_id_users"), "users", ["hidden_by_id"], ["id"])

    op.create_table(
        "thread_pseudonyms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _fk("thread_pseudonyms", "thread_id", "threads"),
        _fk("thread_pseudonyms", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_pseudonyms")),
        sa.UniqueConstraint("thread_id", "user_id", name=op.f("uq_thread_pseudonyms_thread_id")),
        sa.UniqueConstraint("thread_id", "number", name="uq_thread_pseudonyms_thread_id_number"),
    )
    op.create_table(
        "post_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        _fk("post_flags", "post_id", "posts"),
        _fk("post_flags", "room_id", "rooms"),
        _fk("post_flags", "user_id", "users", "SET NULL"),
        _fk("post_flags", "resolved_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_flags")),
    )
    op.create_index(op.f("ix_post_flags_post_id"), "post_flags", ["post_id"])
    op.create_index("ix_post_flags_room_open", "post_flags", ["room_id", "resolved_at"])
    op.create_table(
        "room_mutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("lifted_at", sa.DateTime(), nullable=True),
        _fk("room_mutes", "room_id", "rooms"),
        _fk("room_mutes", "user_id", "users"),
        _fk("room_mutes", "created_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_mutes")),
    )
    op.create_index("ix_room_mutes_room_user", "room_mutes", ["room_id", "user_id"])
    op.create_table(
        "account_suspensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("lifted_at", sa.DateTime(), nullable=True),
        _fk("account_suspensions", "user_id", "users"),
        _fk("account_suspensions", "created_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_suspensions")),
    )
    op.create_index(op.f("ix_account_suspensions_user_id"), "account_suspensions", ["user_id"])


def downgrade() -> None:
    op.drop_table("account_suspensions")
    op.drop_table("room_mutes")
    op.drop_table("post_flags")
    op.drop_table("thread_pseudonyms")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_posts_hidden_by_id_users", type_="foreignkey")
        batch_op.drop_column("hidden_reason")
        batch_op.drop_column("hidden_by_id")
        batch_op.drop_column("hidden_at")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("non_attributed")
        batch_op.drop_column("label")
