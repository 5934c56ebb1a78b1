#!/usr/bin/python3
"""Ansible module: buckets, policies and users of a MinIO server, through its S3 and admin APIs.

Only the Python standard library plus `argon2` (argon2-cffi) and `cryptography` are needed on the
host, both Debian/RHEL packages: requests are signed with AWS Signature V4, and the admin API's
encrypted bodies (user secrets) use MinIO's admin payload format — salt(32) | 0x00 | nonce(8) |
AES-256-GCM ciphertext, key = Argon2id(secret key of the caller, salt; t=1, m=64 MiB, p=4), a
single final fragment whose associated data is 0x80 || GCM tag of the empty message under the
nonce with counter 0, sealed under the nonce with counter 1.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: pbox_minio
short_description: Ensure MinIO buckets, canned policies and users
description: Idempotently creates buckets, canned IAM policies and users (with their secret and policy).
options:
  endpoint: {description: "https URL of the server", type: str, required: true}
  access_key: {description: "root access key", type: str, required: true}
  secret_key: {description: "root secret key", type: str, required: true, no_log: true}
  ca_file: {description: "CA bundle to verify the server", type: str}
  buckets: {description: "bucket names", type: list, elements: str, default: []}
  policies: {description: "policy name -> policy document", type: dict, default: {}}
  users: {description: "list of {access_key, secret_key, policy}", type: list, elements: dict, default: []}
author: province-in-a-box
"""

RETURN = r"""
pool:
  description: "The storage behind the server (admin info): backend (Erasure), parity of the standard
    storage class, drives online and offline, drives per erasure set."
  type: dict
  returned: always
"""

REGION = "us-east-1"
INIT_WAIT_SECONDS = 120


def _quote(s: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(s, safe=safe)


class Minio:
    def __init__(self, endpoint: str, access: str, secret: str, ca_file: str | None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urllib.parse.urlsplit(self.endpoint).netloc
        self.access, self.secret = access, secret
        self.ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()

    def request(self, method: str, path: str, query: dict | None = None, body: bytes = b"",
                creds: tuple[str, str] | None = None) -> tuple[int, bytes]:
        """One signed request. A pool that has just formed may still answer 503 (IAM and other
        subsystems starting: XMinio...NotInitialized) or drop connections while a peer restarts:
        wait and sign again, for up to INIT_WAIT_SECONDS."""
        status, answer = 0, b""
        for _ in range(INIT_WAIT_SECONDS):
            try:
                status, answer = self._request_once(method, path, query, body, creds)
            except OSError as e:  # refused, reset, timed out (urllib wraps them in URLError, an OSError)
                status, answer = 0, str(e).encode()
            if status not in (0, 500, 503):
                break
            time.sleep(1)
        return status, answer

    def _request_once(self, method: str, path: str, query: dict | None, body: bytes,
                      creds: tuple[str, str] | None) -> tuple[int, bytes]:
        access, secret = creds or (self.access, self.secret)
        now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - RHEL 9 has Python 3.9
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload_hash = hashlib.sha256(body).hexdigest()
        query = query or {}
        cquery = "&".join(f"{_quote(k)}={_quote(str(v))}" for k, v in sorted(query.items()))
        cpath = _quote(path, safe="/-_.~")
        headers = {"host": self.host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, cpath, cquery, "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                               signed, payload_hash])
        scope = f"{day}/{REGION}/s3/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, digest])
        key = ("AWS4" + secret).encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={sig}")
        url = self.endpoint + cpath + (f"?{cquery}" if cquery else "")
        req = urllib.request.Request(  # noqa: S310 - the endpoint is an https URL
            url, data=body if method in ("PUT", "POST") else None, method=method,
            headers={k: v for k, v in headers.items() if k != "host"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:  # noqa: S310 - https endpoint
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def _norm(doc: object) -> object:
    """A policy document in a canonical form (the server reorders actions and resources)."""
    if isinstance(doc, dict):
        return {k: _norm(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return sorted((_norm(v) for v in doc), key=lambda v: json.dumps(v, sort_keys=True))
    return doc


def encrypt(password: str, data: bytes) -> bytes:
    from argon2.low_level import Type, hash_secret_raw
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(32), os.urandom(8)
    key = hash_secret_raw(password.encode(), salt, time_cost=1, memory_cost=64 * 1024, parallelism=4,
                          hash_len=32, type=Type.ID)
    aead = AESGCM(key)
    ad = b"\x80" + aead.encrypt(nonce + (0).to_bytes(4, "little"), b"", None)
    return salt + b"\x00" + nonce + aead.encrypt(nonce + (1).to_bytes(4, "little"), data, ad)


def main() -> None:
    module = AnsibleModule(argument_spec={
        "endpoint": {"type": "str", "required": True},
        "access_key": {"type": "str", "required": True},
        "secret_key": {"type": "str", "required": True, "no_log": True},
        "ca_file": {"type": "str"},
        "buckets": {"type": "list", "elements": "str", "default": []},
        "policies": {"type": "dict", "default": {}},
        # Each user's secret is no_log, so the task can show what failed without showing secrets.
        "users": {"type": "list", "elements": "dict", "default": [], "options": {
            "access_key": {"type": "str", "required": True},
            "secret_key": {"type": "str", "required": True, "no_log": True},
            "policy": {"type": "str", "required": True},
        }},
    }, supports_check_mode=True)
    p = module.params
    m = Minio(p["endpoint"], p["access_key"], p["secret_key"], p["ca_file"])
    changed: list[str] = []

    def need(ok: bool, what: str, status: int, body: bytes) -> None:
        if not ok:
            module.fail_json(msg=f"MinIO {what} failed: HTTP {status}: {body[:500].decode(errors='replace')}")

    for bucket in p["buckets"]:
        status, body = m.request("HEAD", f"/{bucket}")
        if status == 404:
            changed.append(f"bucket {bucket}")
            if not module.check_mode:
                status, body = m.request("PUT", f"/{bucket}")
                # A retried PUT whose first try was answered late finds the bucket made: that is done.
                done = status == 200 or (status == 409 and b"BucketAlreadyOwnedByYou" in body)
                need(done, f"creating bucket {bucket}", status, body)
        else:
            need(status == 200, f"checking bucket {bucket}", status, body)

    for name, doc in p["policies"].items():
        status, body = m.request("GET", "/minio/admin/v3/info-canned-policy", {"name": name, "v": "2"})
        current = None
        if status == 200:
            info = json.loads(body)
            current = info.get("Policy", info)
        if _norm(current) != _norm(doc):
            changed.append(f"policy {name}")
            if not module.check_mode:
                status, body = m.request("PUT", "/minio/admin/v3/add-canned-policy", {"name": name},
                                         json.dumps(doc).encode())
                need(status == 200, f"adding policy {name}", status, body)

    for user in p["users"]:
        ak, sk, policy = user["access_key"], user["secret_key"], user["policy"]
        status, body = m.request("GET", "/minio/admin/v3/user-info", {"accessKey": ak})
        info = json.loads(body) if status == 200 else {}
        # The secret is right if the server accepts the user's signature (403 AccessDenied is fine:
        # the user is no administrator; a wrong secret is SignatureDoesNotMatch or InvalidAccessKeyId).
        secret_ok = False
        if info.get("status") == "enabled":
            st, b = m.request("GET", "/minio/admin/v3/info", creds=(ak, sk))
            secret_ok = st == 200 or (st == 403 and b"SignatureDoesNotMatch" not in b
                                      and b"InvalidAccessKeyId" not in b)
        if not secret_ok:
            changed.append(f"user {ak}")
            if not module.check_mode:
                secret = json.dumps({"secretKey": sk, "status": "enabled"}).encode()
                payload = encrypt(p["secret_key"], secret)
                status, body = m.request("PUT", "/minio/admin/v3/add-user", {"accessKey": ak}, payload)
                need(status == 200, f"adding user {ak}", status, body)
        if info.get("policyName") != policy:
            changed.append(f"policy of {ak}")
            if not module.check_mode:
                status, body = m.request("PUT", "/minio/admin/v3/set-user-or-group-policy",
                                         {"policyName": policy, "userOrGroup": ak, "isGroup": "false"})
                need(status == 200, f"attaching policy {policy} to {ak}", status, body)

    status, body = m.request("GET", "/minio/admin/v3/info")
    need(status == 200, "reading the server info", status, body)
    backend = json.loads(body).get("backend", {})
    pool = {"backend": backend.get("backendType"), "parity": backend.get("standardSCParity"),
            "drives_online": backend.get("onlineDisks"), "drives_offline": backend.get("offlineDisks"),
            "drives_per_set": backend.get("totalDrivesPerSet")}
    module.exit_json(changed=bool(changed), changes=changed, pool=pool)


if __name__ == "__main__":
    main()
