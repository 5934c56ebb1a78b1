"""The monitoring role's filters: site overrides of the alert rules, MinIO's Prometheus token."""

import base64
import hashlib
import hmac
import importlib.util
import json

import pytest
import yaml

from pbox.paths import REPO

spec = importlib.util.spec_from_file_location(
    "pbox_monitoring", REPO / "roles/monitoring/filter_plugins/pbox_monitoring.py"
)
assert spec and spec.loader
filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filters)

RULES = yaml.safe_load(
    """
groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum(up)
      - alert: Slow
        expr: up == 0
        for: 5m
      - alert: Instant
        expr: x == 0
        for: 0m
      - alert: NoFor
        expr: y == 0
"""
)


def rules_by_name(doc):
    return {r.get("alert", r.get("record")): r for r in doc["groups"][0]["rules"]}


def test_no_overrides_keep_the_rules():
    assert filters.alert_overrides(RULES) == RULES


def test_for_all_shortens_only_waiting_alerts():
    got = rules_by_name(filters.alert_overrides(RULES, "10s"))
    assert got["Slow"]["for"] == "10s"
    assert got["Instant"]["for"] == "0m"  # fires at once already
    assert "for" not in got["NoFor"] and "for" not in got["job:up:sum"]
    assert rules_by_name(RULES)["Slow"]["for"] == "5m"  # the input is not changed


def test_per_alert_fields_replace_the_rules_own():
    got = rules_by_name(filters.alert_overrides(RULES, "10s", {"Slow": {"expr": "up < 1", "for": "1h"}}))
    assert got["Slow"] == {"alert": "Slow", "expr": "up < 1", "for": "1h"}


def test_unknown_alert_names_are_reported():
    assert filters.unknown_alerts([RULES], {"Slow": {}, "Sloww": {}}) == ["Sloww"]
    assert filters.unknown_alerts([RULES], None) == []


def test_minio_token_is_the_hs512_jwt_mc_would_make():
    token = filters.minio_prometheus_token("s3cr3t", "pbox-root")
    head, body, sig = token.split(".")

    def unb64(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    assert json.loads(unb64(head)) == {"alg": "HS512", "typ": "JWT"}
    assert json.loads(unb64(body)) == {"exp": 4102444800, "sub": "pbox-root", "iss": "prometheus"}
    expected = hmac.new(b"s3cr3t", f"{head}.{body}".encode(), hashlib.sha512).digest()
    assert hmac.compare_digest(unb64(sig), expected)
    assert filters.minio_prometheus_token("s3cr3t", "pbox-root") == token  # same every deploy
    with pytest.raises(Exception, match="access key"):
        filters.minio_prometheus_token("", "pbox-root")
