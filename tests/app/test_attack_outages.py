"""Outages answer cleanly: while PostgreSQL or the object store is down, every API says 503 with
Retry-After (the national interface: its envelope, errcode RETRY_LATER), the portal a Chinese page,
readiness "not ready"; never a 500 that shop software would take for a refused record. Then the
service comes back and so does the app, by itself.

This module runs its own PostgreSQL cluster, MinIO and app: it stops them under the app, which the
session's shared ones (tests/app/conftest.py) must never see."""

import hashlib
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import Shop
from tests.app.test_api_national import envelope, record_info, register
from tests.app.test_api_owner import new_owner
from tests.support.federation import wait_until
from tests.support.minio import MinioServer
from tests.support.postgres import AppDatabase, PostgresCluster
from tests.support.samples import make_record, make_vin
from tests.support.settings import local_settings

PDF = b"%PDF-1.4\n% outage test\n%%EOF\n"


@dataclass
class Env:
    cluster: PostgresCluster
    minio: MinioServer
    client: TestClient
    shop: Shop
    record_id: int
    attachment_id: int
    vin: str
    owner: dict[str, str]
    national_token: str


@pytest.fixture(scope="module")
def env():
    cluster = PostgresCluster().start()
    minio = MinioServer().start()
    try:
        db = AppDatabase(cluster, "pbox").create()
        settings = local_settings(db.runtime_url, minio, db_pool_size=3)
        with TestClient(create_app(settings)) as client:
            shop, vin = Shop(client), make_vin()
            r = shop.upload(make_record("JS-" + uuid.uuid4().hex[:10].upper(), vin, plate="苏A0U001"))
            assert r.status_code == 200, r.text
            record_id, code = r.json()["record_id"], r.json()["query_code"]
            att = _attach(client, shop, record_id)
            assert att.status_code == 201, att.text
            _, owner = new_owner(client)
            client.post("/api/v1/owner/vehicles", json={"vin": vin, "query_code": code}, headers=owner)
            _, token = register(client)
            yield Env(cluster, minio, client, shop, record_id, att.json()["id"], vin, owner, token)
    finally:
        minio.stop()
        cluster.stop()


def _attach(client: TestClient, shop: Shop, record_id: int):
    return client.post(
        f"/api/v1/collection/records/{record_id}/attachments",
        headers=shop.headers,
        files={"file": ("list.pdf", PDF, "application/pdf")},
        data={"kind": "settlement", "sha256": hashlib.sha256(PDF).hexdigest()},
    )


def _download(env: Env):
    path = f"/api/v1/collection/records/{env.record_id}/attachments/{env.attachment_id}"
    return env.client.get(path, headers=env.shop.headers)


def _calls(env: Env) -> dict:
    """One request of each kind a client makes, answered now."""
    c = env.client
    national = envelope(record_info(env.national_token, make_vin(), costlist="CL-" + uuid.uuid4().hex[:8]))
    return {
        "collection upload": env.shop.upload(make_record("JS-" + uuid.uuid4().hex[:10].upper(), make_vin())),
        "collection token": c.post(
            "/api/v1/collection/token", json={"key_id": env.shop.key_id, "secret": env.shop.secret}
        ),
        "owner history": c.get(f"/api/v1/owner/vehicles/{env.vin}/history", headers=env.owner),
        "national upload": c.post(
            "/api/national/carhealth/record", content=national, headers={"Content-Type": "text/html"}
        ),
        "portal page": c.get("/enterprises"),
        "attachment download": c.get(
            f"/api/v1/collection/records/{env.record_id}/attachments/{env.attachment_id}",
            headers=env.shop.headers,
        ),
    }


def _unavailable(name: str, r) -> None:
    assert r.status_code == 503, (name, r.status_code, r.text[:300])
    assert int(r.headers["Retry-After"]) > 0, name
    if name == "national upload":
        info = r.json()["respInfo"]
        assert (info["code"], info["errcode"]) == ("0", "RETRY_LATER"), info
    elif name == "portal page":
        assert r.headers["content-type"].startswith("text/html") and "服务暂时不可用" in r.text, r.text[:300]
    else:
        assert r.json()["error"]["code"] == "RETRY_LATER", (name, r.text)


def _ready(env: Env) -> bool:
    return env.client.get("/readyz").status_code == 200


def test_while_the_database_is_down_every_api_answers_503_with_retry_after(env):
    env.cluster.pause()
    try:
        for name, r in _calls(env).items():
            _unavailable(name, r)
        ready = env.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
        assert "Retry-After" in ready.headers
        assert env.client.get("/metrics").status_code == 200  # the process's own metrics still count
    finally:
        env.cluster.resume()
    # back without a restart: the pool drops its dead connections and opens new ones
    wait_until(lambda: _ready(env), 60, "the app ready again")
    after = _calls(env)
    assert after["collection upload"].status_code == 200, after["collection upload"].text
    assert after["national upload"].json()["respInfo"]["code"] == "1", after["national upload"].text
    assert after["attachment download"].content == PDF
    assert all(r.status_code < 500 for r in after.values()), {n: r.status_code for n, r in after.items()}


def test_while_the_object_store_is_down_attachments_answer_503_and_the_rest_works(env):
    env.minio.pause()
    try:
        _unavailable("attachment upload", _attach(env.client, env.shop, env.record_id))
        _unavailable("attachment download", _calls(env)["attachment download"])
        ready = env.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {
            "database": True,
            "object_store": False,
        }
        # what needs no file store goes on
        up = env.shop.upload(make_record("JS-" + uuid.uuid4().hex[:10].upper(), make_vin()))
        assert up.status_code == 200, up.text
    finally:
        env.minio.start()
    wait_until(lambda: _ready(env), 60, "the app ready again")
    assert _attach(env.client, env.shop, env.record_id).status_code == 201
    r = env.client.get(
        f"/api/v1/collection/records/{env.record_id}/attachments/{env.attachment_id}",
        headers=env.shop.headers,
    )
    assert r.status_code == 200 and r.content == PDF
