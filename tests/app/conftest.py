"""One throwaway PostgreSQL cluster and one MinIO server for the whole session, and the app on them.

The database is set up as a deployment sets it up: migrated by the owner role, and the app runs as
the restricted runtime role with the grants of app/db/grants.py, so a missing grant fails here."""

import secrets
import time
import uuid

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db.models import StaffAccount
from app.main import create_app
from app.security.rbac import Role
from app.services import roster, staff
from tests.support.minio import MinioServer
from tests.support.postgres import AppDatabase, PostgresCluster
from tests.support.samples import make_enterprise, make_vin, roster_row
from tests.support.settings import local_settings


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


def migrated_database(pg, name: str) -> AppDatabase:
    """A new database on the session's cluster, at the latest schema, with the runtime roles' grants."""
    return AppDatabase(pg, name).create()


@pytest.fixture(scope="session")
def app_db(pg):
    return migrated_database(pg, "pbox")


@pytest.fixture(scope="session")
def database_url(app_db):
    """What the app connects as: the restricted runtime role."""
    return app_db.runtime_url


@pytest.fixture(scope="session")
def settings(database_url, minio):
    return local_settings(
        database_url,
        minio,
        audit_key=secrets.token_hex(32),  # the audit chain is keyed, as deployed
        db_pool_size=5,
    )


@pytest.fixture(scope="session")
def client(settings):
    # connecting from loopback, as the load balancer would (a trusted proxy: X-Real-IP is believed)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        yield c


@pytest.fixture(scope="session")
def engine(app_db):
    """The owner role, for tests that look at (or stage) rows behind the app's back."""
    eng = sa.create_engine(app_db.owner_url)
    yield eng
    eng.dispose()


def audit_actions(engine: sa.Engine, subject: str) -> list[str]:
    """The audit log's actions on one subject, in order."""
    with engine.connect() as conn:
        query = sa.text("SELECT action FROM audit.event WHERE subject = :s ORDER BY seq")
        return list(conn.execute(query, {"s": subject}).scalars())


def import_roster(client: TestClient, *rows: dict):
    """What `app-admin roster import` does with a file of these rows (app.services.roster)."""
    rt = client.app.state.runtime
    with rt.db.transaction() as s:
        return roster.import_rows(s, rt.audit, list(enumerate(rows, start=2)), "tests", "tests.csv")


class Shop:
    """A registered enterprise with a token, as its shop software would hold them. The enterprise is
    put on the licence roster first (as the operator's import would), so it is approved at
    registration; `on_roster=False` leaves it pending a regulator's review, with no token."""

    def __init__(self, client: TestClient, on_roster: bool = True, **profile) -> None:
        self.client = client
        self.profile = {**make_enterprise(), **profile}
        if on_roster:
            report = import_roster(client, roster_row(self.profile))
            assert report.imported == 1 and not report.bad, report
        r = client.post("/api/v1/collection/enterprises", json=self.profile)
        assert r.status_code == 201, r.text
        body = r.json()
        self.status = body["status"]
        self.enterprise_id, self.key_id, self.secret = body["enterprise_id"], body["key_id"], body["secret"]
        self.headers: dict[str, str] = {}
        if on_roster:
            assert self.status == "active", body
            r = self.get_token()
            assert r.status_code == 200, r.text

    def get_token(self):
        r = self.client.post("/api/v1/collection/token", json={"key_id": self.key_id, "secret": self.secret})
        if r.status_code == 200:
            self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return r

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


STAFF_PASSWORD = "Str0ng-Passw0rd!"


class Staff:
    """A staff account and its TOTP secret, logged in over the API."""

    def __init__(self, client: TestClient, username: str, secret: str, staff_id: int) -> None:
        self.client, self.username, self.secret, self.staff_id = client, username, secret, staff_id
        self.password = STAFF_PASSWORD
        self.headers: dict[str, str] = {}

    def code(self, offset: int = 0) -> str:
        # codes of the previous and next 30 s step are accepted once each, so a test can log in
        # up to three times in a row: offset -1, then 0, then 1
        return pyotp.TOTP(self.secret).at(time.time() + 30 * offset)

    def login(self, offset: int = 0, password: str | None = None, code: str | None = None):
        r = self.client.post(
            "/api/v1/staff/token",
            json={
                "username": self.username,
                "password": password or self.password,
                "totp_code": code or self.code(offset),
            },
        )
        if r.status_code == 200:
            self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return r


@pytest.fixture(scope="session")
def admins(client) -> dict[Role, Staff]:
    """The three administrators, bootstrapped once as an operator would at install time."""
    rt = client.app.state.runtime
    out = {}
    for role in (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN):
        name = f"{role.value.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        with rt.db.transaction() as s:
            made = staff.bootstrap(s, rt.crypto, rt.audit, 12, name, STAFF_PASSWORD, role)
        out[role] = Staff(client, name, made.totp_secret, made.staff_id)
        assert out[role].login().status_code == 200
    return out


def regulator(client, admins, region: str) -> Staff:
    """A regulator of `region`, logged in."""
    who = new_staff(client, admins, Role.REGULATOR, region)
    assert who.login().status_code == 200
    return who


def enrol(client, username: str, activation_code: str, password: str = STAFF_PASSWORD) -> tuple[str, dict]:
    """The account owner's first login, through the API: sets the password, gets and confirms the
    TOTP secret. Returns the secret and the confirmation's answer (a session)."""
    r = client.post(
        "/api/v1/staff/first-login",
        json={"username": username, "activation_code": activation_code, "new_password": password},
    )
    assert r.status_code == 200, r.text
    secret = r.json()["totp_secret"]
    r = client.post(
        "/api/v1/staff/first-login/confirm",
        json={
            "enrolment_token": r.json()["enrolment_token"],
            "totp_code": pyotp.TOTP(secret).at(time.time() - 30),
        },
    )
    assert r.status_code == 200, r.text
    return secret, r.json()


def new_staff(client, admins, role: Role | None = None, region: str | None = None) -> Staff:
    """An account made by the system administrator (who gets only an activation code), enrolled by
    its owner at first login, and given its role by the security administrator."""
    name = "u-" + uuid.uuid4().hex[:10]
    r = client.post("/api/v1/admin/staff", json={"username": name}, headers=admins[Role.SYSTEM_ADMIN].headers)
    assert r.status_code == 201, r.text
    staff_id = r.json()["staff_id"]
    secret, _ = enrol(client, name, r.json()["activation_code"])
    # The confirmation used the previous step's code; tests log in up to three times in a row (codes
    # of steps -1, 0, 1, see Staff.code), so the replay counter is wound back behind the app's back.
    # (That the confirmation's own code is not accepted again is tested in test_attack_sessions.)
    with client.app.state.runtime.db.transaction() as s:
        s.execute(sa.update(StaffAccount).where(StaffAccount.id == staff_id).values(totp_last_step=0))
    who = Staff(client, name, secret, staff_id)
    if role is not None:
        r = client.put(
            f"/api/v1/admin/staff/{who.staff_id}/role",
            json={"role": role.value, "region_code": region},
            headers=admins[Role.SECURITY_ADMIN].headers,
        )
        assert r.status_code == 204, r.text
    return who


from tests.app.exchange_helpers import fed  # noqa: E402, F401 - the exchange tests' shared federation
