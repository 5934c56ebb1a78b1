"""The one way to read data about people and their cars: each read is authorized and audited.

Callers pass a Principal (who is asking) and get data back only through these methods, so when RBAC
with region scope arrives it replaces `_authorize` and nothing else.
"""

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, insert, select
from sqlalchemy.orm import Session

from app.db.models import Enterprise, ReadLog, RecordVersion, RepairRecord, Vehicle
from app.domain.errors import AppError
from app.domain.reference import code_tables
from app.services import attachments, owners

ActorKind = Literal["owner", "enterprise", "staff", "system"]


@dataclass(frozen=True)
class Principal:
    kind: ActorKind
    id: int
    request_id: str | None = None


class ReadService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _authorize(self, who: Principal, action: str, vin: str) -> None:
        if action == "vehicle_history" and who.kind == "owner" and owners.owns(self.session, who.id, vin):
            return
        raise AppError("VEHICLE_NOT_BOUND" if who.kind == "owner" else "FORBIDDEN", 403)

    def _audit(self, who: Principal, action: str, subject: str) -> None:
        self.session.execute(
            insert(ReadLog).values(
                actor_kind=who.kind,
                actor_id=str(who.id),
                action=action,
                subject=subject,
                request_id=who.request_id,
            )
        )

    def vehicle_history(self, who: Principal, vin: str) -> dict[str, Any]:
        """The car's file: every live record at its latest version, newest first; withdrawn ones hidden."""
        self._authorize(who, "vehicle_history", vin)
        self._audit(who, "vehicle_history", vin)
        rows = self.session.execute(
            select(RecordVersion, Enterprise.name, Enterprise.uscc)
            .join(
                RepairRecord,
                and_(
                    RecordVersion.record_id == RepairRecord.id,
                    RecordVersion.version == RepairRecord.current_version,
                    RecordVersion.received_at == RepairRecord.current_received_at,
                ),
            )
            .join(Enterprise, Enterprise.id == RepairRecord.enterprise_id)
            .where(RepairRecord.vin == vin, RepairRecord.status == "active")
            .order_by(RepairRecord.settle_date.desc(), RepairRecord.id.desc())
        ).all()
        files = attachments.list_for(self.session, [v.record_id for v, _, _ in rows])
        repair_types = code_tables()["repair_type"]
        vehicle = self.session.get(Vehicle, vin)
        return {
            "vin": vin,
            "vehicle": None
            if vehicle is None
            else {
                "plate_no": vehicle.plate_no,
                "brand": vehicle.brand,
                "model": vehicle.model,
                "fuel_type": vehicle.fuel_type,
                "use_nature": vehicle.use_nature,
            },
            "records": [
                {
                    "record_id": v.record_id,
                    "version": v.version,
                    "enterprise_name": name,
                    "enterprise_uscc": uscc,
                    "settlement_no": v.settlement_no,
                    "repair_date": v.repair_date,
                    "settle_date": v.settle_date,
                    "mileage_km": v.mileage_km,
                    "fault_description": v.fault_description,
                    "repair_type": v.repair_type,
                    "repair_type_name": repair_types.get(v.repair_type or ""),
                    "plate_no": v.plate_no,
                    "items": v.items,
                    "parts": v.parts,
                    "totals": {
                        "labour": v.labour_total,
                        "parts": v.parts_total,
                        "other": v.other_total,
                        "total": v.total,
                    },
                    "attachments": [
                        {
                            "id": a.id,
                            "kind": a.kind,
                            "content_type": a.content_type,
                            "size_bytes": a.size_bytes,
                            "sha256": a.sha256,
                        }
                        for a in files
                        if a.record_id == v.record_id
                    ],
                }
                for v, name, uscc in rows
            ],
        }
