"""The check of an owner against the vehicle registration data of 公安交管 (traffic police): the proof
of a car's whole history that no repair shop holds.

A query code proves only a relationship with the shop that printed it, and a shop can mint codes
for any VIN. Who the registered owner of a car is, is known to the traffic police: given the VIN,
the plate and the owner's name and ID number (the fields of the 行驶证 and the 身份证), the
province's endpoint answers match or no match. The adapter below speaks a small JSON protocol
(docs/api.md「车辆登记信息核验接口」); the province points `vehicle_registry_url` at its gateway
(or at a shim translating to it). Without it, the 行驶证 photo review by a regulator is the only way
(app.services.claims). The stand-in answers from a JSON file, for the lab and the tests.
"""

import json
import logging
import ssl
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import httpx

from app.settings import Settings

log = logging.getLogger("app.registry")


class Answer(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    UNAVAILABLE = "unavailable"  # the endpoint did not answer, or not in the protocol


@dataclass(frozen=True)
class Query:
    vin: str
    plate_no: str
    owner_name: str
    id_number: str


class VehicleRegistry(Protocol):
    def check(self, query: Query, request_id: str | None = None) -> Answer: ...


class HttpVehicleRegistry:
    """POST the query as JSON; `{"result": "match" | "no_match"}` back. Anything else is UNAVAILABLE,
    never a match: a broken gateway must not bind cars."""

    def __init__(
        self,
        url: str,
        timeout: float,
        token: str | None = None,
        ca_file: Path | None = None,
        cert: tuple[Path, Path] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if cert:  # mutual TLS towards the government gateway
            tls.load_cert_chain(cert[0], cert[1])
        self._url = url
        self._client = httpx.Client(timeout=timeout, headers=headers, verify=tls, transport=transport)

    def check(self, query: Query, request_id: str | None = None) -> Answer:
        try:
            r = self._client.post(self._url, json=asdict(query), headers={"X-Request-Id": request_id or ""})
            result = r.json().get("result") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("vehicle registry unreachable: %s", type(exc).__name__)
            return Answer.UNAVAILABLE
        if result in (Answer.MATCH, Answer.NO_MATCH):
            return Answer(result)
        log.warning("vehicle registry answered outside the protocol (HTTP %s)", r.status_code)
        return Answer.UNAVAILABLE


class StandInRegistry:
    """Lab and test stand-in: the registered vehicles are a JSON list of {vin, plate_no, owner_name,
    id_number} in a file, re-read on each check so a test or the lab can add cars as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def register(self, vin: str, plate_no: str, owner_name: str, id_number: str) -> None:
        """A change of registered owner replaces the car's entry (the car was sold)."""
        rows = [r for r in self._rows() if r["vin"] != vin]
        rows.append({"vin": vin, "plate_no": plate_no, "owner_name": owner_name, "id_number": id_number})
        self.path.write_text(json.dumps(rows, ensure_ascii=False))

    def _rows(self) -> list[dict[str, str]]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def check(self, query: Query, request_id: str | None = None) -> Answer:
        for r in self._rows():
            if r["vin"] == query.vin:
                same = (r["plate_no"], r["owner_name"], r["id_number"].upper()) == (
                    query.plate_no,
                    query.owner_name,
                    query.id_number.upper(),
                )
                return Answer.MATCH if same else Answer.NO_MATCH
        return Answer.NO_MATCH


def from_settings(settings: Settings) -> VehicleRegistry | None:
    """None: no automatic check configured, the 行驶证 photo review is the only way."""
    if settings.vehicle_registry_standin_file is not None:
        log.warning(
            "vehicle registry: STAND-IN from %s (lab/test only)", settings.vehicle_registry_standin_file
        )
        return StandInRegistry(settings.vehicle_registry_standin_file)
    if not settings.vehicle_registry_url:
        return None
    token_file = settings.vehicle_registry_token_file
    cert, key = settings.vehicle_registry_cert_file, settings.vehicle_registry_key_file
    return HttpVehicleRegistry(
        settings.vehicle_registry_url,
        settings.vehicle_registry_timeout_seconds,
        token=token_file.read_text().strip() if token_file else None,
        ca_file=settings.vehicle_registry_ca_file,
        cert=(cert, key) if cert and key else None,
    )
