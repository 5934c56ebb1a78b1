"""Attacks on the audit log (issue 15 point 7): the runtime role adding events, the owner role
rewriting them past the triggers (with or without knowing the old plain-hash scheme), and someone
holding the key rewriting the chain; `pbox audit verify-log` (with the key and the log host's
anchors) and `app-admin audit verify-log` must report each."""

import hashlib
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db.session import Database
from app.security.auditlog import GENESIS, AuditLog, Event, key_from_secret_file, row_hash
from app.worker import anchor_audit_chain
from tests.app.conftest import migrated_database
from tests.app.test_processes import env_for

KEY = bytes.fromhex(secrets.token_hex(32))
VIN = "LSVAM4187C2184847"


@pytest.fixture
def chain_db(pg):
    """A database of its own with a keyed chain, as a node writes it: boundary row, then 5 events."""
    app_db = migrated_database(pg, "chain_" + uuid.uuid4().hex[:8])
    db = Database(app_db.runtime_url, pool_size=1)
    try:
        for n in range(5):
            with db.transaction() as s:
                AuditLog("sha256", KEY).record(s, Event("owner", str(n), "vehicle_history", VIN))
    finally:
        db.dispose()
    return app_db


def verify_log(url: str, *args: str, key: bytes | None = KEY, stdin: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "PBOX_AUDIT_KEY"}
    if key is not None:
        env["PBOX_AUDIT_KEY"] = key.hex()
    return subprocess.run(
        [str(Path(sys.executable).parent / "pbox"), "audit", "verify-log", "--database-url", url, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        input=stdin,
    )


def rows(conn, from_seq: int = 1):
    return conn.execute(
        sa.text(
            "SELECT seq, at, actor_kind, actor_id, action, subject, outcome, detail, request_id,"
            " client_ip, alg, prev_hash, hash FROM audit.event WHERE seq >= :s ORDER BY seq"
        ),
        {"s": from_seq},
    ).all()


def event_of(r) -> Event:
    return Event(
        r.actor_kind, r.actor_id, r.action, r.subject, r.outcome, r.detail, r.request_id, r.client_ip
    )


def rewrite(
    owner_url: str, seq: int, actor_id: str, alg: str, key: bytes | None, from_seq: int | None = None
):
    """As the owner role: triggers off, one event changed, every hash from `from_seq` on recomputed with
    `alg` (and `key`), triggers on again: what the owner can do without a superuser."""
    eng = sa.create_engine(owner_url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit.event DISABLE TRIGGER USER"))
            conn.execute(
                sa.text("UPDATE audit.event SET actor_id = :a WHERE seq = :s"), {"a": actor_id, "s": seq}
            )
            start = from_seq or seq
            prev = conn.execute(
                sa.text("SELECT hash FROM audit.event WHERE seq = :s"), {"s": start - 1}
            ).scalar()
            prev = prev or GENESIS
            for r in rows(conn, start):
                h = row_hash(alg, r.seq, r.at, prev, event_of(r), key)
                conn.execute(
                    sa.text("UPDATE audit.event SET alg = :alg, prev_hash = :p, hash = :h WHERE seq = :s"),
                    {"alg": alg, "p": prev, "h": h, "s": r.seq},
                )
                prev = h
            conn.execute(sa.text("ALTER TABLE audit.event ENABLE TRIGGER USER"))
    finally:
        eng.dispose()


def test_the_keyed_chain_verifies_and_needs_its_key(chain_db):
    ok = verify_log(chain_db.superuser_url)
    assert ok.returncode == 0 and "6 rows" in ok.stdout, ok.stdout + ok.stderr  # boundary + 5 events
    wrong = verify_log(chain_db.superuser_url, key=bytes(32))
    assert wrong.returncode == 1 and "seq 1" in wrong.stderr, wrong.stdout + wrong.stderr
    none = verify_log(chain_db.superuser_url, key=None)
    assert none.returncode == 2 and "audit key" in none.stderr, none.stdout + none.stderr


def test_the_key_comes_from_the_controllers_secret_file(chain_db, tmp_path):
    secret = "Zq8" * 10 + "xy"  # the shape roles/app generates: 32 letters and digits
    assert key_from_secret_file(secret + "\n") == hashlib.sha256(secret.encode()).digest()  # as app.env
    hex_file = tmp_path / "audit.hex"
    hex_file.write_text(KEY.hex() + "\n")
    ok = verify_log(chain_db.superuser_url, "--audit-key-file", str(hex_file), key=None)
    assert ok.returncode == 0 and "6 rows" in ok.stdout, ok.stdout + ok.stderr
    (tmp_path / "wrong").write_text(secret)
    bad = verify_log(chain_db.superuser_url, "--audit-key-file", str(tmp_path / "wrong"), key=None)
    assert bad.returncode == 1, bad.stdout + bad.stderr


def test_runtime_role_cannot_add_a_forged_event_unnoticed(chain_db):
    eng = sa.create_engine(chain_db.runtime_url)
    try:
        with eng.connect() as conn:
            head = rows(conn)[-1]
        forged = Event("staff", "1", "staff.login", "staff:1")
        at = head.at
        plain = row_hash("sha256", head.seq + 1, at, head.hash, forged)
        values = {
            "seq": head.seq + 1,
            "at": at,
            "k": forged.actor_kind,
            "a": forged.actor_id,
            "act": forged.action,
            "s": forged.subject,
            "prev": head.hash,
        }
        # straight into the table: no longer allowed to the runtime role at all
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), eng.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO audit.event (seq, at, actor_kind, actor_id, action, subject, outcome,"
                    " detail, alg, prev_hash, hash)"
                    " VALUES (:seq, :at, :k, :a, :act, :s, 'success', '{}', 'sha256', :prev, :h)"
                ),
                {**values, "h": plain},
            )
        append = sa.text(
            "SELECT audit.append_event(:seq, :at, :k, :a, :act, :s, 'success', '{}', NULL, NULL,"
            " :alg, :prev, :h)"
        )
        # through the append function: a plain-hash row after the keyed boundary is refused
        with pytest.raises(sa.exc.DBAPIError, match="chain is keyed"), eng.begin() as conn:
            conn.execute(append, {**values, "alg": "sha256", "h": plain})
        # so is a row that does not follow the head (inserted in the past, or forking the chain)
        with pytest.raises(sa.exc.DBAPIError, match="follow the head"), eng.begin() as conn:
            conn.execute(append, {**values, "seq": 3, "alg": "hmac-sha256", "h": plain})
        # a row with a MAC under any key but the node's is stored, and reported
        guessed = row_hash("hmac-sha256", head.seq + 1, at, head.hash, forged, bytes(32))
        with eng.begin() as conn:
            conn.execute(append, {**values, "alg": "hmac-sha256", "h": guessed})
    finally:
        eng.dispose()
    bad = verify_log(chain_db.superuser_url)
    assert bad.returncode == 1 and f"seq {head.seq + 1}" in bad.stderr, bad.stdout + bad.stderr


@pytest.mark.parametrize(
    ("alg", "key", "from_seq"),
    [
        ("sha256", None, None),  # the old plain-hash scheme, re-hashed from the edited row on
        ("sha256", None, 1),  # the whole chain back to plain hashes, boundary row included
        ("sm3", None, None),
        ("hmac-sha256", bytes(32), None),  # a keyed chain under a key of the attacker's own
    ],
)
def test_owner_role_cannot_rewrite_and_rehash_unnoticed(chain_db, alg, key, from_seq):
    rewrite(chain_db.owner_url, 4, "someone-else", alg, key, from_seq)
    eng = sa.create_engine(chain_db.owner_url)
    with eng.connect() as conn:
        assert rows(conn)[3].actor_id == "someone-else"  # the owner did get past the triggers
    eng.dispose()
    bad = verify_log(chain_db.superuser_url)
    assert bad.returncode == 1 and "audit log broken" in bad.stderr, bad.stdout + bad.stderr
    if from_seq is None:
        assert "seq 4" in bad.stderr, bad.stderr


def anchor_file(tmp_path, chain_db, node: str = "province-320000") -> Path:
    """One anchor as app-worker writes it, stored as the log host's rsyslog writes its file."""
    db = Database(chain_db.runtime_url, pool_size=1)
    sent: list[str] = []
    try:
        anchor_audit_chain(db, AuditLog("sha256", KEY), node, emit=sent.append)
    finally:
        db.dispose()
    path = tmp_path / "pbox-audit-anchors.log"
    path.write_text("".join(f"2026-12-07T08:00:00+08:00 app1 pbox-audit-anchor[4242]: {m}\n" for m in sent))
    return path


def test_a_key_holder_rewriting_the_chain_is_caught_by_an_earlier_anchor(chain_db, tmp_path):
    anchors = anchor_file(tmp_path, chain_db)
    ok = verify_log(chain_db.superuser_url, "--anchors", str(anchors))
    assert ok.returncode == 0 and "anchors match" in ok.stdout, ok.stdout + ok.stderr

    rewrite(chain_db.owner_url, 3, "someone-else", "hmac-sha256", KEY)  # with the real key
    assert verify_log(chain_db.superuser_url).returncode == 0  # the chain alone cannot tell
    bad = verify_log(chain_db.superuser_url, "--anchors", str(anchors))
    assert bad.returncode == 1 and "differs from an anchor at seq 6" in bad.stderr, bad.stdout + bad.stderr


def test_a_deleted_tail_is_caught_by_an_earlier_anchor(chain_db, tmp_path):
    anchors = anchor_file(tmp_path, chain_db)
    eng = sa.create_engine(chain_db.owner_url)
    with eng.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit.event DISABLE TRIGGER USER"))
        conn.execute(sa.text("DELETE FROM audit.event WHERE seq >= 5"))
        conn.execute(sa.text("ALTER TABLE audit.event ENABLE TRIGGER USER"))
    eng.dispose()
    bad = verify_log(chain_db.superuser_url, "--anchors", str(anchors))
    assert bad.returncode == 1 and "seq 6" in bad.stderr and "删除" in bad.stderr, bad.stdout + bad.stderr


def test_rows_from_before_the_key_stay_verifiable(pg):
    app_db = migrated_database(pg, "chain_" + uuid.uuid4().hex[:8])
    db = Database(app_db.runtime_url, pool_size=1)
    try:
        with db.transaction() as s:  # an upgraded node: plain-hash rows written before the key
            AuditLog("sm3").record(s, Event("owner", "1", "vehicle_history", VIN))
            AuditLog("sha256").record(s, Event("owner", "2", "vehicle_history", VIN))
        assert verify_log(app_db.superuser_url).returncode == 1  # with the key, the head must be keyed
        with db.transaction() as s:
            AuditLog("sm3", KEY).record(s, Event("owner", "3", "vehicle_history", VIN))
        with db.transaction() as s:
            marks = s.execute(sa.text("SELECT seq, alg, action FROM audit.event ORDER BY seq")).all()
    finally:
        db.dispose()
    assert [tuple(m) for m in marks] == [
        (1, "sm3", "vehicle_history"),
        (2, "sha256", "vehicle_history"),
        (3, "hmac-sm3", "audit.chain_keyed"),
        (4, "hmac-sm3", "vehicle_history"),
    ]
    ok = verify_log(app_db.superuser_url)
    assert ok.returncode == 0 and "4 rows" in ok.stdout, ok.stdout + ok.stderr


def test_node_command_verifies_with_the_nodes_key_and_anchors(chain_db, settings, tmp_path):
    anchors = anchor_file(tmp_path, chain_db, node="province-320000")
    node = settings.model_copy(update={"database_url": chain_db.runtime_url})
    env = {**env_for(node), "PBOX_AUDIT_KEY": KEY.hex()}

    def app_admin(stdin: str):
        return subprocess.run(
            [sys.executable, "-m", "app.admin", "audit", "verify-log", "--anchors", "-"],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    ok = app_admin(anchors.read_text())
    assert ok.returncode == 0 and "anchors match: 1" in ok.stdout, ok.stdout + ok.stderr
    rewrite(chain_db.owner_url, 2, "someone-else", "hmac-sha256", KEY)
    bad = app_admin(anchors.read_text())
    assert bad.returncode == 1 and "anchor at seq 6" in bad.stderr, bad.stdout + bad.stderr
