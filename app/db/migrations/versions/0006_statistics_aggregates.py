"""Daily and monthly pre-aggregated statistics, and the "dirty days" their refresh works from.

Each `stat_*_day` table holds one day's totals (settlement day for repair volumes and parts, day of
receipt for uploads, day of rating for ratings; days in Beijing time) by enterprise or by county
(GB/T 2260) and the other dimensions the statistics show; each `stat_*_month` table the same summed
over a calendar month, so a year is read as twelve month rows and a few edge days.

Triggers on the raw tables write the days a change touches into `stat_dirty`, in the transaction of
the change (one row per day and transaction, so concurrent uploads never wait on each other's mark).
The worker (app.services.aggregates.refresh) re-aggregates the marked days and their months; until
it has, the statistics read those days from the raw tables, so every figure is always exact.
Existing data is marked here, to be aggregated by the worker's first round.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (table, key columns, measure columns); each gets a _day and a _month table
TABLES = [
    ("stat_volume", "enterprise_id bigint NOT NULL", "records int NOT NULL, amount numeric NOT NULL"),
    (
        "stat_kind",
        "region_code varchar(6) NOT NULL, brand text NOT NULL, repair_type text",
        "records int NOT NULL",
    ),
    (
        "stat_part",
        "region_code varchar(6) NOT NULL, name text, kind text",
        "lines int NOT NULL, quantity numeric",
    ),
    (
        "stat_rating",
        "region_code varchar(6) NOT NULL, dimension text NOT NULL, score smallint NOT NULL",
        "n int NOT NULL",
    ),
    ("stat_upload", "enterprise_id bigint NOT NULL", "versions int NOT NULL, last_day date NOT NULL"),
]

DAY = "(({0}) AT TIME ZONE 'Asia/Shanghai')::date"

DDL = [
    # a marked day's repairs are re-read by settlement day (by the worker, and by the statistics
    # until the worker has run): without this index each such read scans every repair
    "CREATE INDEX repair_record_settle ON repair_record (settle_date)",
    """CREATE TABLE stat_dirty (
        day date NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id(), PRIMARY KEY (day, xid))""",
    """CREATE FUNCTION stat_mark(VARIADIC days date[]) RETURNS void LANGUAGE sql AS $$
        INSERT INTO stat_dirty (day) SELECT DISTINCT d FROM unnest(days) d WHERE d IS NOT NULL
        ON CONFLICT DO NOTHING $$""",
    """CREATE FUNCTION stat_mark_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN PERFORM stat_mark(OLD.settle_date); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM stat_mark(NEW.settle_date); END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION stat_mark_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN PERFORM stat_mark(OLD.settle_date, {DAY.format("OLD.received_at")}); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM stat_mark(NEW.settle_date, {DAY.format("NEW.received_at")}); END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION stat_mark_rating() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN PERFORM stat_mark({DAY.format("OLD.created_at")}); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM stat_mark({DAY.format("NEW.created_at")}); END IF;
        RETURN NULL;
    END $$""",
    # a car's brand is looked up when aggregating: a new or changed brand changes its repairs' days
    """CREATE FUNCTION stat_mark_vehicle() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' OR OLD.brand IS DISTINCT FROM NEW.brand THEN
            PERFORM stat_mark(VARIADIC ARRAY(
                SELECT DISTINCT settle_date FROM repair_record WHERE vin = NEW.vin));
        END IF;
        RETURN NULL;
    END $$""",
    # rows by county take the enterprise's county when aggregated: a move changes all its days (rare)
    f"""CREATE FUNCTION stat_mark_enterprise() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.region_code IS DISTINCT FROM NEW.region_code THEN
            PERFORM stat_mark(VARIADIC ARRAY(
                SELECT settle_date FROM repair_record WHERE enterprise_id = NEW.id
                UNION SELECT {DAY.format("received_at")} FROM record_version WHERE enterprise_id = NEW.id
                UNION SELECT {DAY.format("created_at")} FROM rating WHERE enterprise_id = NEW.id));
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER stat_mark AFTER INSERT OR UPDATE OR DELETE ON repair_record
        FOR EACH ROW EXECUTE FUNCTION stat_mark_record()""",
    # on the partitioned table: a row moving partitions fires AFTER DELETE and AFTER INSERT
    """CREATE TRIGGER stat_mark AFTER INSERT OR UPDATE OR DELETE ON record_version
        FOR EACH ROW EXECUTE FUNCTION stat_mark_version()""",
    """CREATE TRIGGER stat_mark AFTER INSERT OR UPDATE OR DELETE ON rating
        FOR EACH ROW EXECUTE FUNCTION stat_mark_rating()""",
    """CREATE TRIGGER stat_mark AFTER INSERT OR UPDATE OF brand ON vehicle
        FOR EACH ROW EXECUTE FUNCTION stat_mark_vehicle()""",
    """CREATE TRIGGER stat_mark AFTER UPDATE OF region_code ON enterprise
        FOR EACH ROW EXECUTE FUNCTION stat_mark_enterprise()""",
]
for _name, _keys, _measures in TABLES:
    DDL += [
        f"CREATE TABLE {_name}_day (day date NOT NULL, {_keys}, {_measures})",
        f"CREATE INDEX {_name}_day_day ON {_name}_day (day)",
        f"CREATE TABLE {_name}_month (month date NOT NULL, {_keys}, {_measures})",
        f"CREATE INDEX {_name}_month_month ON {_name}_month (month)",
    ]
DDL.append(
    f"""INSERT INTO stat_dirty (day)
        SELECT settle_date FROM repair_record
        UNION SELECT {DAY.format("received_at")} FROM record_version
        UNION SELECT {DAY.format("created_at")} FROM rating"""
)


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)


def downgrade() -> None:
    for table in ("repair_record", "record_version", "rating", "vehicle", "enterprise"):
        op.execute(f"DROP TRIGGER stat_mark ON {table}")
    for name in ("record", "version", "rating", "vehicle", "enterprise"):
        op.execute(f"DROP FUNCTION stat_mark_{name}()")
    op.execute("DROP FUNCTION stat_mark(date[])")
    for name, _, _ in TABLES:
        op.execute(f"DROP TABLE {name}_day, {name}_month")
    op.execute("DROP TABLE stat_dirty")
    op.execute("DROP INDEX repair_record_settle")
