"""Portal: ratings, complaints, published notices with attachments, 行驶证 claims, shop staff accounts,
and the rejected uploads a shop sees in its portal.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SCORE = "smallint NOT NULL CHECK ({0} BETWEEN 1 AND 5)"

DDL = [
    # One rating per repair; owner_id points into the personal schema without a foreign key so the
    # runtime role needs no rights there to write one.
    f"""CREATE TABLE rating (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        record_id bigint NOT NULL UNIQUE REFERENCES repair_record,
        enterprise_id bigint NOT NULL REFERENCES enterprise, owner_id bigint NOT NULL,
        attitude {_SCORE.format("attitude")}, quality {_SCORE.format("quality")},
        efficiency {_SCORE.format("efficiency")}, transparency {_SCORE.format("transparency")},
        environment {_SCORE.format("environment")},
        comment text, created_at timestamptz NOT NULL DEFAULT now(),
        reply text, replied_at timestamptz)""",
    "CREATE INDEX rating_enterprise ON rating (enterprise_id, created_at)",
    """CREATE TABLE complaint (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        record_id bigint NOT NULL REFERENCES repair_record,
        enterprise_id bigint NOT NULL REFERENCES enterprise, owner_id bigint NOT NULL,
        region_code varchar(6) NOT NULL REFERENCES region,
        title varchar(100) NOT NULL, content text NOT NULL,
        status varchar(12) NOT NULL DEFAULT 'submitted'
            CHECK (status IN ('submitted', 'accepted', 'assigned', 'responded', 'closed')),
        created_at timestamptz NOT NULL DEFAULT now(), deadline_at timestamptz NOT NULL,
        accepted_at timestamptz, accepted_by bigint REFERENCES staff_account,
        assignee_id bigint REFERENCES staff_account, assigned_at timestamptz,
        response text, responded_at timestamptz,
        closed_at timestamptz, closed_by bigint REFERENCES staff_account, close_note text,
        enterprise_reply text, enterprise_replied_at timestamptz)""",
    "CREATE INDEX complaint_region ON complaint (region_code, created_at)",
    "CREATE INDEX complaint_enterprise ON complaint (enterprise_id)",
    "CREATE INDEX complaint_owner ON complaint (owner_id)",
    """CREATE TABLE notice (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind varchar(12) NOT NULL CHECK (kind IN ('notice', 'policy', 'standard', 'technical')),
        title varchar(200) NOT NULL, body text NOT NULL, region_code varchar(6) NOT NULL REFERENCES region,
        published_by bigint NOT NULL REFERENCES staff_account,
        published_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX notice_published ON notice (kind, published_at DESC)",
    """CREATE TABLE notice_attachment (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        notice_id bigint NOT NULL REFERENCES notice, filename varchar(200) NOT NULL,
        content_type varchar(50) NOT NULL, size_bytes bigint NOT NULL, sha256 varchar(64) NOT NULL,
        object_key varchar(300) NOT NULL)""",
    # A 行驶证 photo is personal data: its claim lives in the personal schema.
    """CREATE TABLE personal.vehicle_claim (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES personal.owner_account, vin varchar(17) NOT NULL,
        plate_no varchar(10), region_code varchar(6) NOT NULL,
        object_key varchar(300) NOT NULL, sha256 varchar(64) NOT NULL, content_type varchar(50) NOT NULL,
        status varchar(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
        created_at timestamptz NOT NULL DEFAULT now(),
        reviewed_by bigint, reviewed_at timestamptz, review_note text)""",
    # a car bound through an approved claim has no settlement record to point at
    """ALTER TABLE personal.owner_vehicle ALTER COLUMN via_record_id DROP NOT NULL,
        ADD COLUMN via_claim_id bigint REFERENCES personal.vehicle_claim,
        ADD CHECK (via_record_id IS NOT NULL OR via_claim_id IS NOT NULL)""",
    "CREATE INDEX vehicle_claim_region ON personal.vehicle_claim (status, region_code)",
    """CREATE TABLE enterprise_user (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        enterprise_id bigint NOT NULL REFERENCES enterprise, username varchar(40) NOT NULL UNIQUE,
        display_name varchar(50), password_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), disabled_at timestamptz)""",
    # Rejected records leave no repair data behind, only what the shop needs to fix them.
    """CREATE TABLE upload_rejection (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        enterprise_id bigint NOT NULL REFERENCES enterprise, settlement_no varchar(50),
        source varchar(12) NOT NULL, errors jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX upload_rejection_enterprise ON upload_rejection (enterprise_id, at DESC)",
    # statistics: a region's records by settlement date
    "CREATE INDEX repair_record_enterprise_settle ON repair_record (enterprise_id, settle_date)",
    "CREATE INDEX enterprise_region ON enterprise (region_code, category)",
]


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("DELETE FROM personal.owner_vehicle WHERE via_record_id IS NULL")
    op.execute(
        "ALTER TABLE personal.owner_vehicle DROP COLUMN via_claim_id, ALTER COLUMN via_record_id SET NOT NULL"
    )
    for name in (
        "upload_rejection",
        "enterprise_user",
        "personal.vehicle_claim",
        "notice_attachment",
        "notice",
        "complaint",
        "rating",
    ):
        op.execute(f"DROP TABLE {name}")
    op.execute("DROP INDEX repair_record_enterprise_settle")
    op.execute("DROP INDEX enterprise_region")
