"""The audit chain keyed and appended only at its head, through a definer function.

`alg` widens to hold the keyed algorithms (`hmac-sha256`, `hmac-sm3`); existing rows keep theirs and
stay verifiable. The MAC needs the audit key, which never enters the database, so the app computes
the row; audit.append_event (SECURITY DEFINER, owned by the owner role) is then the runtime role's
only way in (app/db/grants.py takes its INSERT away): it serialises on the chain's advisory lock and
accepts a row only if it follows the current head (next seq, that head's hash) and, once the chain is
keyed, only a keyed row. So the runtime role can no longer insert rows out of order or fork the
chain, nor append a plain-hash row after the keyed boundary; the key (outside) makes what it does
append unforgeable by anyone without it.

Revision ID: 0011
Revises: 0006
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# app.security.auditlog._LOCK_KEY ("pboxaudt"): the same lock the app takes before reading the head
LOCK_KEY = 8098157642787415156
SIGNATURE = (
    "audit.append_event(bigint, timestamptz, varchar, varchar, varchar, varchar, varchar, jsonb,"
    " varchar, varchar, varchar, varchar, varchar)"
)

APPEND = f"""
CREATE FUNCTION audit.append_event(
    p_seq bigint, p_at timestamptz, p_actor_kind varchar, p_actor_id varchar, p_action varchar,
    p_subject varchar, p_outcome varchar, p_detail jsonb, p_request_id varchar, p_client_ip varchar,
    p_alg varchar, p_prev_hash varchar, p_hash varchar) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head_seq bigint;
    head_hash varchar;
    head_alg varchar;
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    SELECT seq, hash, alg INTO head_seq, head_hash, head_alg FROM audit.event ORDER BY seq DESC LIMIT 1;
    IF p_seq IS DISTINCT FROM coalesce(head_seq, 0) + 1
            OR p_prev_hash IS DISTINCT FROM coalesce(head_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'audit.event: a new row must follow the head (seq %, given %)',
            coalesce(head_seq, 0), p_seq USING ERRCODE = 'check_violation';
    END IF;
    IF p_alg NOT IN ('sha256', 'sm3', 'hmac-sha256', 'hmac-sm3') OR p_hash !~ '^[0-9a-f]{{64}}$' THEN
        RAISE EXCEPTION 'audit.event: unknown algorithm or malformed hash' USING ERRCODE = 'check_violation';
    END IF;
    IF head_alg LIKE 'hmac-%' AND p_alg NOT LIKE 'hmac-%' THEN
        RAISE EXCEPTION 'audit.event: the chain is keyed; a row without the key is refused'
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO audit.event (seq, at, actor_kind, actor_id, action, subject, outcome, detail, request_id,
                             client_ip, alg, prev_hash, hash)
    VALUES (p_seq, p_at, p_actor_kind, p_actor_id, p_action, p_subject, p_outcome, p_detail, p_request_id,
            p_client_ip, p_alg, p_prev_hash, p_hash);
END $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE audit.event ALTER COLUMN alg TYPE varchar(16)")
    op.execute(APPEND)
    op.execute(f"REVOKE EXECUTE ON FUNCTION {SIGNATURE} FROM PUBLIC")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    # keyed rows (longer alg names) make the narrowing fail: a keyed chain cannot go back
    op.execute("ALTER TABLE audit.event ALTER COLUMN alg TYPE varchar(8)")
