"""Shared by the exchange tests: the four-node federation and what the tests ask of its databases."""

import uuid

import pytest
import sqlalchemy as sa

from tests.support.federation import Federation, wait_until
from tests.support.samples import make_enterprise, make_record, make_vin, roster_row

MINISTRY, PROV_A, PROV_B, CITY_A = "ministry", "province-320000", "province-330000", "city-320100"
LAYOUT = [
    (MINISTRY, "ministry", "100000", [PROV_A, PROV_B]),
    (PROV_A, "province", "320000", [MINISTRY, CITY_A]),
    (PROV_B, "province", "330000", [MINISTRY]),
    (CITY_A, "city", "320100", [PROV_A]),
]
SIGNING_ALGORITHMS = {MINISTRY: "sm2", PROV_A: "sm2", PROV_B: "ed25519", CITY_A: "ed25519"}


class Shop:
    """A repair enterprise registered at one node, uploading over HTTPS as its shop software does."""

    def __init__(self, fed: Federation, node: str, region_code: str) -> None:
        self.fed, self.node = fed, fed.nodes[node]
        self.client = fed.client()
        self.profile = make_enterprise()
        self.profile["region_code"] = region_code
        self.node.import_roster([roster_row(self.profile)])  # licensed: approved at registration
        base = self.node.url + "/api/v1/collection"
        r = self.client.post(f"{base}/enterprises", json=self.profile)
        assert r.status_code == 201, r.text
        body = r.json()
        r = self.client.post(f"{base}/token", json={"key_id": body["key_id"], "secret": body["secret"]})
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        self.base = base

    @property
    def uscc(self) -> str:
        return self.profile["uscc"]

    def upload(self, plate: str | None, vin: str | None = None, **kw) -> dict:
        rec = make_record("JS-" + uuid.uuid4().hex[:12].upper(), vin or make_vin(), plate=plate, **kw)
        r = self.client.post(f"{self.base}/records", json=rec, headers=self.headers)
        assert r.status_code == 200, r.text
        return rec

    def batch(self, records: list[dict]) -> None:
        r = self.client.post(f"{self.base}/records/batch", json={"records": records}, headers=self.headers)
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text

    def withdraw(self, settlement_no: str, reason: str = "录入错误") -> None:
        r = self.client.get(
            f"{self.base}/records", params={"settlement_no": settlement_no}, headers=self.headers
        )
        rid = r.json()["record_id"]
        r = self.client.post(
            f"{self.base}/records/{rid}/withdraw", json={"reason": reason}, headers=self.headers
        )
        assert r.status_code == 200, r.text


def versions_of(fed: Federation, node: str, uscc: str, settlement_no: str) -> list[tuple[int, str]]:
    """(version, digest) of every stored version of a record at `node`, duplicates included."""
    eng = fed.nodes[node].engine()
    try:
        with eng.connect() as c:
            rows = c.execute(
                sa.text(
                    "SELECT v.version, v.digest FROM record_version v"
                    " JOIN enterprise e ON e.id = v.enterprise_id"
                    " WHERE e.uscc = :u AND v.settlement_no = :s ORDER BY v.version"
                ),
                {"u": uscc, "s": settlement_no},
            ).all()
    finally:
        eng.dispose()
    return [(r.version, r.digest) for r in rows]


def arrives(
    fed: Federation, node: str, uscc: str, settlement_no: str, versions: int = 1, timeout: float = 180
):
    return wait_until(
        lambda: (
            len(versions_of(fed, node, uscc, settlement_no)) >= versions
            and versions_of(fed, node, uscc, settlement_no)
        ),
        timeout,
        f"{settlement_no} v{versions} at {node}",
    )


def query(fed: Federation, node: str, sql: str, **params):
    eng = fed.nodes[node].engine()
    try:
        with eng.connect() as c:
            return c.execute(sa.text(sql), params).all()
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def fed(pg, minio, tmp_path_factory):
    """The four nodes, started once for every exchange test module (each start costs processes)."""
    s3 = {"endpoint": minio.endpoint, "access_key": minio.access_key, "secret_key": minio.secret_key}
    f = Federation(
        pg.url,
        s3,
        tmp_path_factory.mktemp("federation"),
        LAYOUT,
        exchange={"statistics_interval_seconds": 5.0},
        # the national suite, as pbox init makes new provinces: the ministry and province A sign
        # with SM2, province B and city A still with Ed25519 (the migration window, issue 24)
        crypto_suite="sm",
        signing_algorithms=SIGNING_ALGORITHMS,
    )
    try:
        f.start()
        yield f
    finally:
        f.stop()


def outbox_peers(fed: Federation, node: str, uscc: str, settlement_no: str) -> list[str]:
    """The peers `node` has routed any version of the record to."""
    rows = query(
        fed,
        node,
        "SELECT DISTINCT peer FROM exchange_outbox WHERE msg_key LIKE :k ORDER BY peer",
        k=f"{uscc}/{settlement_no}/%",
    )
    return [r[0] for r in rows]


def outbox_rows(fed: Federation, node: str, uscc: str, settlement_no: str):
    return query(
        fed,
        node,
        """SELECT id, xid::text AS xid, message_id::text AS message_id, peer, kind, body,
                 created_at, status FROM exchange_outbox WHERE msg_key LIKE :k ORDER BY id""",
        k=f"{uscc}/{settlement_no}/%",
    )


def signed(fed: Federation, sender: str, row) -> dict:
    """The message the sender's relay would ship for an outbox row, signed with the sender's key."""
    from app.security.signing import Signer

    msg = {
        "id": row.message_id,
        "kind": row.kind,
        "from": sender,
        "to": row.peer,
        "created_at": row.created_at.isoformat(),
        "body": row.body,
    }
    return Signer.from_file(fed.nodes[sender].signer_file).sign(msg)


def post_messages(fed: Federation, cert_of: str | None, target: str, messages: list[dict]):
    """POST to a node's exchange endpoint, over TLS with `cert_of`'s client certificate (or none)."""
    import ssl

    import httpx

    ctx = ssl.create_default_context(cafile=str(fed.ca.cert_file))
    if cert_of is not None:
        ctx.load_cert_chain(str(fed.nodes[cert_of].cert), str(fed.nodes[cert_of].key))
    with httpx.Client(verify=ctx, timeout=60) as c:
        return c.post(f"{fed.nodes[target].url}/api/exchange/v1/messages", json={"messages": messages})


def audit_rejections(fed: Federation, node: str, message_id: str) -> list[str]:
    rows = query(
        fed,
        node,
        """SELECT detail->>'reason' FROM audit.event WHERE action = 'exchange.receive'
                 AND outcome = 'failure' AND subject = :s ORDER BY seq""",
        s=f"message:{message_id}",
    )
    return [r[0] for r in rows]


def duplicated_versions(fed: Federation, node: str) -> list:
    return query(
        fed, node, "SELECT record_id, version, count(*) FROM record_version GROUP BY 1, 2 HAVING count(*) > 1"
    )


def backlog(fed: Federation, node: str, peer: str) -> int:
    states = fed.admin(node, "GET", "")["peers_state"]
    return next(s["backlog"] for s in states if s["peer"] == peer)
