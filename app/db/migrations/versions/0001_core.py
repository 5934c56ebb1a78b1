"""Core schema: reference data, enterprises and credentials, vehicles, records (partitioned), owners, audit.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from app.domain.reference import code_tables, plate_prefixes, region_level, region_parent, regions

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Month partitions follow Beijing time so a month's uploads land in that month's partition.
PARTITION_FN = """
CREATE FUNCTION ensure_record_partitions(first_month date, months int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    m date;
    part text;
    made int := 0;
BEGIN
    FOR i IN 0..months - 1 LOOP
        m := (date_trunc('month', first_month) + make_interval(months => i))::date;
        part := 'record_version_' || to_char(m, 'YYYYMM');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF record_version FOR VALUES FROM (%L) TO (%L)',
                           part, m::timestamp AT TIME ZONE 'Asia/Shanghai',
                           (m + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
"""

DDL = [
    "CREATE SCHEMA personal",
    "CREATE SCHEMA audit",
    """CREATE TABLE region (
        code varchar(6) PRIMARY KEY, name varchar(100) NOT NULL, level varchar(10) NOT NULL,
        parent_code varchar(6))""",
    """CREATE TABLE code_entry (
        table_name varchar(40), code varchar(20), name varchar(100) NOT NULL,
        PRIMARY KEY (table_name, code))""",
    "CREATE TABLE plate_prefix (prefix varchar(2) PRIMARY KEY, region_code varchar(6) NOT NULL)",
    """CREATE TABLE enterprise (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uscc varchar(18) NOT NULL UNIQUE, name varchar(200) NOT NULL, licence_no varchar(50),
        category varchar(4), business_scope text, region_code varchar(6) NOT NULL REFERENCES region,
        address varchar(200), contact_name varchar(50), contact_phone varchar(30),
        status varchar(16) NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE api_credential (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        enterprise_id bigint NOT NULL REFERENCES enterprise, key_id varchar(40) NOT NULL UNIQUE,
        secret_hash text NOT NULL, label varchar(100), created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz)""",
    "CREATE INDEX api_credential_enterprise ON api_credential (enterprise_id)",
    """CREATE TABLE vehicle (
        vin varchar(17) PRIMARY KEY, plate_no varchar(10), plate_colour varchar(2), brand varchar(50),
        model varchar(80), use_nature varchar(2), fuel_type varchar(2), registration_date date,
        transport_cert_no varchar(30), home_region varchar(6),
        updated_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX vehicle_plate ON vehicle (plate_no)",
    """CREATE TABLE repair_record (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        enterprise_id bigint NOT NULL REFERENCES enterprise, settlement_no varchar(50) NOT NULL,
        vin varchar(17) NOT NULL, settle_date date NOT NULL, mileage_km int, current_version int NOT NULL,
        current_received_at timestamptz NOT NULL, current_digest varchar(64) NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (enterprise_id, settlement_no))""",
    # hot path 1: a VIN's history, newest first
    "CREATE INDEX repair_record_vin ON repair_record (vin, settle_date DESC)",
    """CREATE TABLE record_version (
        record_id bigint NOT NULL, version int NOT NULL, received_at timestamptz NOT NULL,
        kind varchar(12) NOT NULL, source varchar(12) NOT NULL, enterprise_id bigint NOT NULL,
        settlement_no varchar(50) NOT NULL, vin varchar(17) NOT NULL, digest varchar(64) NOT NULL,
        plate_no varchar(10), plate_colour varchar(2), repair_date date, settle_date date, mileage_km int,
        fault_description text, repair_type varchar(2), items jsonb, parts jsonb,
        labour_total numeric(12,2), parts_total numeric(12,2), other_total numeric(12,2), total numeric(12,2),
        withdraw_reason text,
        PRIMARY KEY (record_id, version, received_at)
    ) PARTITION BY RANGE (received_at)""",
    # hot path 2: an enterprise's uploads by date
    "CREATE INDEX record_version_enterprise ON record_version (enterprise_id, received_at)",
    "CREATE TABLE record_version_default PARTITION OF record_version DEFAULT",
    PARTITION_FN,
    "SELECT ensure_record_partitions((now() - interval '24 months')::date, 28)",
    """CREATE TABLE attachment (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        record_id bigint NOT NULL REFERENCES repair_record, kind varchar(12) NOT NULL,
        filename varchar(200) NOT NULL, content_type varchar(50) NOT NULL, size_bytes bigint NOT NULL,
        sha256 varchar(64) NOT NULL, object_key varchar(300) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (record_id, sha256))""",
    """CREATE TABLE auth_failure (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subject varchar(120) NOT NULL,
        at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX auth_failure_subject ON auth_failure (subject, at)",
    """CREATE TABLE personal.owner_account (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, phone varchar(20) NOT NULL UNIQUE,
        password_hash text NOT NULL, display_name varchar(50),
        created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE personal.owner_vehicle (
        owner_id bigint NOT NULL REFERENCES personal.owner_account, vin varchar(17) NOT NULL,
        via_record_id bigint NOT NULL, verified_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (owner_id, vin))""",
    """CREATE TABLE audit.read_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),
        actor_kind varchar(20) NOT NULL, actor_id varchar(60) NOT NULL, action varchar(40) NOT NULL,
        subject varchar(60) NOT NULL, request_id varchar(40))""",
    "CREATE INDEX read_log_subject ON audit.read_log (subject, at)",
]


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)
    meta = sa.MetaData()
    region = sa.Table(
        "region", meta, sa.Column("code"), sa.Column("name"), sa.Column("level"), sa.Column("parent_code")
    )
    codes = sa.Table("code_entry", meta, sa.Column("table_name"), sa.Column("code"), sa.Column("name"))
    prefixes = sa.Table("plate_prefix", meta, sa.Column("prefix"), sa.Column("region_code"))
    op.bulk_insert(
        region,
        [
            {"code": c, "name": n, "level": region_level(c), "parent_code": region_parent(c)}
            for c, n in regions().items()
        ],
    )
    op.bulk_insert(
        codes,
        [
            {"table_name": t, "code": c, "name": n}
            for t, entries in code_tables().items()
            for c, n in entries.items()
        ],
    )
    op.bulk_insert(prefixes, [{"prefix": p, "region_code": r} for p, r in plate_prefixes().items()])


def downgrade() -> None:
    for name in (
        "audit.read_log",
        "personal.owner_vehicle",
        "personal.owner_account",
        "auth_failure",
        "attachment",
        "record_version",
        "repair_record",
        "vehicle",
        "api_credential",
        "enterprise",
        "plate_prefix",
        "code_entry",
        "region",
    ):
        op.execute(f"DROP TABLE {name} CASCADE")
    op.execute("DROP FUNCTION ensure_record_partitions(date, int)")
    op.execute("DROP SCHEMA audit")
    op.execute("DROP SCHEMA personal")
