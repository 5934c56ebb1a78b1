"""Where each bulk import of records (`app-admin import`) stands, committed with every batch it
stores, so an import stopped at any point resumes after its last stored batch: no gap, no duplicate.

Revision ID: 0013
Revises: 0011
"""

from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE import_progress (
            digest varchar(64) PRIMARY KEY, filename varchar(200) NOT NULL, actor varchar(60) NOT NULL,
            attributed_to varchar(60) NOT NULL, byte_offset bigint NOT NULL, line bigint NOT NULL,
            created bigint NOT NULL DEFAULT 0, updated bigint NOT NULL DEFAULT 0,
            unchanged bigint NOT NULL DEFAULT 0, rejected bigint NOT NULL DEFAULT 0,
            started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz)"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE import_progress")
