"""Message signatures and routing rules, without a network."""

import json

from app.node import ExchangeNode
from app.node import RecordEvent as E
from app.security.signing import Signer, canonical, load_public, new_private_pem, verify
from app.settings import Settings


def _signer(tmp_path, name="k.pem") -> Signer:
    p = tmp_path / name
    p.write_bytes(new_private_pem())
    return Signer.from_file(p)


def test_a_signed_message_verifies_after_a_json_round_trip_and_fails_when_changed(tmp_path):
    s = _signer(tmp_path)
    msg = s.sign(
        {
            "id": "1",
            "kind": "record.version",
            "from": "a",
            "to": "b",
            "created_at": "x",
            "body": {"amount": "12.50", "text": "发动机异响", "n": [1, None, True]},
        }
    )
    key = load_public(s.public_pem())
    received = json.loads(json.dumps(msg))  # any JSON library re-serializes to the signed bytes
    assert verify(key, received)
    received["body"]["amount"] = "12.51"
    assert not verify(key, received)
    assert not verify(load_public(_signer(tmp_path, "other.pem").public_pem()), msg)
    assert not verify(key, {**msg, "sig": {"alg": "sm2", "value": msg["sig"]["value"]}})


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical({"b": 1, "a": "苏"}) == '{"a":"苏","b":1}'.encode()


def _node(tmp_path, role, region, peers) -> ExchangeNode:
    pem = _signer(tmp_path, "peer.pem").public_pem()
    settings = Settings(
        node_role=role,
        region_code=region,
        exchange={
            "enabled": True,
            "signing_key_file": tmp_path / "peer.pem",
            "peers": [
                {"name": n, "role": r, "region_code": c, "url": f"https://{n}", "signing_public_key": pem}
                for n, r, c in peers
            ],
        },
    )
    node = ExchangeNode.from_settings(settings)
    assert node is not None
    return node


def test_routes_of_a_province(tmp_path):
    p = _node(
        tmp_path,
        "province",
        "320000",
        [("ministry", "ministry", "100000"), ("nanjing", "city", "320100"), ("suzhou", "city", "320500")],
    )
    # a province upload of a Nanjing car: up to the ministry and to Nanjing, not to Suzhou
    assert p.route(E("320000", "320100", None)) == ["ministry", "nanjing"]
    # Nanjing's own upload of its own car: up only, never back to where it came from
    assert p.route(E("320100", "320100", "nanjing")) == ["ministry"]
    # a Zhejiang repair of a Nanjing car, from the ministry: to Nanjing only
    assert p.route(E("330000", "320100", "ministry")) == ["nanjing"]
    # a Suzhou upload of a Nanjing car: up, and to Nanjing
    assert p.route(E("320500", "320100", "suzhou")) == ["ministry", "nanjing"]
    # a car whose home is only known to the province level goes to no city
    assert p.route(E("320500", "320000", "suzhou")) == ["ministry"]


def test_routes_of_the_ministry(tmp_path):
    m = _node(tmp_path, "ministry", "100000", [("js", "province", "320000"), ("zj", "province", "330000")])
    assert m.route(E("330000", "320100", "zj")) == ["js"]  # out-of-province repair goes home
    assert m.route(E("320100", "320100", "js")) == []  # a repair at home stays there
    assert m.route(E("330000", None, "zj")) == []  # no home known: nowhere
    assert m.statistics_peers() == []


def test_a_city_sends_everything_up_and_statistics(tmp_path):
    c = _node(tmp_path, "city", "320100", [("js", "province", "320000")])
    assert c.route(E("320100", "330100", None)) == ["js"]
    assert c.route(E("330000", "320100", "js")) == []
    assert c.statistics_peers() == ["js"]
