"""Filters of the monitoring role: site overrides of the repository's alert rules, and MinIO's
Prometheus bearer token."""

import base64
import copy
import hashlib
import hmac
import json
from typing import Any

from ansible.errors import AnsibleFilterError

# Far in the future and fixed, so the token (and the deploy) stays the same from run to run.
TOKEN_EXPIRES = 4102444800  # 2100-01-01


def alert_overrides(doc: dict[str, Any], for_all: str = "", per_alert: dict[str, dict] | None = None) -> dict:
    """A rules file with every non-zero `for:` set to `for_all` (if given) and the fields in
    `per_alert[alertname]` replaced."""
    per_alert = per_alert or {}
    out = copy.deepcopy(doc)
    for group in out.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if name is None:
                continue
            if for_all and str(rule.get("for", "0s")) not in ("0", "0s", "0m"):
                rule["for"] = for_all
            rule.update(per_alert.get(name, {}))
    return out


def unknown_alerts(docs: list[dict[str, Any]], per_alert: dict[str, dict] | None) -> list[str]:
    """Overrides naming an alert no rules file has: a typo would silently keep the production value."""
    names = {r.get("alert") for d in docs for g in d.get("groups", []) for r in g.get("rules", [])}
    return sorted(set(per_alert or {}) - names)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def minio_prometheus_token(secret_key: str, access_key: str) -> str:
    """The JWT `mc admin prometheus generate` makes: HS512 over {exp, sub, iss}, signed with the key's
    secret; MinIO accepts it as the bearer token of its metrics endpoints."""
    if not secret_key or not access_key:
        raise AnsibleFilterError("minio_prometheus_token needs an access key and its secret")
    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"exp": TOKEN_EXPIRES, "sub": access_key, "iss": "prometheus"}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret_key.encode(), f"{header}.{body}".encode(), hashlib.sha512).digest()
    return f"{header}.{body}.{_b64(signature)}"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "pbox_alert_overrides": alert_overrides,
            "pbox_unknown_alerts": unknown_alerts,
            "pbox_minio_prometheus_token": minio_prometheus_token,
        }
