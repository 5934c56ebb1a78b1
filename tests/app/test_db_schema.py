import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from app.db.grants import DbRoles, apply_grants
from app.db.session import Database
from app.services.aggregates import AGGREGATES
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


def test_the_runtime_role_has_rows_only(database_url):
    """The app's own role (as deployed): no DDL, the audit log append-only by privilege, and
    personal data only through its personal-data group role."""
    rt = sa.create_engine(database_url)
    try:
        for stmt in ("CREATE TABLE public.intruder (id int)", "UPDATE audit.event SET outcome = 'x'",
                     "DELETE FROM audit.event", "ALTER TABLE repair_record ADD COLUMN x int",
                     "DROP TABLE attachment"):
            denied = pytest.raises(sa.exc.ProgrammingError, match=r"permission denied|must be owner")
            with denied, rt.begin() as c:
                c.execute(sa.text(stmt))
        with rt.connect() as c:
            assert c.execute(sa.text("SELECT count(*) >= 0 FROM personal.owner_account")).scalar()
            assert c.execute(sa.text("SELECT pg_has_role(current_user, 'pbox_pii', 'MEMBER')")).scalar()
            assert not c.execute(sa.text("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles"
                                         " WHERE rolname = current_user")).scalar()
            # the worker's statistics refresh (app.services.aggregates) as this role: rows of every
            # aggregate table and of the dirty-day marks, nothing more
            stat_tables = ["stat_dirty"] + [f"{a.name}_{g}" for a in AGGREGATES for g in ("day", "month")]
            for table in stat_tables:
                for priv in ("SELECT", "INSERT", "DELETE"):
                    assert c.execute(sa.text(f"SELECT has_table_privilege('{table}', '{priv}')")).scalar()
                assert not c.execute(sa.text(f"SELECT has_table_privilege('{table}', 'TRUNCATE')")).scalar()
    finally:
        rt.dispose()


def test_grants_are_idempotent_and_their_cli_says_so(app_db):
    assert apply_grants(app_db.owner_url, DbRoles()) is False
    r = subprocess.run([sys.executable, "-m", "app.db.migrate", "--grant"], capture_output=True, text=True,
                       env={**os.environ, "PBOX_DATABASE_URL": app_db.owner_url}, check=False)
    assert (r.returncode, r.stdout.strip()) == (0, "unchanged"), r.stderr


def test_the_runtime_role_creates_missing_partitions(app_db, database_url):
    """The worker runs as the runtime role: a month partition it must add is still made (by the
    owner's function), and the app may write into it."""
    owner = sa.create_engine(app_db.owner_url)
    with owner.begin() as c:
        part = c.execute(
            sa.text("SELECT 'record_version_' || to_char(now() + interval '2 months', 'YYYYMM')")
        ).scalar()
        c.execute(sa.text(f"DROP TABLE {part}"))
    owner.dispose()
    db = Database(database_url, pool_size=1)
    try:
        assert ensure_partitions(db) == 1
        with db.transaction() as s:
            assert s.scalar(sa.text(f"SELECT count(*) FROM {part}")) == 0
            assert s.scalar(sa.text(f"SELECT has_table_privilege('{part}', 'INSERT')"))
    finally:
        db.dispose()
