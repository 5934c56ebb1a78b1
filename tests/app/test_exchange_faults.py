"""Faults between real nodes: duplicate and reordered deliveries, forged and mis-sent messages, a
receiver killed mid-stream, the relay killed, a peer that rejects (dead letters, replay), a message
lost in transit (reconciliation). Afterwards every record is present once wherever it should be."""

import copy
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.app.exchange_helpers import (
    CITY_A,
    LAYOUT,
    MINISTRY,
    PROV_A,
    PROV_B,
    Shop,
    arrives,
    audit_rejections,
    backlog,
    duplicated_versions,
    outbox_rows,
    post_messages,
    query,
    signed,
    versions_of,
)
from tests.support.federation import wait_until


def test_duplicate_and_reordered_deliveries_are_applied_once(fed):
    city = fed.nodes[CITY_A]
    city.stop_worker()
    try:
        shop = Shop(fed, CITY_A, "320102")
        rec = shop.upload("苏A0D001")
        rec["mileage_km"] += 10
        shop.batch([rec])  # version 2
        no = rec["settlement_no"]
        v1, v2 = (signed(fed, CITY_A, r) for r in outbox_rows(fed, CITY_A, shop.uscc, no))
        r = post_messages(fed, CITY_A, PROV_A, [v2, v1, v2])
        assert [x["status"] for x in r.json()["results"]] == ["applied", "applied", "duplicate"], r.text
        r = post_messages(fed, CITY_A, PROV_A, [v1])
        assert r.json()["results"][0]["status"] == "duplicate"
    finally:
        city.start_worker()  # now the relay delivers the same two messages once more
    wait_until(lambda: backlog(fed, CITY_A, PROV_A) == 0, 180, "the city's relay to catch up")
    city_versions = versions_of(fed, CITY_A, shop.uscc, no)
    assert versions_of(fed, PROV_A, shop.uscc, no) == city_versions
    head = query(fed, PROV_A, "SELECT current_version FROM repair_record WHERE settlement_no = :s", s=no)
    assert head[0][0] == 2  # v2 arrived first and stays the current version
    assert arrives(fed, MINISTRY, shop.uscc, no, versions=2) == city_versions
    outcomes = query(
        fed,
        PROV_A,
        "SELECT outcome, count(*) FROM exchange_inbox WHERE msg_key LIKE :k GROUP BY 1",
        k=f"{shop.uscc}/{no}/%",
    )
    assert dict(outcomes) == {"applied": 2}  # repeats of a message id never reach the inbox twice


def test_a_message_failing_verification_is_rejected_logged_and_never_applied(fed):
    city = fed.nodes[CITY_A]
    city.stop_worker()
    try:
        shop = Shop(fed, CITY_A, "320102")
        no = shop.upload("苏A0F001")["settlement_no"]
        (row,) = outbox_rows(fed, CITY_A, shop.uscc, no)
        genuine = signed(fed, CITY_A, row)
        forged = copy.deepcopy(genuine)
        forged["body"]["record"]["content"]["fault_description"] = "篡改的内容"
        r = post_messages(fed, CITY_A, PROV_A, [forged])
        assert r.json()["results"] == [
            {"id": row.message_id, "status": "rejected", "code": "SIGNATURE_INVALID"}
        ]
        # a genuine message, but over another node's connection: the certificate names someone else
        r = post_messages(fed, PROV_B, PROV_A, [genuine])
        assert r.status_code == 403 and r.json()["error"]["code"] == "PEER_UNKNOWN"  # B is no peer of A
        r = post_messages(fed, MINISTRY, PROV_A, [genuine])
        assert r.json()["results"][0]["code"] == "PEER_CERT_MISMATCH"
        r = post_messages(fed, None, PROV_A, [genuine])
        assert r.status_code == 401 and r.json()["error"]["code"] == "PEER_CERT_REQUIRED"
        assert audit_rejections(fed, PROV_A, row.message_id) == ["SIGNATURE_INVALID", "PEER_CERT_MISMATCH"]
        assert versions_of(fed, PROV_A, shop.uscc, no) == []
    finally:
        city.start_worker()
    assert arrives(fed, PROV_A, shop.uscc, no) == versions_of(fed, CITY_A, shop.uscc, no)
    content = query(
        fed, PROV_A, "SELECT fault_description FROM record_version WHERE settlement_no = :s", s=no
    )
    assert content[0][0] == "发动机异响"


def _metric(fed, node: str, name: str, peer: str) -> float:
    with fed.client() as c:
        text = c.get(f"{fed.nodes[node].url}/metrics").text
    line = next(x for x in text.splitlines() if x.startswith(f'{name}{{peer="{peer}"}}'))
    return float(line.split()[-1])


def test_rejected_messages_are_dead_letters_visible_and_replayable(fed):
    prov = fed.nodes[PROV_A]
    other_key = fed.public_key(PROV_B)  # the province has the wrong key for its city
    fed.write_config(prov, peer_keys={CITY_A: other_key})
    prov.stop_web()
    prov.start_web(fed.ca.cert_file)
    try:
        shop = Shop(fed, CITY_A, "320102")
        no = shop.upload("苏A0L001")["settlement_no"]
        key = f"{shop.uscc}/{no}/1"
        wait_until(
            lambda: any(d["msg_key"] == key for d in fed.admin(CITY_A, "GET", "/dead-letters")),
            60,
            "the rejected message among the dead letters",
        )
        (dead,) = [d for d in fed.admin(CITY_A, "GET", f"/dead-letters?peer={PROV_A}") if d["msg_key"] == key]
        assert dead["error_code"] == "SIGNATURE_INVALID"
        assert _metric(fed, CITY_A, "pbox_exchange_dead_letters", PROV_A) >= 1
        assert audit_rejections(fed, PROV_A, dead["message_id"]) == ["SIGNATURE_INVALID"]
        assert versions_of(fed, PROV_A, shop.uscc, no) == []
    finally:
        fed.write_config(prov)
        prov.stop_web()
        prov.start_web(fed.ca.cert_file)
    replayed = fed.admin(CITY_A, "POST", "/dead-letters/replay", json={"peer": PROV_A})
    assert replayed["replayed"] >= 1
    assert arrives(fed, PROV_A, shop.uscc, no) == versions_of(fed, CITY_A, shop.uscc, no)
    assert fed.admin(CITY_A, "GET", f"/dead-letters?peer={PROV_A}") == []
    assert _metric(fed, CITY_A, "pbox_exchange_dead_letters", PROV_A) == 0


def test_receiver_killed_mid_stream_and_relay_restarted_lose_nothing(fed):
    city, prov = fed.nodes[CITY_A], fed.nodes[PROV_A]
    shop = Shop(fed, CITY_A, "320102")
    batches = [[shop_record(i * 10 + j) for j in range(10)] for i in range(8)]
    sent: list[str] = []

    def upload(bs):
        for b in bs:
            shop.batch(b)
            sent.extend(r["settlement_no"] for r in b)

    upload(batches[:2])
    prov.stop_web(kill=True)  # the receiving node dies while the city keeps uploading
    t = threading.Thread(target=upload, args=(batches[2:5],))
    t.start()
    wait_until(
        lambda: (
            query(fed, CITY_A, "SELECT failures FROM exchange_cursor WHERE peer = :p", p=PROV_A)[0][0] >= 2
        ),
        60,
        "the city's relay to retry with backoff",
    )
    city.stop_worker(kill=True)  # and the relay itself dies
    t.join()
    city.start_worker()
    prov.start_web(fed.ca.cert_file)
    upload(batches[5:])
    assert len(sent) == 80
    for node in (PROV_A, MINISTRY):
        wait_until(lambda node=node: _count(fed, node, shop.uscc) == 80, 300, f"80 records at {node}")
        assert _count(fed, node, shop.uscc, distinct=False) == 80
        assert duplicated_versions(fed, node) == []


def shop_record(i: int) -> dict:
    import uuid

    from tests.support.samples import make_record, make_vin

    return make_record(f"JS-K{i:03d}-{uuid.uuid4().hex[:8].upper()}", make_vin(), plate=f"苏A{i:05d}")


def _count(fed, node: str, uscc: str, distinct: bool = True) -> int:
    what = "count(DISTINCT (v.settlement_no, v.version))" if distinct else "count(*)"
    return query(
        fed,
        node,
        f"SELECT {what} FROM record_version v JOIN enterprise e ON e.id = v.enterprise_id WHERE e.uscc = :u",
        u=uscc,
    )[0][0]


def _cli(fed, node: str, *args: str) -> subprocess.CompletedProcess:
    n = fed.nodes[node]
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "pbox"),
            "exchange",
            "reconcile",
            "--url",
            n.url,
            "--cacert",
            str(fed.ca.cert_file),
            *args,
        ],
        env={"PBOX_STAFF_TOKEN": n.token, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reconciliation_finds_a_message_lost_in_transit_and_rerequests_it(fed):
    city = fed.nodes[CITY_A]
    city.stop_worker()
    try:
        shop = Shop(fed, CITY_A, "320102")
        no = shop.upload("苏A0R001")["settlement_no"]
        (row,) = outbox_rows(fed, CITY_A, shop.uscc, no)
        # the relay shipped everything before it and this one "went missing": the cursor is past it
        wait_until(lambda: backlog(fed, CITY_A, PROV_A) == 1, 180, "only the lost message left")
        eng = city.engine()
        with eng.begin() as c:
            c.exec_driver_sql(
                "UPDATE exchange_cursor SET xid = %s::xid8, id = %s WHERE peer = %s",
                (row.xid, row.id, PROV_A),
            )
        eng.dispose()
    finally:
        city.start_worker()
    run = fed.admin(PROV_A, "POST", "/reconcile/run")
    gaps = [d for d in run[CITY_A]["days"] if d["status"] == "gap"]
    assert [(g["missing"], g["rerequested"]) for g in gaps] == [(1, 1)]
    shown = _cli(fed, PROV_A)
    assert shown.returncode == 1 and "gap" in shown.stdout, shown.stdout + shown.stderr
    assert arrives(fed, PROV_A, shop.uscc, no) == versions_of(fed, CITY_A, shop.uscc, no)
    shown = _cli(fed, PROV_A, "--run")
    assert shown.returncode == 0, shown.stdout + shown.stderr


def test_the_relay_survives_losing_its_database_connections(fed):
    dbname = fed.nodes[CITY_A].db_url.rsplit("/", 1)[1]
    killed = query(
        fed,
        PROV_A,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = :d AND pid <> pg_backend_pid()",
        d=dbname,
    )
    assert killed and all(ok for (ok,) in killed)
    shop = Shop(fed, CITY_A, "320102")
    no = shop.upload("苏A0X001")["settlement_no"]
    assert arrives(fed, PROV_A, shop.uscc, no) == versions_of(fed, CITY_A, shop.uscc, no)


def test_after_the_faults_every_node_agrees_with_every_peer(fed):
    # traffic on every link: a Nanjing upload (city → A → ministry), a Nanjing car repaired in
    # Hangzhou (B → ministry → A → city)
    nanjing, hangzhou = Shop(fed, CITY_A, "320102"), Shop(fed, PROV_B, "330100")
    arrives(fed, MINISTRY, nanjing.uscc, nanjing.upload("苏A0Z001")["settlement_no"])
    arrives(fed, CITY_A, hangzhou.uscc, hangzhou.upload("苏A0Z002")["settlement_no"])

    def all_agree() -> bool:
        for name, *_ in LAYOUT:
            result = fed.admin(name, "POST", "/reconcile/run")
            if not all(r["ok"] and all(d["status"] == "ok" for d in r["days"]) for r in result.values()):
                return False
        return True

    wait_until(all_agree, 300, "counts and digests equal between every pair of peers")
    compared = {
        (name, d["peer"]) for name, *_ in LAYOUT for d in fed.admin(name, "GET", "/reconcile")["days"]
    }
    assert compared >= {
        (PROV_A, CITY_A),
        (MINISTRY, PROV_A),
        (MINISTRY, PROV_B),
        (PROV_A, MINISTRY),
        (CITY_A, PROV_A),
    }
    for name, *_ in LAYOUT:
        assert duplicated_versions(fed, name) == []
        with httpx.Client(verify=str(fed.ca.cert_file)) as c:
            assert "pbox_exchange_outbox_oldest_age_seconds" in c.get(f"{fed.nodes[name].url}/metrics").text


def test_old_settled_messages_are_purged_and_a_late_duplicate_still_applies_nothing(fed):
    from sqlalchemy.orm import Session

    from app.exchange.admin import purge

    shop = Shop(fed, CITY_A, "320102")
    no = shop.upload("苏A0P001")["settlement_no"]
    arrives(fed, PROV_A, shop.uscc, no)
    wait_until(lambda: backlog(fed, CITY_A, PROV_A) == 0, 180, "the city's relay to catch up")
    (row,) = outbox_rows(fed, CITY_A, shop.uscc, no)
    late = signed(fed, CITY_A, row)
    for node, table, col in (
        (CITY_A, "exchange_outbox", "created_at"),
        (PROV_A, "exchange_inbox", "received_at"),
    ):
        eng = fed.nodes[node].engine()
        with eng.begin() as c:
            c.exec_driver_sql(
                f"UPDATE {table} SET {col} = now() - interval '40 days' WHERE msg_key LIKE %s",
                (f"{shop.uscc}/{no}/%",),
            )
            with Session(bind=c) as s:
                assert purge(s, 35)[table.removeprefix("exchange_")] >= 1
        eng.dispose()
    assert outbox_rows(fed, CITY_A, shop.uscc, no) == []
    r = post_messages(fed, CITY_A, PROV_A, [late])
    assert r.json()["results"][0]["status"] == "duplicate"  # the record version is held: nothing applied
    assert len(versions_of(fed, PROV_A, shop.uscc, no)) == 1
