"""Behind nginx the peer's verified certificate arrives as headers: trusted only when configured."""

import uuid

import pytest
from fastapi.testclient import TestClient

from app.domain.clock import now
from app.main import create_app
from app.security.signing import Signer, new_private_pem


@pytest.fixture(scope="module")
def peer_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("proxy-keys")
    (d / "own.pem").write_bytes(new_private_pem())
    (d / "peer.pem").write_bytes(new_private_pem())
    return d


def _app(settings, keys, trust: bool) -> TestClient:
    peer = Signer.from_file(keys / "peer.pem")
    s = settings.model_copy(update={"node_role": "province", "region_code": "320000"})
    s.exchange = s.exchange.model_copy(
        update={
            "enabled": True,
            "node_name": "province-320000",
            "signing_key_file": keys / "own.pem",
            "trust_proxy_client_cert": trust,
        }
    )
    from app.settings import ExchangePeer

    s.exchange.peers = [
        ExchangePeer(
            name="city-320100",
            role="city",
            region_code="320100",
            url="https://city.invalid",
            signing_public_key=peer.public_pem(),
        )
    ]
    return TestClient(create_app(s), client=("127.0.0.1", 50000))  # from nginx: a trusted proxy


def _statistics(keys) -> dict:
    msg = {
        "id": str(uuid.uuid4()),
        "kind": "statistics.daily",
        "from": "city-320100",
        "to": "province-320000",
        "created_at": now().isoformat(),
        "body": {
            "generated_at": now().isoformat(),
            "days": [{"day": "2026-01-02", "region_code": "320102", "records": 7, "detail": {}}],
        },
    }
    return Signer.from_file(keys / "peer.pem").sign(msg)


VERIFIED = {"X-Client-Verify": "SUCCESS", "X-Client-S-DN": "CN=city-320100,O=pbox"}


def test_a_trusted_proxys_verified_subject_identifies_the_peer(settings, peer_key):
    with _app(settings, peer_key, trust=True) as c:
        msg = _statistics(peer_key)
        r = c.post("/api/exchange/v1/messages", json={"messages": [msg]}, headers=VERIFIED)
        assert r.json()["results"] == [{"id": msg["id"], "status": "applied"}]
        r = c.post("/api/exchange/v1/messages", json={"messages": [msg]}, headers=VERIFIED)
        assert r.json()["results"][0]["status"] == "duplicate"
        failed = {**VERIFIED, "X-Client-Verify": "FAILED:unable to verify"}
        r = c.post("/api/exchange/v1/messages", json={"messages": [msg]}, headers=failed)
        assert r.status_code == 401 and r.json()["error"]["code"] == "PEER_CERT_REQUIRED"


def test_the_headers_mean_nothing_unless_a_proxy_is_configured(settings, peer_key):
    with _app(settings, peer_key, trust=False) as c:
        r = c.post("/api/exchange/v1/messages", json={"messages": [_statistics(peer_key)]}, headers=VERIFIED)
        assert r.status_code == 401 and r.json()["error"]["code"] == "PEER_CERT_REQUIRED"
