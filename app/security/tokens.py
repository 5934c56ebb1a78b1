"""Bearer tokens: an HMAC-signed payload with an expiry; revocation is checked against the account row
(an enterprise token's API credential; an owner's or shop user's token generation, which logout and a
password change raise, so every earlier token of that account stops working)."""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Literal

from app.domain.errors import AppError

Kind = Literal["enterprise", "owner", "shop"]


@dataclass(frozen=True)
class TokenClaims:
    kind: Kind
    subject: int  # enterprise id, owner id or shop user id
    credential: int | None  # the API credential an enterprise token was issued from
    expires: int
    generation: int = 0  # the account's token generation when issued (tokens before it: 0)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("secret_key must be at least 16 bytes")
        self._key = hashlib.sha256(b"token:" + key).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(
        self, kind: Kind, subject: int, ttl: int, credential: int | None = None, generation: int = 0
    ) -> tuple[str, int]:
        expires = int(time.time()) + ttl
        payload = {"k": kind, "s": subject, "c": credential, "e": expires, "g": generation}
        body = _b64(json.dumps(payload).encode())
        return f"v1.{body}.{self._mac(body)}", expires

    def verify(self, token: str, kind: Kind) -> TokenClaims:
        try:
            version, body, mac = token.split(".")
            if version != "v1" or not hmac.compare_digest(mac, self._mac(body)):
                raise ValueError
            data = json.loads(_unb64(body))
            claims = TokenClaims(data["k"], int(data["s"]), data["c"], int(data["e"]), int(data.get("g", 0)))
        except (ValueError, KeyError, TypeError) as exc:
            raise AppError("TOKEN_INVALID", 401) from exc
        if claims.kind != kind:
            raise AppError("TOKEN_INVALID", 401)
        if claims.expires < time.time():
            raise AppError("TOKEN_EXPIRED", 401)
        return claims
