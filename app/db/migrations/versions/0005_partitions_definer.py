"""Month partitions are made by the owner: the worker (runtime role, no DDL) calls a definer function.

ensure_record_partitions creates tables, which only the owner of record_version may do; as a
SECURITY DEFINER function with a fixed search_path it runs as the owner, and only the roles given
EXECUTE (the runtime role, app/db/grants.py) may call it. New partitions are the owner's, and the
owner's default privileges give the runtime role their rows.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FN = "ensure_record_partitions(date, int)"


def upgrade() -> None:
    op.execute(f"ALTER FUNCTION {FN} SECURITY DEFINER SET search_path = public, pg_temp")
    op.execute(f"REVOKE EXECUTE ON FUNCTION {FN} FROM PUBLIC")


def downgrade() -> None:
    op.execute(f"GRANT EXECUTE ON FUNCTION {FN} TO PUBLIC")
    op.execute(f"ALTER FUNCTION {FN} SECURITY INVOKER RESET search_path")
