"""Importing the province's licence roster (道路运政 licensed repair shops) from CSV or XLSX.

Each row is validated on its own (app.domain.roster): the good rows are imported (upserted by USCC,
so a re-import updates a shop's row), the bad ones reported with their line number and reasons and
left out. Then the roster acts on enterprises already registered: a pending one whose licence is in
force (same licence number and region) is approved; an active one whose licence is revoked,
cancelled, suspended or expired is suspended, which stops its tokens at once; one suspended by an
earlier roster is reinstated when its licence is in force again. Every change is audited.
"""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Enterprise, LicenceRoster
from app.domain.clock import now, today_in_china
from app.domain.roster import COLUMNS, LICENCE_STATUS_NAMES, REQUIRED, RosterRow, parse_row
from app.security.auditlog import AuditLog, Event

CHUNK = 1000


class RosterFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, missing columns)."""


@dataclass
class ImportReport:
    imported: int = 0
    bad: list[tuple[int, list[str]]] = field(default_factory=list)  # (line, reasons)
    approved: list[str] = field(default_factory=list)  # USCCs
    suspended: list[str] = field(default_factory=list)
    reinstated: list[str] = field(default_factory=list)


def _check_header(header: Iterable[Any]) -> None:
    names = {str(h).strip() for h in header if h is not None}
    missing = [COLUMNS[k] for k in REQUIRED if COLUMNS[k] not in names]
    if missing:
        raise RosterFileError(f"第 1 行（表头）缺少列：{'、'.join(missing)}")


def _csv_text(data: bytes) -> str:
    # exports from Chinese office software are UTF-8 (often with BOM) or GB18030
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterFileError("CSV 文件编码无法识别（应为 UTF-8 或 GB18030）")


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row by column name) of a .csv or .xlsx file (the first sheet); blank rows skipped."""
    suffix = path.suffix.lower()
    out: list[tuple[int, dict[str, Any]]] = []
    if suffix == ".csv":
        reader = csv.reader(io.StringIO(_csv_text(path.read_bytes()), newline=""))
        header = [h.strip() for h in next(reader, [])]
        _check_header(header)
        for row in reader:
            if any(c.strip() for c in row):
                out.append((reader.line_num, dict(zip(header, row, strict=False))))
        return out
    if suffix == ".xlsx":
        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
            raise RosterFileError(f"不是有效的 XLSX 文件：{exc}") from exc
        try:
            ws = wb.worksheets[0]
            rows = ws.iter_rows(values_only=True)
            header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
            _check_header(header)
            for n, row in enumerate(rows, start=2):
                if any(c is not None and str(c).strip() for c in row):
                    out.append((n, dict(zip(header, row, strict=False))))
        finally:
            wb.close()
        return out
    raise RosterFileError("只支持 .csv 和 .xlsx 文件")


def parse_rows(rows: list[tuple[int, dict[str, Any]]], report: ImportReport) -> list[RosterRow]:
    good: dict[str, tuple[int, RosterRow]] = {}
    for line, raw in rows:
        row, errors = parse_row(raw)
        if row is not None and row.uscc in good:
            errors = [f"统一社会信用代码: 与第 {good[row.uscc][0]} 行重复"]
        if errors or row is None:
            report.bad.append((line, errors))
            continue
        good[row.uscc] = (line, row)
    return [r for _, r in good.values()]


def _event(audit: AuditLog, session: Session, actor: str, action: str, e: Enterprise, **detail: Any) -> None:
    audit.record(
        session,
        Event("operator", actor[:60], action, f"enterprise:{e.id}", "success", {"uscc": e.uscc, **detail}),
    )


def import_rows(
    session: Session, audit: AuditLog, rows: list[tuple[int, dict[str, Any]]], actor: str, source: str = ""
) -> ImportReport:
    """Import the good rows and apply the roster to registered enterprises; see the module docstring."""
    report = ImportReport()
    good = parse_rows(rows, report)
    at = now()
    for i in range(0, len(good), CHUNK):
        values = [{**r.__dict__, "imported_at": at} for r in good[i : i + CHUNK]]
        stmt = pg_insert(LicenceRoster).values(values)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["uscc"], set_={c: stmt.excluded[c] for c in values[0] if c != "uscc"}
            )
        )
    report.imported = len(good)
    today = today_in_china()
    by_uscc = {r.uscc: r for r in good}
    for i in range(0, len(good), CHUNK):
        chunk = [r.uscc for r in good[i : i + CHUNK]]
        for e in session.scalars(
            select(Enterprise).where(Enterprise.uscc.in_(chunk)).order_by(Enterprise.id).with_for_update()
        ):
            r = by_uscc[e.uscc]
            status_name = LICENCE_STATUS_NAMES[r.licence_status]
            detail = {"licence_status": r.licence_status, "valid_until": str(r.valid_until or "")}
            if r.in_force(today):
                matches = e.licence_no == r.licence_no and e.region_code == r.region_code
                if e.status == "pending" and matches:
                    e.status, e.status_reason, e.status_source = "active", None, "roster"
                    report.approved.append(e.uscc)
                    _event(audit, session, actor, "enterprise.approve", e, via="roster", **detail)
                elif e.status == "suspended" and e.status_source == "roster":
                    e.status, e.status_reason = "active", None
                    report.reinstated.append(e.uscc)
                    _event(audit, session, actor, "enterprise.reinstate", e, via="roster", **detail)
                else:
                    continue
            elif e.status == "active":
                expired = r.licence_status == "valid"  # in the roster as valid, but past its date
                why = f"有效期至 {r.valid_until} 已过" if expired else f"许可状态为“{status_name}”"
                e.status, e.status_source = "suspended", "roster"
                e.status_reason = f"道路运政许可名册中该企业{why}"
                report.suspended.append(e.uscc)
                _event(audit, session, actor, "enterprise.suspend", e, via="roster", **detail)
            else:
                continue
            e.status_by, e.status_at = None, at
    audit.record(
        session,
        Event("operator", actor[:60], "roster.import", f"file:{source}"[:60], "success" if not report.bad
              else "failure", {"imported": report.imported, "bad_rows": len(report.bad),
              "approved": len(report.approved), "suspended": len(report.suspended),
              "reinstated": len(report.reinstated)}),
    )  # fmt: skip
    return report


def import_file(session: Session, audit: AuditLog, path: Path, actor: str) -> ImportReport:
    return import_rows(session, audit, read_rows(path), actor, path.name)
