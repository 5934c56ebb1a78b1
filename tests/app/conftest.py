"""One throwaway PostgreSQL cluster and one MinIO server for the whole session, and the app on them."""

import secrets
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db.migrate import upgrade
from app.devtools.minio import MinioServer
from app.devtools.postgres import PostgresCluster
from app.devtools.samples import make_enterprise, make_vin
from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="session")
def pg():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def minio():
    server = MinioServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg):
    engine = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE pbox"))
    engine.dispose()
    url = pg.url.rsplit("/", 1)[0] + "/pbox"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url, minio):
    return Settings(
        database_url=database_url,
        s3_endpoint=minio.endpoint,
        s3_access_key=minio.access_key,
        s3_secret_key=minio.secret_key,
        secret_key=secrets.token_hex(32),
        db_pool_size=5,
    )


@pytest.fixture(scope="session")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
def engine(database_url):
    eng = sa.create_engine(database_url)
    yield eng
    eng.dispose()


class Shop:
    """A registered enterprise with a token, as its shop software would hold them."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.profile = make_enterprise()
        r = client.post("/api/v1/collection/enterprises", json=self.profile)
        assert r.status_code == 201, r.text
        body = r.json()
        self.enterprise_id, self.key_id, self.secret = body["enterprise_id"], body["key_id"], body["secret"]
        r = client.post("/api/v1/collection/token", json={"key_id": self.key_id, "secret": self.secret})
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def upload(self, record: dict):
        return self.client.post("/api/v1/collection/records", json=record, headers=self.headers)

    def batch(self, records: list[dict]):
        return self.client.post(
            "/api/v1/collection/records/batch", json={"records": records}, headers=self.headers
        )


@pytest.fixture
def shop(client):
    return Shop(client)


@pytest.fixture
def vin():
    return make_vin()


@pytest.fixture
def settlement_no():
    return "JS-" + uuid.uuid4().hex[:12].upper()
