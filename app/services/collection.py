"""Uploads from enterprise software, whichever door they come through (our API or the national format).

Every record is validated completely before anything is written, so a rejected record leaves no
trace; the valid records of a batch are then stored together.
"""

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from app.domain.errors import FieldError
from app.domain.record import RecordIn, cross_check, parse_record
from app.runtime import Runtime
from app.services.outbox import sink_for
from app.services.records import BatchItem, IngestResult, ingest_many
from app.services.shops import record_rejections

UPLOADS = Counter(
    "pbox_record_uploads_total", "Repair records received, by outcome and reason", ["outcome", "reason"]
)


def count_upload(outcome: str, reasons: list[str] | None = None) -> None:
    for reason in reasons or ["-"]:
        UPLOADS.labels(outcome, reason).inc()


@dataclass
class Outcome:
    index: int
    result: IngestResult | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.result is not None


def validate(
    records: list[RecordIn | Any], complete: bool = True
) -> tuple[list[Outcome], list[BatchItem], list[tuple[Any, list[FieldError]]]]:
    """Every record checked, nothing stored: the outcomes (errors filled in), the valid records, the
    rejected ones with their errors. Also the first step of a bulk import (app.services.imports)."""
    outcomes = [Outcome(i) for i in range(len(records))]
    valid: list[BatchItem] = []
    rejected: list[tuple[Any, list[FieldError]]] = []
    for i, raw in enumerate(records):
        if isinstance(raw, RecordIn):
            rec, errors = raw, cross_check(raw, complete)
        else:
            rec, errors = parse_record(raw, complete)
        if rec is None or errors:
            outcomes[i].errors = errors
            count_upload("rejected", sorted({e.code for e in errors}))
            rejected.append((raw, outcomes[i].errors))
        else:
            valid.append(BatchItem(i, rec))
    return outcomes, valid, rejected


def upload(
    rt: Runtime, enterprise_id: int, records: list[RecordIn | Any], source: str = "api", complete: bool = True
) -> list[Outcome]:
    """`records` may mix already-parsed RecordIn objects with raw dicts still to be parsed."""
    outcomes, valid, rejected = validate(records, complete)
    if valid:
        sink = sink_for(rt.exchange)
        stored = rt.db.run(lambda s: ingest_many(s, rt.codes, enterprise_id, valid, source, sink))
        for i, result in stored.items():
            outcomes[i].result = result
            count_upload("accepted", [result.outcome])
    if rejected:  # kept for the shop portal, so staff can see what to fix
        rt.db.run(lambda s: record_rejections(s, enterprise_id, source, rejected))
    return outcomes
