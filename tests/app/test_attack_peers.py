"""Attacks by a compromised peer node: its messages are genuinely signed and arrive over its own
mutual-TLS connection, but ask to create, change or withdraw records outside its authority
(docs/exchange.md §4.1). Each is refused, acknowledged as refused (final: the sender dead-letters
it), audited, counted, listed in the admin API and shown by reconciliation; nothing is applied or
relayed onward. Uses the four real nodes of tests/app/exchange_helpers.py."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domain.clock import now
from app.domain.record import digest, parse_record
from app.security.signatures import load_private_pem, new_private_pem
from app.security.signing import Signer
from app.services.outbox import ENTERPRISE_FIELDS, record_body
from tests.app.exchange_helpers import (
    CITY_A,
    MINISTRY,
    PROV_A,
    SIGNING_ALGORITHMS,
    Shop,
    arrives,
    audit_rejections,
    backlog,
    outbox_rows,
    post_messages,
    query,
    versions_of,
)
from tests.support.federation import wait_until
from tests.support.samples import make_enterprise, make_record, make_vin, roster_row


def forge(fed, sender: str, to: str, enterprise: dict, origin: str, record: dict | None = None, **kw) -> dict:
    """A record.version message exactly as `sender`'s relay would sign it: an upload of `record`, or a
    withdrawal (`record=None`, `settlement_no`, `vin` given), at `version`, claiming `origin`."""
    version = kw.get("version", 1)
    if record is not None:
        parsed, errors = parse_record(record, complete=False)
        assert parsed is not None, errors
        row = {
            "settlement_no": parsed.settlement_no,
            "version": version,
            "kind": "upload",
            "digest": digest(parsed),
            "vin": parsed.vehicle.vin,
            "settle_date": parsed.settle_date,
        }
        content = parsed.model_dump(mode="json")
    else:
        row = {
            "settlement_no": kw["settlement_no"],
            "version": version,
            "kind": "withdrawal",
            "digest": f"withdrawn:{version}",
            "vin": kw["vin"],
            "settle_date": now().date(),
            "withdraw_reason": "伪造的撤销",
        }
        content = None
    ent = {f: enterprise.get(f) for f in ENTERPRISE_FIELDS}
    body = record_body(ent, row, content, {"region_code": origin, "node": sender, "at": now().isoformat()})
    msg = {
        "id": str(uuid.uuid4()),
        "kind": "record.version",
        "from": sender,
        "to": to,
        "created_at": now().isoformat(),
        "body": body,
    }
    return Signer.from_file(fed.nodes[sender].signer_file).sign(msg)


def results(fed, sender: str, to: str, messages: list[dict]) -> list[tuple[str, str | None]]:
    r = post_messages(fed, sender, to, messages)
    assert r.status_code == 200, r.text
    return [(x["status"], x.get("code")) for x in r.json()["results"]]


def enterprise_known(fed, node: str, uscc: str) -> bool:
    return bool(query(fed, node, "SELECT 1 FROM enterprise WHERE uscc = :u", u=uscc))


def refused_metric(fed, node: str, peer: str, code: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with fed.client() as c:
        text = c.get(f"{fed.nodes[node].url}/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "pbox_exchange_refused_messages_total" and s.labels == {"peer": peer, "code": code}
    )


@pytest.fixture(scope="module")
def province_shop(fed):
    """A Nanjing shop using the provincial system (the hybrid case): its records are the province's
    own, of an enterprise inside the city's region. A Suzhou car, so nothing goes down to the city."""
    return Shop(fed, PROV_A, "320102")


def test_a_city_node_cannot_overwrite_or_withdraw_a_record_uploaded_at_the_province(fed, province_shop):
    rec = province_shop.upload("苏E1A001")
    no = rec["settlement_no"]
    original = arrives(fed, MINISTRY, province_shop.uscc, no)
    rewritten = {**rec, "fault_description": "伪造：发动机报废", "mileage_km": rec["mileage_km"] + 1}
    overwrite = forge(fed, CITY_A, PROV_A, province_shop.profile, "320100", rewritten, version=2)
    withdraw = forge(
        fed,
        CITY_A,
        PROV_A,
        province_shop.profile,
        "320100",
        None,
        version=2,
        settlement_no=no,
        vin=rec["vehicle"]["vin"],
    )
    assert results(fed, CITY_A, PROV_A, [overwrite, withdraw]) == [
        ("rejected", "RECORD_ORIGIN_HERE"),
        ("rejected", "RECORD_ORIGIN_HERE"),
    ]
    # unchanged, and nothing relayed onward: the province's outbox holds only version 1's message
    assert versions_of(fed, PROV_A, province_shop.uscc, no) == original
    status = query(
        fed, PROV_A, "SELECT status, current_version FROM repair_record WHERE settlement_no = :s", s=no
    )
    assert [tuple(r) for r in status] == [("active", 1)]
    assert [r.peer for r in outbox_rows(fed, PROV_A, province_shop.uscc, no)] == [MINISTRY]
    assert audit_rejections(fed, PROV_A, overwrite["id"]) == ["RECORD_ORIGIN_HERE"]
    # sent again (the sender never saw the answer): refused again, not taken as a duplicate
    assert results(fed, CITY_A, PROV_A, [overwrite]) == [("rejected", "RECORD_ORIGIN_HERE")]
    assert versions_of(fed, MINISTRY, province_shop.uscc, no) == original


def test_a_city_node_cannot_create_or_withdraw_records_of_an_enterprise_outside_its_city(fed):
    suzhou = Shop(fed, PROV_A, "320500")
    held = suzhou.upload("苏E1B002")
    arrives(fed, MINISTRY, suzhou.uscc, held["settlement_no"])
    stranger = {**make_enterprise(), "region_code": "320505"}
    fake = make_record("JS-" + uuid.uuid4().hex[:10].upper(), make_vin(), plate="苏E1B003")
    attempts = [
        # a new record of a Suzhou enterprise, said to be uploaded at the city, or at Suzhou
        forge(fed, CITY_A, PROV_A, stranger, "320100", fake),
        forge(fed, CITY_A, PROV_A, stranger, "320500", fake),
        # the withdrawal of a Suzhou shop's record held at the province
        forge(
            fed,
            CITY_A,
            PROV_A,
            suzhou.profile,
            "320500",
            None,
            version=2,
            settlement_no=held["settlement_no"],
            vin=held["vehicle"]["vin"],
        ),
    ]
    assert results(fed, CITY_A, PROV_A, attempts) == [("rejected", "PEER_OUT_OF_SCOPE")] * 3
    assert not enterprise_known(fed, PROV_A, stranger["uscc"])  # not even the enterprise was created
    assert versions_of(fed, PROV_A, stranger["uscc"], fake["settlement_no"]) == []
    assert len(versions_of(fed, PROV_A, suzhou.uscc, held["settlement_no"])) == 1


def test_the_ministry_cannot_rewrite_a_provinces_records_or_invent_them(fed, province_shop):
    rec = province_shop.upload("苏E1C004")
    no = rec["settlement_no"]
    original = arrives(fed, MINISTRY, province_shop.uscc, no)
    rewritten = {**rec, "fault_description": "伪造：事故车"}
    attempts = [
        # the province's own record, claimed as the province's next version
        forge(fed, MINISTRY, PROV_A, province_shop.profile, "320000", rewritten, version=2),
        # the same, claimed as uploaded in province B: a Nanjing shop is no shop of Zhejiang's
        forge(fed, MINISTRY, PROV_A, province_shop.profile, "330000", rewritten, version=2),
    ]
    assert results(fed, MINISTRY, PROV_A, attempts) == [
        ("rejected", "RECORD_ORIGIN_HERE"),
        ("rejected", "PEER_OUT_OF_SCOPE"),
    ]
    assert versions_of(fed, PROV_A, province_shop.uscc, no) == original


def test_a_peer_cannot_take_over_a_record_held_from_another_origin(fed):
    # a Hangzhou repair of a Nanjing car reaches the city through the ministry and the province
    hangzhou = Shop(fed, "province-330000", "330100")
    rec = hangzhou.upload("苏A1D005")
    no = rec["settlement_no"]
    original = arrives(fed, CITY_A, hangzhou.uscc, no)
    # the province sends a "correction" of it as if the provincial system had uploaded it
    x = forge(fed, PROV_A, CITY_A, hangzhou.profile, "100000", {**rec, "mileage_km": 1}, version=2)
    assert results(fed, PROV_A, CITY_A, [x]) == [("rejected", "RECORD_ORIGIN_CONFLICT")]
    assert versions_of(fed, CITY_A, hangzhou.uscc, no) == original


def test_refused_messages_are_acknowledged_dead_lettered_counted_listed_and_reconciled(fed):
    """A city node whose shop lies outside its city (registered there by mistake, or by an attacker):
    its relay ships the records, the province refuses them; the city does not retry them for ever."""
    before = refused_metric(fed, PROV_A, CITY_A, "PEER_OUT_OF_SCOPE")
    outsider = Shop(fed, CITY_A, "320505")
    no = outsider.upload("苏E1E006")["settlement_no"]
    key = f"{outsider.uscc}/{no}/1"
    try:
        dead = wait_until(
            lambda: [
                d for d in fed.admin(CITY_A, "GET", f"/dead-letters?peer={PROV_A}") if d["msg_key"] == key
            ],
            120,
            "the refused message among the city's dead letters",
        )
        assert dead[0]["error_code"] == "PEER_OUT_OF_SCOPE"
        # acknowledged: the cursor moved past it, no failure, nothing left to send
        assert backlog(fed, CITY_A, PROV_A) == 0
        cursor = query(fed, CITY_A, "SELECT failures FROM exchange_cursor WHERE peer = :p", p=PROV_A)
        assert cursor[0][0] == 0
        assert versions_of(fed, PROV_A, outsider.uscc, no) == []
        # the receiving province: listed, counted, and audited
        (listed,) = [r for r in fed.admin(PROV_A, "GET", f"/refused?peer={CITY_A}") if r["msg_key"] == key]
        assert (listed["code"], listed["enterprise_region"], listed["origin_region"]) == (
            "PEER_OUT_OF_SCOPE",
            "320505",
            "320100",
        )
        (state,) = [s for s in fed.admin(PROV_A, "GET", "")["peers_state"] if s["peer"] == CITY_A]
        assert state["refused"] >= 1
        assert refused_metric(fed, PROV_A, CITY_A, "PEER_OUT_OF_SCOPE") >= before + 1
        assert audit_rejections(fed, PROV_A, listed["message_id"]) == ["PEER_OUT_OF_SCOPE"]
        # reconciliation shows it as refused, and does not ask for it again
        run = fed.admin(PROV_A, "POST", "/reconcile/run")
        refused = [d for d in run[CITY_A]["days"] if d["refused"]]
        assert [(d["status"], d["missing"], d["rerequested"], d["refused"]) for d in refused] == [
            ("refused", 0, 0, 1)
        ]
        shown = [d for d in fed.admin(PROV_A, "GET", "/reconcile")["days"] if d["status"] == "refused"]
        assert shown and shown[0]["peer"] == CITY_A
    finally:
        # leave the federation as the other exchange modules expect it: every pair in agreement
        for node, sql in (
            (CITY_A, "DELETE FROM exchange_outbox WHERE msg_key LIKE :k"),
            (PROV_A, "DELETE FROM exchange_refusal WHERE msg_key LIKE :k"),
            (PROV_A, "DELETE FROM exchange_reconcile WHERE status = 'refused' AND :k = :k"),
        ):
            eng = fed.nodes[node].engine()
            with eng.begin() as c:
                c.execute(sa.text(sql), {"k": f"{outsider.uscc}/%"})
            eng.dispose()


def test_legitimate_flows_still_pass_the_authority_checks(fed):
    """Every route of DESIGN.md §3 (the exchange modules test them in full): a city's own record up,
    another province's repair of a city's car down through the ministry and the province."""
    city_shop, zj = Shop(fed, CITY_A, "320102"), Shop(fed, "province-330000", "330100")
    up = city_shop.upload("苏A1F007")["settlement_no"]
    down = zj.upload("苏A1F008")["settlement_no"]
    assert arrives(fed, MINISTRY, city_shop.uscc, up) == versions_of(fed, CITY_A, city_shop.uscc, up)
    assert arrives(fed, CITY_A, zj.uscc, down) == versions_of(fed, "province-330000", zj.uscc, down)
    for node in (PROV_A, CITY_A, MINISTRY):
        assert not [
            r
            for r in fed.admin(node, "GET", "/refused")
            if (r["msg_key"] or "").startswith((city_shop.uscc, zj.uscc))
        ]


def test_a_city_cannot_report_statistics_of_other_regions_nor_the_ministry_send_any_down(fed):
    def stats(sender: str, to: str) -> dict:
        days = [
            {"day": "2020-01-02", "region_code": code, "records": 999, "detail": {}}
            for code in ("320102", "320502")
        ]
        msg = {
            "id": str(uuid.uuid4()),
            "kind": "statistics.daily",
            "from": sender,
            "to": to,
            "created_at": now().isoformat(),
            "body": {"generated_at": now().isoformat(), "days": days},
        }
        return Signer.from_file(fed.nodes[sender].signer_file).sign(msg)

    city = stats(CITY_A, PROV_A)
    assert results(fed, CITY_A, PROV_A, [city]) == [("applied", None)]  # its own region's row is taken
    rows = query(
        fed, PROV_A, "SELECT sender, region_code FROM exchange_statistics WHERE day = '2020-01-02' ORDER BY 2"
    )
    assert [tuple(r) for r in rows] == [(CITY_A, "320102")]  # Suzhou's figures from Nanjing are not
    (listed,) = [
        r for r in fed.admin(PROV_A, "GET", f"/refused?peer={CITY_A}") if r["message_id"] == city["id"]
    ]
    assert listed["code"] == "PEER_OUT_OF_SCOPE" and "320502" in listed["detail"]
    assert results(fed, MINISTRY, PROV_A, [stats(MINISTRY, PROV_A)]) == [("rejected", "PEER_OUT_OF_SCOPE")]


def test_a_city_node_cannot_file_records_under_another_regions_shop_by_renaming_its_region(fed):
    """The message's enterprise region is what the authority rules check, so a peer must not be able
    to name a real Suzhou shop (held at the province) as one of its own city's, and have its forged
    repair filed under that shop."""
    suzhou = Shop(fed, PROV_A, "320500")
    arrives(fed, MINISTRY, suzhou.uscc, suzhou.upload("苏E1F007")["settlement_no"])
    disguised = {**suzhou.profile, "region_code": "320102"}
    fake = make_record("JS-" + uuid.uuid4().hex[:10].upper(), make_vin(), plate="苏A1F008")
    x = forge(fed, CITY_A, PROV_A, disguised, "320100", fake)
    assert results(fed, CITY_A, PROV_A, [x]) == [("rejected", "ENTERPRISE_CONFLICT")]
    assert versions_of(fed, PROV_A, suzhou.uscc, fake["settlement_no"]) == []
    assert audit_rejections(fed, PROV_A, x["id"]) == ["ENTERPRISE_CONFLICT"]


def test_a_peer_cannot_keep_publishing_for_a_shop_suspended_here(fed):
    """The province's licence roster revokes a Nanjing shop; the city node (which has not heard of it)
    relays the shop's next record: the province refuses it instead of filing it under the suspended shop."""
    nanjing = Shop(fed, PROV_A, "320102")
    fed.nodes[PROV_A].import_roster([roster_row(nanjing.profile, status="吊销")])
    status = query(fed, PROV_A, "SELECT status FROM enterprise WHERE uscc = :u", u=nanjing.uscc)
    assert status[0][0] == "suspended"
    fake = make_record("JS-" + uuid.uuid4().hex[:10].upper(), make_vin(), plate="苏A1G009")
    x = forge(fed, CITY_A, PROV_A, nanjing.profile, "320100", fake)
    assert results(fed, CITY_A, PROV_A, [x]) == [("rejected", "ENTERPRISE_CONFLICT")]
    assert versions_of(fed, PROV_A, nanjing.uscc, fake["settlement_no"]) == []


def test_a_peer_cannot_sign_with_an_algorithm_it_did_not_register_or_this_node_no_longer_accepts(fed):
    """Issue 24. The attacker holds the ministry's TLS key but not its SM2 signing key (in the
    密码机): it signs with an Ed25519 key of its own, as a node still in the migration window would.
    Refused, whatever `sig.alg` it claims. And once province A has ended the Ed25519 window, even the
    city's genuine Ed25519 messages are refused with a code that says why, until it moves to SM2."""
    assert SIGNING_ALGORITHMS[MINISTRY] == "sm2" and SIGNING_ALGORITHMS[CITY_A] == "ed25519"
    stranger = {**make_enterprise(), "region_code": "330100"}
    fake = make_record("ZJ-" + uuid.uuid4().hex[:10].upper(), make_vin(), plate="浙A9C001")
    genuine = forge(fed, MINISTRY, PROV_A, stranger, "330000", fake)
    intruder = Signer(load_private_pem(new_private_pem("ed25519")))
    as_ed25519 = intruder.sign({k: v for k, v in genuine.items() if k != "sig"} | {"id": str(uuid.uuid4())})
    claims_sm2 = {**as_ed25519, "id": str(uuid.uuid4())}
    claims_sm2 = intruder.sign({k: v for k, v in claims_sm2.items() if k != "sig"})
    claims_sm2["sig"]["alg"] = "sm2"
    assert results(fed, MINISTRY, PROV_A, [as_ed25519, claims_sm2]) == [
        ("rejected", "SIGNATURE_ALG_MISMATCH"),
        ("rejected", "SIGNATURE_INVALID"),
    ]
    assert audit_rejections(fed, PROV_A, as_ed25519["id"]) == ["SIGNATURE_ALG_MISMATCH"]
    assert not enterprise_known(fed, PROV_A, stranger["uscc"])

    prov = fed.nodes[PROV_A]
    ended = (now().date() - timedelta(days=1)).isoformat()
    fed.write_config(prov, exchange={"ed25519_refused_from": ended})
    prov.stop_web()
    prov.start_web(fed.ca.cert_file)
    try:
        nanjing = {**make_enterprise(), "region_code": "320102"}
        record = make_record("JS-" + uuid.uuid4().hex[:10].upper(), make_vin(), plate="苏A9C002")
        from_city = forge(fed, CITY_A, PROV_A, nanjing, "320100", record)  # genuinely signed, Ed25519
        assert results(fed, CITY_A, PROV_A, [from_city]) == [("rejected", "SIGNATURE_ALG_NOT_ALLOWED")]
        assert audit_rejections(fed, PROV_A, from_city["id"]) == ["SIGNATURE_ALG_NOT_ALLOWED"]
        assert not enterprise_known(fed, PROV_A, nanjing["uscc"])
        # (That SM2 peers are still heard is shown by the federation's SM2 nodes in every exchange test:
        # applying `genuine` here left a record the ministry never had, and test_exchange_faults'
        # reconciliation then found province A out of agreement with it.)
    finally:
        fed.write_config(prov)
        prov.stop_web()
        prov.start_web(fed.ca.cert_file)
