"""search: outbox, PostgreSQL full-text documents

Revision ID: 0003
Revises: 0001

`search_outbox` on every database. `search_documents` too, but its stored
`tsv` column (title weighted A, post text, attachments weighted C; English
stemming with accents folded) and the GIN index on it are PostgreSQL only.
"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

TSV = (
    "setweight(to_tsvector('collab_english'::regconfig, coalesce(title, '')), 'A') || "
    "to_tsvector('collab_english'::regconfig, coalesce(body, '')) || "
    "setweight(to_tsvector('collab_english'::regconfig, coalesce(attachments, '')), 'C')"
)


def upgrade() -> None:
    op.create_table(
        "search_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_outbox")),
    )
    op.create_index(op.f("ix_search_outbox_post_id"), "search_outbox", ["post_id"], unique=False)
    op.create_table(
        "search_documents",
        sa.Column("post_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("is_opening", sa.Boolean(), nullable=False),
        sa.Column("has_attachment", sa.Boolean(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_search_documents")),
    )
    op.create_index("ix_search_documents_room_created", "search_documents", ["room_id", "created_at"], unique=False)
    op.create_index(op.f("ix_search_documents_created_at"), "search_documents", ["created_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        op.execute(
            "DO $$ BEGIN "
            "IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'collab_english') THEN "
            "CREATE TEXT SEARCH CONFIGURATION collab_english (COPY = english); "
            "ALTER TEXT SEARCH CONFIGURATION collab_english ALTER MAPPING "
            "FOR hword, hword_part, word WITH unaccent, english_stem; "
            "END IF; END $$"
        )
        op.execute(f"ALTER TABLE search_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({TSV}) STORED")
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)")


def downgrade() -> None:
    op.drop_table("search_documents")
    op.drop_index(op.f("ix_search_outbox_post_id"), table_name="search_outbox")
    op.drop_table("search_outbox")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS collab_english")
