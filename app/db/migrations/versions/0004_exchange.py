"""Exchange between nodes: outbox with per-peer cursors, inbox, the origin of received versions,
first-seen home region of VINs, reconciliation state, statistics received from below.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DDL = [
    # where and when a received version was first uploaded; NULL for uploads made at this node
    "ALTER TABLE record_version ADD COLUMN origin_region varchar(6), ADD COLUMN origin_at timestamptz",
    """CREATE INDEX record_version_origin ON record_version (origin_region, origin_at)
        WHERE origin_region IS NOT NULL""",
    # One row per message and peer, written in the transaction of the change. A peer's rows ship in
    # (xid, id) order and only once every older transaction has ended (see app.services.outbox), so
    # the cursor never passes a row that commits later.
    """CREATE TABLE exchange_outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
        peer varchar(63) NOT NULL, message_id uuid NOT NULL UNIQUE, kind varchar(30) NOT NULL,
        body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
        msg_key varchar(120), digest varchar(64), origin_region varchar(6), origin_day date,
        status varchar(10) NOT NULL DEFAULT 'pending', error_code varchar(40), error text,
        dead_at timestamptz, replayed_as uuid,
        CHECK (status IN ('pending', 'dead', 'replayed')))""",
    "CREATE INDEX exchange_outbox_position ON exchange_outbox (peer, xid, id)",
    "CREATE INDEX exchange_outbox_dead ON exchange_outbox (peer, id) WHERE status = 'dead'",
    "CREATE INDEX exchange_outbox_reconcile ON exchange_outbox (peer, origin_day, origin_region)",
    """CREATE TABLE exchange_cursor (
        peer varchar(63) PRIMARY KEY, xid xid8 NOT NULL DEFAULT '0', id bigint NOT NULL DEFAULT 0,
        shipped_at timestamptz, failures int NOT NULL DEFAULT 0, next_attempt_at timestamptz,
        last_error text)""",
    """CREATE TABLE exchange_inbox (
        message_id uuid PRIMARY KEY, sender varchar(63) NOT NULL, kind varchar(30) NOT NULL,
        msg_key varchar(120), outcome varchar(12) NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now())""",
    # the fallback home of a car without a plate: the region that first reported it
    """CREATE TABLE exchange_vin_home (
        vin varchar(17) PRIMARY KEY, region_code varchar(6) NOT NULL,
        first_seen_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE exchange_reconcile (
        peer varchar(63) NOT NULL, day date NOT NULL, origin_region varchar(6) NOT NULL,
        their_count int NOT NULL, their_digest varchar(64) NOT NULL,
        our_count int NOT NULL, our_digest varchar(64) NOT NULL,
        missing int NOT NULL DEFAULT 0, rerequested int NOT NULL DEFAULT 0, status varchar(10) NOT NULL,
        checked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (peer, day, origin_region))""",
    """CREATE TABLE exchange_statistics (
        sender varchar(63) NOT NULL, day date NOT NULL, region_code varchar(6) NOT NULL,
        records int NOT NULL, detail jsonb NOT NULL, generated_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sender, day, region_code))""",
]


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)


def downgrade() -> None:
    for name in (
        "exchange_statistics",
        "exchange_reconcile",
        "exchange_vin_home",
        "exchange_inbox",
        "exchange_cursor",
        "exchange_outbox",
    ):
        op.execute(f"DROP TABLE {name}")
    op.execute("ALTER TABLE record_version DROP COLUMN origin_region, DROP COLUMN origin_at")
