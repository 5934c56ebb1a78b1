import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.support.samples import make_enterprise, make_record, make_vin

RECORDS = "/api/v1/collection/records"


def count(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_upload_one_record_then_read_it_back(shop, vin, settlement_no):
    r = shop.upload(make_record(settlement_no, vin, items=8, parts=8))
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["status"] == "accepted" and res["outcome"] == "created" and res["version"] == 1
    assert len(res["query_code"]) == 10
    got = shop.client.get(f"{RECORDS}/{res['record_id']}", headers=shop.headers).json()
    assert got["vin"] == vin and got["current_version"] == 1 and got["query_code"] == res["query_code"]
    assert len(got["latest"]["items"]) == 8 and len(got["latest"]["parts"]) == 8
    found = shop.client.get(RECORDS, params={"settlement_no": settlement_no}, headers=shop.headers).json()
    assert found["record_id"] == res["record_id"]


@pytest.mark.parametrize(
    ("mutate", "field", "code"),
    [
        (lambda r: r["vehicle"].update(vin="LSVAM4188C2184847"), "vehicle.vin", "VIN_CHECK_DIGIT"),
        (lambda r: r["vehicle"].update(vin="LSVAM4187C218484O"), "vehicle.vin", "VIN_CHARSET"),
        (lambda r: r["vehicle"].update(plate_no="苏A1234"), "vehicle.plate_no", "PLATE_FORMAT"),
        (
            lambda r: r.update(settle_date=(date.today() + timedelta(days=3)).isoformat()),
            "settle_date",
            "DATE_IN_FUTURE",
        ),
        (
            lambda r: r.update(repair_date=r["settle_date"], settle_date=r["repair_date"]),
            "settle_date",
            "SETTLE_BEFORE_REPAIR",
        ),
        (lambda r: r.update(repair_date="20240101"), "repair_date", "DATE_FORMAT"),
        (lambda r: r.update(mileage_km=-1), "mileage_km", "MILEAGE_INVALID"),
        (lambda r: r["totals"].update(total="0.01"), "totals.total", "AMOUNT_MISMATCH"),
        (lambda r: r["items"][0].update(fee="-3"), "items.0.fee", "AMOUNT_INVALID"),
        (lambda r: r.update(repair_type="ZZ"), "repair_type", "CODE_UNKNOWN"),
        (lambda r: r.update(settlement_no="x" * 51), "settlement_no", "TOO_LONG"),
        (lambda r: r.pop("fault_description"), "fault_description", "REQUIRED"),
        (lambda r: r.update(extra="?"), "extra", "EXTRA_FIELD"),
        (lambda r: r.pop("totals"), "totals", "REQUIRED"),
    ],
)
def test_rejections_carry_the_documented_code_and_store_nothing(shop, engine, mutate, field, code):
    vin = make_vin()
    raw = make_record("BAD-1", vin)
    mutate(raw)
    r = shop.upload(raw)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_FAILED"
    assert {"field": field, "code": code} in [{"field": f["field"], "code": f["code"]} for f in err["fields"]]
    assert all(f["message"] for f in err["fields"])  # every code comes with a Chinese explanation
    assert (
        count(engine, "SELECT count(*) FROM repair_record WHERE enterprise_id = :e", e=shop.enterprise_id)
        == 0
    )
    assert count(engine, "SELECT count(*) FROM vehicle WHERE vin = :v", v=vin) == 0


def test_request_level_rejections(shop, client):
    h = shop.headers
    assert (
        client.post(RECORDS, content=b"{not json", headers={**h, "content-type": "application/json"}).json()[
            "error"
        ]["code"]
        == "MALFORMED_JSON"
    )
    assert client.post(RECORDS, json=make_record()).json()["error"]["code"] == "AUTH_REQUIRED"
    bad = client.post(RECORDS, json=make_record(), headers={"Authorization": "Bearer v1.abc.def"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "TOKEN_INVALID")
    expired, _ = client.app.state.runtime.tokens.issue("enterprise", shop.enterprise_id, -1, credential=1)
    r = client.post(RECORDS, json=make_record(), headers={"Authorization": f"Bearer {expired}"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "TOKEN_EXPIRED")
    owner_tok, _ = client.app.state.runtime.tokens.issue("owner", 1, 60)
    r = client.post(RECORDS, json=make_record(), headers={"Authorization": f"Bearer {owner_tok}"})
    assert r.json()["error"]["code"] == "TOKEN_INVALID"
    huge = b'{"settlement_no": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = client.post(RECORDS, content=huge, headers={**h, "content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    r = shop.batch([make_record(f"B{i}") for i in range(501)])
    assert (r.status_code, r.json()["error"]["code"]) == (413, "BATCH_TOO_LARGE")
    r = client.get(f"{RECORDS}/999999999", headers=h)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "RECORD_NOT_FOUND")
    # PostgreSQL cannot store NUL: refused as input, never a server error
    r = client.post("/api/v1/collection/token", json={"key_id": "EK\x00", "secret": "x"})
    assert (r.status_code, r.json()["error"]["fields"][0]["code"]) == (422, "TEXT_INVALID")
    r = client.get(RECORDS, params={"settlement_no": "A\x00"}, headers=h)
    assert r.status_code == 422
    r = client.get("/api/v1/nowhere")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_enterprise_registration_rules(client):
    profile = make_enterprise()
    assert client.post("/api/v1/collection/enterprises", json=profile).status_code == 201
    r = client.post("/api/v1/collection/enterprises", json=profile)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "ENTERPRISE_EXISTS")
    for field, value, code in [
        ("uscc", "91350100M000100Y44", "USCC_CHECK_CHAR"),
        ("uscc", "91350100M000100YS3", "USCC_FORMAT"),
        ("region_code", "329999", "REGION_UNKNOWN"),
        ("category", "9", "CODE_UNKNOWN"),
    ]:
        r = client.post("/api/v1/collection/enterprises", json={**make_enterprise(), field: value})
        assert r.status_code == 422
        assert [(f["field"], f["code"]) for f in r.json()["error"]["fields"]] == [(field, code)]


def test_wrong_credentials_are_refused_then_rate_limited(shop, client):
    ip = {"X-Real-IP": "198.51.100.7"}
    for _ in range(5):
        r = client.post(
            "/api/v1/collection/token", json={"key_id": shop.key_id, "secret": "wrong"}, headers=ip
        )
        assert (r.status_code, r.json()["error"]["code"]) == (401, "AUTH_INVALID_CREDENTIALS")
    # now even the right secret is refused until the window passes
    r = client.post(
        "/api/v1/collection/token", json={"key_id": shop.key_id, "secret": shop.secret}, headers=ip
    )
    assert (r.status_code, r.json()["error"]["code"]) == (429, "AUTH_RATE_LIMITED")


def test_credentials_several_per_enterprise_revocable(shop, client):
    r = client.post("/api/v1/collection/credentials", json={"label": "二号门店系统"}, headers=shop.headers)
    assert r.status_code == 201
    second = r.json()
    tok2 = client.post(
        "/api/v1/collection/token", json={"key_id": second["key_id"], "secret": second["secret"]}
    )
    h2 = {"Authorization": f"Bearer {tok2.json()['access_token']}"}
    keys = [c["key_id"] for c in client.get("/api/v1/collection/credentials", headers=h2).json()]
    assert keys == [shop.key_id, second["key_id"]]
    # rotate: revoke the first; tokens issued from it stop working at once, the second keeps working
    assert client.delete(f"/api/v1/collection/credentials/{shop.key_id}", headers=h2).status_code == 204
    r = shop.upload(make_record())
    assert (r.status_code, r.json()["error"]["code"]) == (401, "CREDENTIAL_REVOKED")
    r = client.post("/api/v1/collection/token", json={"key_id": shop.key_id, "secret": shop.secret})
    assert r.json()["error"]["code"] == "AUTH_INVALID_CREDENTIALS"
    assert client.post(RECORDS, json=make_record("R-2", make_vin()), headers=h2).status_code == 200
    assert client.delete(f"/api/v1/collection/credentials/{shop.key_id}", headers=h2).status_code == 404


def test_batch_partial_failure(shop, engine):
    good1, good2 = make_record("G1", make_vin()), make_record("G2", make_vin())
    bad = make_record("X1", "LSVAM4188C2184847")
    r = shop.batch([good1, bad, good2, {"settlement_no": 5}])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    by_index = {x["index"]: x for x in body["results"]}
    assert by_index[0]["status"] == by_index[2]["status"] == "accepted"
    assert by_index[1]["status"] == "rejected"
    assert by_index[1]["errors"][0]["code"] == "VIN_CHECK_DIGIT"
    assert {e["code"] for e in by_index[3]["errors"]} >= {"REQUIRED"}
    stored = count(
        engine, "SELECT count(*) FROM repair_record WHERE enterprise_id = :e", e=shop.enterprise_id
    )
    assert stored == 2


def test_idempotent_resend_and_new_version_on_change(shop, engine, vin, settlement_no):
    rec = make_record(settlement_no, vin)
    first = shop.upload(rec).json()
    again = shop.upload(rec).json()
    assert (
        again["outcome"] == "unchanged" and again["record_id"] == first["record_id"] and again["version"] == 1
    )
    assert again["query_code"] == first["query_code"]  # a retry gets the same code to print
    # the same amounts written differently are the same payload
    rec_fmt = make_record(settlement_no, vin)
    rec_fmt["items"][0]["fee"] = rec_fmt["items"][0]["fee"].removesuffix(".00")
    assert shop.upload(rec_fmt).json()["outcome"] == "unchanged"
    changed = make_record(settlement_no, vin, fault="变速箱异响")
    upd = shop.upload(changed).json()
    assert upd["outcome"] == "updated" and upd["version"] == 2 and upd["record_id"] == first["record_id"]
    rid = first["record_id"]
    assert (
        count(engine, "SELECT count(*) FROM repair_record WHERE enterprise_id = :e", e=shop.enterprise_id)
        == 1
    )
    assert count(engine, "SELECT count(*) FROM record_version WHERE record_id = :r", r=rid) == 2
    got = shop.client.get(f"{RECORDS}/{rid}", headers=shop.headers).json()
    assert [v["version"] for v in got["versions"]] == [1, 2]
    assert got["latest"]["fault_description"] == "变速箱异响"
    # the first version is still there, untouched
    assert (
        count(
            engine, "SELECT fault_description FROM record_version WHERE record_id = :r AND version = 1", r=rid
        )
        == "发动机异响"
    )


def test_same_settlement_number_at_two_enterprises_are_two_records(client, vin, settlement_no):
    from tests.app.conftest import Shop

    a, b = Shop(client), Shop(client)
    ra = a.upload(make_record(settlement_no, vin)).json()
    rb = b.upload(make_record(settlement_no, vin)).json()
    assert ra["outcome"] == rb["outcome"] == "created" and ra["record_id"] != rb["record_id"]


def test_withdrawal_is_a_tombstone(shop, engine, vin, settlement_no):
    rid = shop.upload(make_record(settlement_no, vin)).json()["record_id"]
    r = shop.client.post(f"{RECORDS}/{rid}/withdraw", json={"reason": "录入错误"}, headers=shop.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "withdrawn" and [v["kind"] for v in body["versions"]] == ["upload", "withdrawal"]
    assert body["versions"][1]["withdraw_reason"] == "录入错误"
    r = shop.client.post(f"{RECORDS}/{rid}/withdraw", json={"reason": "again"}, headers=shop.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "RECORD_WITHDRAWN")
    # re-uploading after a withdrawal reinstates the record as a new version
    again = shop.upload(make_record(settlement_no, vin)).json()
    assert again["outcome"] == "updated" and again["version"] == 3


def test_other_enterprises_records_are_invisible(client, shop, vin, settlement_no):
    from tests.app.conftest import Shop

    rid = shop.upload(make_record(settlement_no, vin)).json()["record_id"]
    other = Shop(client)
    r = client.get(f"{RECORDS}/{rid}", headers=other.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "RECORD_NOT_FOUND")
    r = client.post(f"{RECORDS}/{rid}/withdraw", json={"reason": "x"}, headers=other.headers)
    assert r.status_code == 404


def test_mileage_drop_is_a_warning_not_a_rejection(shop, vin):
    d = date.today() - timedelta(days=30)
    shop.upload(make_record("M1", vin, settle=d, mileage=50000))
    r = shop.upload(make_record("M2", vin, settle=d + timedelta(days=10), mileage=100))
    assert r.status_code == 200
    assert [w["code"] for w in r.json()["warnings"]] == ["MILEAGE_DECREASED"]


def test_mileage_check_in_a_batch_sees_the_batch_itself(shop, engine, vin):
    """New and changed records of one batch are checked against the car as the whole batch leaves it:
    a known record moved to a higher mileage, a withdrawn one uploaded again, new ones beside them."""
    d = date.today() - timedelta(days=60)
    assert shop.upload(make_record("K1", vin, settle=d, mileage=50000)).status_code == 200
    assert shop.upload(make_record("K2", vin, settle=d + timedelta(days=5), mileage=51000)).status_code == 200
    rid = shop.client.get(RECORDS, params={"settlement_no": "K2"}, headers=shop.headers).json()["record_id"]
    w = shop.client.post(f"{RECORDS}/{rid}/withdraw", json={"reason": "录错"}, headers=shop.headers)
    assert w.status_code == 200, w.text
    r = shop.batch([
        make_record("K1", vin, settle=d, mileage=70000),  # known, changed: now 70 000 km
        make_record("N1", vin, settle=d + timedelta(days=10), mileage=60000),  # new, below K1's new reading
        make_record("N2", vin, settle=d + timedelta(days=20), mileage=80000),  # new, above everything
        make_record("K2", vin, settle=d + timedelta(days=15), mileage=55000),  # withdrawn, back: below N1
    ])  # fmt: skip
    assert r.status_code == 200, r.text
    results = sorted(r.json()["results"], key=lambda x: x["index"])
    outcomes = [x["outcome"] for x in results]
    warnings = [[w["code"] for w in x["warnings"]] for x in results]
    assert outcomes == ["updated", "created", "created", "updated"], r.text
    assert warnings == [[], ["MILEAGE_DECREASED"], [], ["MILEAGE_DECREASED"]], r.text
    heads = count(engine, "SELECT count(*) FROM repair_record WHERE vin = :v AND status = 'active'", v=vin)
    versions = count(engine, "SELECT count(*) FROM record_version WHERE vin = :v", v=vin)
    assert (heads, versions) == (4, 2 + 1 + 4)  # K1 v1, K2 v1 and its withdrawal, then the batch's four


def test_concurrent_identical_uploads_make_one_record(shop, engine, vin, settlement_no):
    rec = make_record(settlement_no, vin)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: shop.upload(rec), range(16)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    outcomes = sorted(r.json()["outcome"] for r in results)
    assert outcomes.count("created") == 1 and outcomes.count("unchanged") == 15
    assert count(engine, "SELECT count(*) FROM record_version WHERE settlement_no = :s", s=settlement_no) == 1


def test_concurrent_different_uploads_lose_no_version(shop, engine, vin, settlement_no):
    recs = [make_record(settlement_no, vin, mileage=1000 + i) for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(shop.upload, recs))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    versions = sorted(r.json()["version"] for r in results)
    assert versions == list(range(1, 13))  # every change got its own version, none overwritten
    with engine.connect() as conn:
        head = conn.execute(
            sa.text("SELECT id, current_version, current_digest FROM repair_record WHERE settlement_no = :s"),
            {"s": settlement_no},
        ).one()
        latest = conn.execute(
            sa.text("SELECT digest FROM record_version WHERE record_id = :r AND version = 12"), {"r": head.id}
        ).scalar()
        mileages = (
            conn.execute(
                sa.text("SELECT mileage_km FROM record_version WHERE record_id = :r"), {"r": head.id}
            )
            .scalars()
            .all()
        )
    assert head.current_version == 12 and head.current_digest == latest
    assert sorted(mileages) == [1000 + i for i in range(12)]


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def test_attachment_round_trip_with_checksum(shop, client, settings, vin, settlement_no):
    rid = shop.upload(make_record(settlement_no, vin)).json()["record_id"]
    sha = hashlib.sha256(PNG).hexdigest()
    url = f"{RECORDS}/{rid}/attachments"
    r = client.post(
        url,
        files={"file": ("list.png", PNG, "image/png")},
        data={"kind": "settlement", "sha256": sha},
        headers=shop.headers,
    )
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["sha256"] == sha and att["size_bytes"] == len(PNG) and att["content_type"] == "image/png"
    got = client.get(f"{url}/{att['id']}", headers=shop.headers)
    assert got.status_code == 200 and got.content == PNG and got.headers["x-checksum-sha256"] == sha
    # the bytes really are in the object store, not in the database
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name="us-east-1",
    )
    obj = s3.get_object(Bucket=settings.s3_bucket, Key=f"attachments/{shop.enterprise_id}/{rid}/{sha}")
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == sha


def test_attachment_rejections(shop, client, vin, settlement_no):
    rid = shop.upload(make_record(settlement_no, vin)).json()["record_id"]
    url = f"{RECORDS}/{rid}/attachments"

    def post(data, **form):
        return client.post(
            url, files={"file": ("f", data, "application/octet-stream")}, data=form, headers=shop.headers
        )

    r = post(PNG, sha256="0" * 64)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "ATTACHMENT_CHECKSUM")
    r = post(b"#!/bin/sh\nrm -rf /\n")
    assert (r.status_code, r.json()["error"]["code"]) == (415, "ATTACHMENT_TYPE")
    r = post(b"")
    assert r.json()["error"]["code"] == "ATTACHMENT_EMPTY"
    r = post(PNG, kind="video")
    assert r.json()["error"]["code"] == "CODE_UNKNOWN"
    r = post(b"%PDF-" + b"0" * (10 * 1024 * 1024))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "ATTACHMENT_TOO_LARGE")
    r = post(b"%PDF-" + b"0" * (11 * 1024 * 1024))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_code_tables_and_metrics(shop, client):
    tables = client.get("/api/v1/collection/code-tables").json()
    assert tables["repair_type"]["31"] == "一级维护"
    shop.upload(make_record("MET-1", "LSVAM4188C2184847"))
    r = client.get("/metrics")
    text = r.text
    assert 'pbox_record_uploads_total{outcome="rejected",reason="VIN_CHECK_DIGIT"}' in text
    assert 'pbox_record_uploads_total{outcome="accepted",reason="created"}' in text
    assert (
        'pbox_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/collection/records"'
        in text
    )
    assert 'pbox_db_pool_connections{state="checked_out"}' in text


def test_request_ids_are_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert len(made) == 32


def test_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "object_store": True}


def test_a_settlement_number_repeated_within_a_batch_is_versioned_in_order(shop, vin, settlement_no):
    first, same, changed = (
        make_record(settlement_no, vin),
        make_record(settlement_no, vin),
        make_record(settlement_no, vin, mileage=99),
    )
    body = shop.batch([first, same, changed]).json()
    assert [(r["outcome"], r["version"]) for r in body["results"]] == [
        ("created", 1),
        ("unchanged", 1),
        ("updated", 2),
    ]
