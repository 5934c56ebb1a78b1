"""What the app's database roles may do: the one source of the grant SQL.

The owner role runs the migrations and owns every object; the runtime role (app-web, app-worker)
reads and writes rows and nothing more — no DDL, the audit log appended only through
audit.append_event (at the chain's head, migration 0011), never written directly; the personal-data
schema is reachable only through the `pii` group role, which the runtime role is a member of.
The deployment applies this as the owner after each migration (`python -m app.db.migrate --grant`,
from the app role), and the app tests do the same before running the app as the runtime role, so
a grant missing here fails the tests. Creating the roles themselves (and the membership) needs a
superuser and is the postgresql role's job (the test fixtures do it on their private cluster).
"""

import re
from dataclasses import dataclass

import sqlalchemy as sa

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
AUDIT_APPEND = (
    "audit.append_event(bigint, timestamptz, varchar, varchar, varchar, varchar, varchar, jsonb,"
    " varchar, varchar, varchar, varchar, varchar)"
)


@dataclass(frozen=True)
class DbRoles:
    owner: str = "pbox_owner"
    runtime: str = "pbox_app"
    pii: str = "pbox_pii"

    def __post_init__(self) -> None:
        for name in (self.owner, self.runtime, self.pii):
            if not _NAME.match(name):
                raise ValueError(f"not a plain role name: {name!r}")


def grant_statements(database: str, roles: DbRoles) -> list[str]:
    """GRANTs (idempotent) run by the owner role on its database after migrating it."""
    if not _NAME.match(database):
        raise ValueError(f"not a plain database name: {database!r}")
    app, pii = roles.runtime, roles.pii
    dml = "SELECT, INSERT, UPDATE, DELETE"
    return [
        # Only the app's roles connect (the owner does as the database's owner).
        f"REVOKE CONNECT ON DATABASE {database} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {database} TO {app}",
        # Core tables: rows only. Partitions the owner creates later get the same (default privileges).
        f"GRANT USAGE ON SCHEMA public TO {app}",
        f"GRANT {dml} ON ALL TABLES IN SCHEMA public TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {app}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {dml} ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO {app}",
        # The audit log: read, and append only through the definer function that checks the row follows
        # the head; never change (its triggers refuse that even to the owner). INSERT is revoked from
        # databases granted before 0011.
        f"GRANT USAGE ON SCHEMA audit TO {app}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA audit TO {app}",
        f"REVOKE INSERT ON ALL TABLES IN SCHEMA audit FROM {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA audit TO {app}",
        f"GRANT EXECUTE ON FUNCTION {AUDIT_APPEND} TO {app}",
        # Personal data: the pii group role only.
        f"GRANT USAGE ON SCHEMA personal TO {pii}",
        f"GRANT {dml} ON ALL TABLES IN SCHEMA personal TO {pii}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA personal TO {pii}",
    ]


# Every ACL the statements above can change, as one digest: equal before and after = unchanged.
_ACLS = """
SELECT md5(coalesce(string_agg(x, ';' ORDER BY x), '')) FROM (
    SELECT 'db ' || coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database()
    UNION ALL SELECT 'ns ' || nspname || coalesce(nspacl::text, '') FROM pg_namespace
    UNION ALL SELECT 'rel ' || c.oid::regclass::text || coalesce(c.relacl::text, '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'audit', 'personal')
    UNION ALL SELECT 'fn ' || p.oid::regprocedure::text || coalesce(p.proacl::text, '')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('public', 'audit', 'personal')
    UNION ALL SELECT 'def ' || defaclrole::regrole::text || defaclnamespace::text || defaclobjtype::text
            || defaclacl::text
        FROM pg_default_acl
) acl(x)
"""


def apply_grants(url: str, roles: DbRoles) -> bool:
    """Apply the grants as the role of `url` (the owner); True if any privilege changed."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            before = conn.execute(sa.text(_ACLS)).scalar_one()
            database = conn.execute(sa.text("SELECT current_database()")).scalar_one()
            for stmt in grant_statements(database, roles):
                conn.execute(sa.text(stmt))
            return conn.execute(sa.text(_ACLS)).scalar_one() != before
    finally:
        engine.dispose()
