"""Peer authority: messages a peer sent that lie outside its authority are refused, and remembered
(what was refused, from whom, why) for the operators, the metrics and reconciliation.

Existing rows are untouched: the reconciliation state gains a count that starts at 0.

Revision ID: 0009
Revises: 0006
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DDL = [
    # one row per refused message id (a re-sent copy of it is not counted twice)
    """CREATE TABLE exchange_refusal (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id uuid NOT NULL UNIQUE, sender varchar(63) NOT NULL, kind varchar(30) NOT NULL,
        msg_key varchar(120), code varchar(40) NOT NULL, detail text NOT NULL DEFAULT '',
        enterprise_region varchar(6), origin_region varchar(6), origin_day date,
        received_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX exchange_refusal_sender ON exchange_refusal (sender, received_at)",
    "CREATE INDEX exchange_refusal_key ON exchange_refusal (sender, msg_key)",
    # keys the peer shipped that this node refused: reported, never re-requested
    "ALTER TABLE exchange_reconcile ADD COLUMN refused int NOT NULL DEFAULT 0",
]


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("ALTER TABLE exchange_reconcile DROP COLUMN refused")
    op.execute("DROP TABLE exchange_refusal")
