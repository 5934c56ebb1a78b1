"""Enterprise onboarding: a self-registered enterprise waits for a regulator (or the licence roster)
before it may upload; the province's licence roster (道路运政 licensed shops) imported by the operator.

Enterprises that exist before this revision were active and stay so (marked as approved by the
upgrade). The column default stays 'active' for rows made outside registration: enterprises known
from a peer node were approved by their home node; registration always sets its own status.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DDL = [
    # anything unexpected in the old free-text status becomes active: it was active before
    "UPDATE enterprise SET status = 'active'"
    " WHERE status NOT IN ('pending', 'active', 'refused', 'suspended')",
    """ALTER TABLE enterprise
        ADD COLUMN status_reason text,
        ADD COLUMN status_source varchar(12),
        ADD COLUMN status_by bigint,
        ADD COLUMN status_at timestamptz,
        ADD CONSTRAINT enterprise_status CHECK (status IN ('pending', 'active', 'refused', 'suspended')),
        ADD CONSTRAINT enterprise_status_source
            CHECK (status_source IN ('register', 'regulator', 'roster', 'upgrade'))""",
    "UPDATE enterprise SET status_source = 'upgrade', status_at = now()",
    # a regulator's queue: the pending enterprises of a region
    "CREATE INDEX enterprise_pending ON enterprise (region_code) WHERE status = 'pending'",
    # one row per licensed shop, replaced row by row at each import (keyed by USCC)
    """CREATE TABLE licence_roster (
        uscc varchar(18) PRIMARY KEY,
        name varchar(200) NOT NULL,
        licence_no varchar(50) NOT NULL,
        category varchar(4),
        region_code varchar(6) NOT NULL REFERENCES region,
        licence_status varchar(12) NOT NULL
            CHECK (licence_status IN ('valid', 'revoked', 'cancelled', 'suspended', 'expired')),
        valid_until date,
        imported_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX licence_roster_region ON licence_roster (region_code)",
]


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("DROP TABLE licence_roster")
    op.execute("DROP INDEX enterprise_pending")
    # the old code checks no enterprise status: credentials of those not active are revoked
    op.execute(
        "UPDATE api_credential SET revoked_at = now() WHERE revoked_at IS NULL AND enterprise_id IN "
        "(SELECT id FROM enterprise WHERE status <> 'active')"
    )
    op.execute(
        """ALTER TABLE enterprise DROP CONSTRAINT enterprise_status, DROP CONSTRAINT enterprise_status_source,
        DROP COLUMN status_reason, DROP COLUMN status_source, DROP COLUMN status_by, DROP COLUMN status_at"""
    )
