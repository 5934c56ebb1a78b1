from datetime import UTC, datetime, timedelta

import pytest

from app.db.models import AuditEvent
from app.security.auditlog import GENESIS, Event, digest, row_hash, verify_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n, alg="sha256"):
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = Event("owner", str(seq), "vehicle_history", "VIN", detail={"k": "v"})
        at = T0 + timedelta(seconds=seq)
        h = row_hash(alg, seq, at, prev, e)
        rows.append(AuditEvent(seq=seq, at=at, alg=alg, prev_hash=prev, hash=h, **e.__dict__))
        prev = h
    return rows


@pytest.mark.parametrize("alg", ["sha256", "sm3"])
def test_an_intact_chain_verifies(alg):
    rows = chain(5, alg)
    report = verify_rows(rows)
    assert report.ok and report.checked == 5 and report.head == rows[-1].hash


def test_the_hashes_are_the_named_algorithms():
    assert digest("sha256", b"abc").startswith("ba7816bf")
    assert digest("sm3", b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    with pytest.raises(ValueError):
        digest("md5", b"abc")


def test_an_edited_row_is_named():
    rows = chain(5)
    rows[2].detail = {"k": "other"}
    report = verify_rows(rows)
    assert (report.broken_seq, report.checked) == (3, 2) and "改动" in (report.reason or "")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_row():
    rows = chain(5)
    rows[2].actor_id = "99"
    e = Event("owner", "99", "vehicle_history", "VIN", detail={"k": "v"})
    rows[2].hash = row_hash("sha256", 3, rows[2].at, rows[2].prev_hash, e)
    assert verify_rows(rows).broken_seq == 4


def test_a_deleted_row_is_named():
    rows = chain(5)
    del rows[1]
    assert verify_rows(rows).broken_seq == 2


def test_the_time_zone_of_the_timestamp_does_not_matter():
    rows = chain(2)
    rows[0].at = rows[0].at.astimezone(datetime.now().astimezone().tzinfo)
    assert verify_rows(rows).ok
