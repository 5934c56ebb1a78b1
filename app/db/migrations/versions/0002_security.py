"""Security baseline: encrypted owner fields, history grants, staff accounts and sessions, chained audit log.

Owners' phone and name move to ciphertext with keyed search hashes (existing rows are encrypted with
the configured field key, so PBOX_FIELD_KEY or PBOX_FIELD_KEY_FILE must be set when there are any);
the reads logged so far in audit.read_log become the first links of the chained audit.event.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from app.security.auditlog import GENESIS, Event, row_hash

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DDL = [
    """ALTER TABLE personal.owner_account
        ADD COLUMN phone_hash bytea, ADD COLUMN phone_enc bytea, ADD COLUMN name_enc bytea,
        ADD COLUMN id_number_hash bytea UNIQUE, ADD COLUMN id_number_enc bytea""",
    """CREATE TABLE personal.history_grant (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES personal.owner_account, vin varchar(17) NOT NULL,
        enterprise_id bigint NOT NULL REFERENCES enterprise, created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL, revoked_at timestamptz)""",
    "CREATE INDEX history_grant_lookup ON personal.history_grant (vin, enterprise_id, expires_at)",
    """CREATE TABLE staff_account (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, username varchar(40) NOT NULL UNIQUE,
        display_name varchar(50), password_hash text NOT NULL,
        password_changed_at timestamptz NOT NULL DEFAULT now(), totp_enc bytea NOT NULL,
        totp_last_step bigint NOT NULL DEFAULT 0, role varchar(20), region_code varchar(6) REFERENCES region,
        failed_logins int NOT NULL DEFAULT 0, locked_until timestamptz, disabled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK (role IS NULL OR role IN ('regulator', 'system_admin', 'security_admin', 'audit_admin')),
        CHECK ((role = 'regulator') = (region_code IS NOT NULL)))""",
    """CREATE TABLE staff_session (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, token_hash bytea NOT NULL UNIQUE,
        staff_id bigint NOT NULL REFERENCES staff_account, created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(), revoked_at timestamptz)""",
    "CREATE INDEX staff_session_staff ON staff_session (staff_id)",
    """CREATE TABLE audit.event (
        seq bigint PRIMARY KEY, at timestamptz NOT NULL, actor_kind varchar(20) NOT NULL,
        actor_id varchar(60) NOT NULL, action varchar(40) NOT NULL, subject varchar(60) NOT NULL,
        outcome varchar(10) NOT NULL, detail jsonb NOT NULL DEFAULT '{}', request_id varchar(40),
        client_ip varchar(45), alg varchar(8) NOT NULL, prev_hash varchar(64) NOT NULL,
        hash varchar(64) NOT NULL)""",
    "CREATE INDEX event_subject ON audit.event (subject, at)",
    "CREATE INDEX event_actor ON audit.event (actor_kind, actor_id, at)",
    # Append-only for everyone, the table owner included: the trigger fires for the owner too.
    """CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit.event is append-only' USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON audit.event
        FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()""",
    """CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON audit.event
        FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()""",
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit.event FROM PUBLIC",
]


def _encrypt_owners(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT id, phone, display_name FROM personal.owner_account")).all()
    if not rows:
        return
    from app.runtime import field_cipher  # only when there is data: it needs the key
    from app.settings import get_settings

    cipher = field_cipher(get_settings())
    for owner_id, phone, name in rows:
        conn.execute(
            sa.text(
                "UPDATE personal.owner_account SET phone_hash = :h, phone_enc = :p, name_enc = :n"
                " WHERE id = :i"
            ),
            {
                "h": cipher.search_hash("owner.phone", phone),
                "p": cipher.encrypt("owner.phone", phone),
                "n": cipher.encrypt("owner.name", name) if name else None,
                "i": owner_id,
            },
        )


def _chain_read_log(conn: sa.Connection) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT at, actor_kind, actor_id, action, subject, request_id FROM audit.read_log ORDER BY id"
        )
    ).all()
    prev = GENESIS
    for seq, (at, kind, actor, action, subject, rid) in enumerate(rows, start=1):
        e = Event(kind, actor, action, subject, request_id=rid)
        h = row_hash("sha256", seq, at, prev, e)
        conn.execute(
            sa.text(
                "INSERT INTO audit.event (seq, at, actor_kind, actor_id, action, subject, outcome, detail,"
                " request_id, alg, prev_hash, hash) VALUES (:seq, :at, :k, :a, :act, :s, 'success', '{}',"
                " :rid, 'sha256', :prev, :h)"
            ),
            {
                "seq": seq,
                "at": at,
                "k": kind,
                "a": actor,
                "act": action,
                "s": subject,
                "rid": rid,
                "prev": prev,
                "h": h,
            },
        )
        prev = h


def upgrade() -> None:
    for stmt in DDL:
        op.execute(stmt)
    conn = op.get_bind()
    _encrypt_owners(conn)
    _chain_read_log(conn)
    op.execute(
        """ALTER TABLE personal.owner_account DROP COLUMN phone, DROP COLUMN display_name,
            ALTER COLUMN phone_hash SET NOT NULL, ALTER COLUMN phone_enc SET NOT NULL,
            ADD CONSTRAINT owner_account_phone_hash_key UNIQUE (phone_hash)"""
    )
    op.execute("DROP TABLE audit.read_log")


def downgrade() -> None:
    # Going back would mean writing owners' personal data out in clear text and dropping the
    # audit chain: neither may be done by a schema tool.
    raise RuntimeError("0002 cannot be downgraded: restore the pre-upgrade backup instead")
