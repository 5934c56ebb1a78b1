"""Owner binding scope (issue 15): a query code proves a relationship with the enterprise that printed
it, not with the car's whole file.

- `personal.owner_vehicle_scope`: the enterprises whose records an owner sees through codes, one row
  per enterprise (binding codes of several shops gives each shop's records).
- `personal.owner_vehicle.full_via` / `full_at`: the car's whole history, proven by the vehicle
  registration check (`registry`) or an approved 行驶证 photo claim (`claim`); no shop holds either.
- `personal.owner_vehicle.ended_at`: a binding ended because another owner proved the full history
  (the car was sold); `personal.owner_notification` tells the previous owner in their account.

Existing rows keep working: a code binding becomes a binding scoped to the code's enterprise, a
binding through an approved claim a full-history binding.

Revision ID: 0008
Revises: 0006
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DDL = [
    # the CHECK of 0003 (a code or a claim) no longer holds: a registry check leaves neither
    "ALTER TABLE personal.owner_vehicle DROP CONSTRAINT IF EXISTS owner_vehicle_check",
    """ALTER TABLE personal.owner_vehicle
        ADD COLUMN full_via varchar(10) CHECK (full_via IN ('registry', 'claim')),
        ADD COLUMN full_at timestamptz,
        ADD COLUMN ended_at timestamptz,
        ADD COLUMN ended_reason varchar(20),
        ADD CHECK ((full_via IS NULL) = (full_at IS NULL))""",
    # ending the other owners' bindings of a car looks them up by VIN
    "CREATE INDEX owner_vehicle_vin ON personal.owner_vehicle (vin)",
    """CREATE TABLE personal.owner_vehicle_scope (
        owner_id bigint NOT NULL, vin varchar(17) NOT NULL,
        enterprise_id bigint NOT NULL REFERENCES enterprise,
        via_record_id bigint NOT NULL, bound_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (owner_id, vin, enterprise_id),
        FOREIGN KEY (owner_id, vin) REFERENCES personal.owner_vehicle ON DELETE CASCADE)""",
    """CREATE TABLE personal.owner_notification (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES personal.owner_account,
        kind varchar(20) NOT NULL, vin varchar(17), created_at timestamptz NOT NULL DEFAULT now(),
        read_at timestamptz)""",
    "CREATE INDEX owner_notification_owner ON personal.owner_notification (owner_id, created_at DESC)",
    # existing code bindings: scoped to the enterprise whose record the code came from
    """INSERT INTO personal.owner_vehicle_scope (owner_id, vin, enterprise_id, via_record_id, bound_at)
        SELECT ov.owner_id, ov.vin, r.enterprise_id, ov.via_record_id, ov.verified_at
        FROM personal.owner_vehicle ov JOIN repair_record r ON r.id = ov.via_record_id""",
    # existing approved claims: the whole history (also where a code binding came first)
    """UPDATE personal.owner_vehicle ov
        SET full_via = 'claim', full_at = c.reviewed_at, via_claim_id = c.id
        FROM (SELECT DISTINCT ON (owner_id, vin) id, owner_id, vin, coalesce(reviewed_at, created_at)
                  AS reviewed_at
              FROM personal.vehicle_claim WHERE status = 'approved'
              ORDER BY owner_id, vin, id DESC) c
        WHERE c.owner_id = ov.owner_id AND c.vin = ov.vin""",
]


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("DROP TABLE personal.owner_notification")
    op.execute("DROP TABLE personal.owner_vehicle_scope")
    op.execute("DELETE FROM personal.owner_vehicle WHERE via_record_id IS NULL AND via_claim_id IS NULL")
    op.execute("DROP INDEX personal.owner_vehicle_vin")
    op.execute(
        "ALTER TABLE personal.owner_vehicle DROP COLUMN full_via, DROP COLUMN full_at,"
        " DROP COLUMN ended_at, DROP COLUMN ended_reason,"
        " ADD CONSTRAINT owner_vehicle_check CHECK (via_record_id IS NOT NULL OR via_claim_id IS NOT NULL)"
    )
