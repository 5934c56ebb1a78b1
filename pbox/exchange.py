"""`pbox exchange …`: talks to a node's exchange administration API as a system administrator."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class AdminError(Exception):
    pass


@dataclass
class NodeAdmin:
    url: str
    token: str
    cacert: Path | None = None

    def _client(self) -> httpx.Client:
        import ssl

        verify = ssl.create_default_context(cafile=str(self.cacert)) if self.cacert else True
        return httpx.Client(base_url=self.url.rstrip("/"), verify=verify, timeout=120,
                            headers={"Authorization": f"Bearer {self.token}"})

    def call(self, method: str, path: str) -> Any:
        with self._client() as c:
            try:
                r = c.request(method, f"/api/v1/admin/exchange{path}")
            except httpx.HTTPError as e:
                raise AdminError(f"{self.url}: {e}") from e
        if r.status_code != 200:
            try:
                code = r.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = r.text[:200]
            raise AdminError(f"{self.url}: HTTP {r.status_code} {code}")
        return r.json()


def login(url: str, username: str, password: str, totp: str, cacert: Path | None) -> str:
    """A staff session token (password + TOTP), as the portal's login does."""
    import ssl

    verify = ssl.create_default_context(cafile=str(cacert)) if cacert else True
    r = httpx.post(f"{url.rstrip('/')}/api/v1/staff/token", verify=verify, timeout=30,
                   json={"username": username, "password": password, "totp_code": totp})
    if r.status_code != 200:
        raise AdminError(f"login refused: HTTP {r.status_code} {r.text[:200]}")
    return str(r.json()["access_token"])
