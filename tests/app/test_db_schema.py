import json

import sqlalchemy as sa

from app.db.session import Database
from app.worker import ensure_partitions


def test_reference_data_loaded_by_the_migration(engine):
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM region WHERE code = '320100'")).scalar() == "南京市"
        assert (
            conn.execute(sa.text("SELECT parent_code FROM region WHERE code = '320102'")).scalar() == "320100"
        )
        assert (
            conn.execute(
                sa.text("SELECT name FROM code_entry WHERE table_name = 'repair_type' AND code = '32'")
            ).scalar()
            == "二级维护"
        )
        assert (
            conn.execute(sa.text("SELECT region_code FROM plate_prefix WHERE prefix = '苏A'")).scalar()
            == "320100"
        )


def test_records_are_partitioned_by_month(engine):
    with engine.connect() as conn:
        strategy = conn.execute(
            sa.text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'record_version'::regclass")
        ).scalar()
        parts = (
            conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'record_version'::regclass"
                )
            )
            .scalars()
            .all()
        )
        in_default = conn.execute(sa.text("SELECT count(*) FROM record_version_default")).scalar()
    assert strategy == "r"
    assert "record_version_default" in parts and len(parts) >= 28
    assert in_default == 0  # every upload so far landed in its month's partition


def test_worker_creates_partitions_ahead_idempotently(database_url):
    db = Database(database_url, pool_size=1)
    try:
        ensure_partitions(db)
        assert ensure_partitions(db) == 0
    finally:
        db.dispose()


def _plan(conn, sql, **params):
    conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
    rows = conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + sql), params).scalar()
    return json.dumps(rows)


def test_hot_paths_use_their_indexes(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
        history = _plan(conn, "SELECT id FROM repair_record WHERE vin = :v ORDER BY settle_date DESC", v="X")
        uploads = _plan(
            conn,
            "SELECT record_id FROM record_version WHERE enterprise_id = 1 "
            "AND received_at >= now() - interval '1 day'",
        )
    assert "repair_record_vin" in history
    assert "record_version_" in uploads and "enterprise" in uploads
    assert "Seq Scan" not in uploads
