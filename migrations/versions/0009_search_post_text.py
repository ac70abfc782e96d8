"""search: the post's own text, without its attachments, for callers who may not read the files

Revision ID: 0009s
Revises: 0003

PostgreSQL only: `search_documents.tsv_post` (title weighted A and post text,
as `tsv` without the attachments), stored for rows with attachments only (NULL
otherwise, so it costs nothing for the others), with a GIN index. A guest in a
room labelled above the lowest label searches that room's posts with files by
this column (search.pg_backend, rooms.policy.may_read_attachment_text).
"""
from alembic import op


revision = "0009s"
down_revision = "0003"
branch_labels = None
depends_on = None

TSV_POST = (
    "CASE WHEN has_attachment THEN "
    "setweight(to_tsvector('collab_english'::regconfig, coalesce(title, '')), 'A') || "
    "to_tsvector('collab_english'::regconfig, coalesce(body, '')) END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE search_documents ADD COLUMN tsv_post tsvector GENERATED ALWAYS AS ({TSV_POST}) STORED")
        op.execute("CREATE INDEX ix_search_documents_tsv_post ON search_documents USING gin (tsv_post)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_documents_tsv_post")
        op.execute("ALTER TABLE search_documents DROP COLUMN IF EXISTS tsv_post")
