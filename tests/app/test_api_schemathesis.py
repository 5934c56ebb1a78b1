"""Property-based fuzzing of the whole API from its own OpenAPI document: nothing may answer 5xx.

Driven through hypothesis directly (one test per operation) and sent with the session's TestClient,
so the requests reach the app that runs on the real PostgreSQL and MinIO.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.main import create_app
from app.settings import Settings
from tests.app.conftest import Shop
from tests.support.samples import make_record

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(secret_key="s" * 32)).openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def fuzz_headers(client):
    """Valid tokens, so the fuzzer gets past authentication and into the handlers."""
    shop = Shop(client)
    shop.upload(make_record("FUZZ-1"))
    client.post("/api/v1/owner/accounts", json={"phone": "13700000000", "password": "fuzz-pass-1"})
    owner = client.post(
        "/api/v1/owner/token", json={"phone": "13700000000", "password": "fuzz-pass-1"}
    ).json()
    # failures the fuzzer provokes are throttled per address: keep them away from the other tests' address
    ip = {"X-Real-IP": "192.0.2.10"}
    return {
        "enterprise": {**shop.headers, **ip},
        "owner": {"Authorization": f"Bearer {owner['access_token']}", **ip},
    }


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors(operation, client, fuzz_headers):
    audience = "owner" if operation.path.startswith("/api/v1/owner") else "enterprise"
    if audience == "owner":
        # a fresh owner token per operation: fuzzing POST /owner/logout ends the account's tokens
        token = client.post(
            "/api/v1/owner/token", json={"phone": "13700000000", "password": "fuzz-pass-1"}
        ).json()["access_token"]
        owner = {**fuzz_headers["owner"], "Authorization": f"Bearer {token}"}
        fuzz_headers = {**fuzz_headers, "owner": owner}

    @given(case=operation.as_strategy())
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case):
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=fuzz_headers[audience])
        response = client.request(**kwargs)
        assert response.status_code < 500, (
            f"{case.method} {kwargs['url']} -> {response.status_code}: {response.text}"
        )

    check()
