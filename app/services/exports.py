"""Statistics as files: one table as CSV (UTF-8 with BOM, so spreadsheet software reads the Chinese),
or every table as one XLSX workbook with a sheet per table.

Names in the tables come from enterprises and their uploads, so a cell may start like a formula
(`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`, `@SUM(1)`): spreadsheet software would run it on the
regulator's desk (OWASP "CSV injection"). Every such text is neutralised: in CSV it gets a leading
single quote, in XLSX it is written as a string cell (never a formula) with the quote-prefix style,
so Excel and WPS keep it as text even when the cell is edited."""

import csv
import io
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Font
from sqlalchemy.orm import Session

from app.domain.errors import AppError
from app.security.auditlog import AuditLog, Event
from app.security.rbac import Principal
from app.services import statistics
from app.services.statistics import TABLE_KEYS, TABLES, Table

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# What spreadsheet software may read as the start of a formula: the OWASP list (= + - @, tab, carriage
# return) and their full-width forms, which some Excel/WPS input modes turn into the ASCII ones.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def formula_like(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(FORMULA_START)


def _value(v: Any) -> Any:
    return "" if v is None else v if isinstance(v, int | float) else str(v)


def _csv_value(v: Any) -> Any:
    v = _value(v)
    return "'" + v if formula_like(v) else v


def _xlsx_row(ws: Any, values: list[Any]) -> None:
    """Append a row whose text cells are strings, whatever they start with (openpyxl would store a
    text starting with '=' as a formula)."""
    cells = []
    for v in values:
        cell = Cell(ws, value=_value(v))
        if formula_like(cell.value) or cell.data_type == "f":
            cell.data_type = "s"
            cell.quotePrefix = True
        cells.append(cell)
    ws.append(cells)


def to_csv(stats: dict[str, Any], table_key: str) -> bytes:
    table = TABLE_KEYS.get(table_key)
    if table is None:
        raise AppError("STATS_TABLE_UNKNOWN", 404)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([_csv_value(c.title) for c in table.columns])
    for row in stats["tables"][table.key]:
        w.writerow([_csv_value(row.get(c.key)) for c in table.columns])
    return ("\ufeff" + buf.getvalue()).encode()


def sheet_title(t: Table) -> str:
    """'维修量（按地区）' → '维修量-按地区': sheet names allow at most 31 characters, none of []:*?/\\."""
    return t.title.replace("（", "-").replace("）", "")[:31]


def to_xlsx(stats: dict[str, Any]) -> bytes:
    wb = Workbook()
    info = wb.active
    assert info is not None
    info.title = "概况"
    scope, period = stats["scope"], stats["period"]
    _xlsx_row(info, ["统计范围", scope["region_name"], scope["region_code"]])
    _xlsx_row(info, ["统计期间", str(period["start"]), str(period["end"])])
    for k, v in stats["summary"].items():
        _xlsx_row(info, [k, v])
    for t in TABLES:
        ws = wb.create_sheet(sheet_title(t))
        _xlsx_row(ws, [c.title for c in t.columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in stats["tables"][t.key]:
            _xlsx_row(ws, [row.get(c.key) for c in t.columns])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class ExportFile:
    data: bytes
    media_type: str
    filename: str


def export(
    s: Session,
    audit: AuditLog,
    who: Principal,
    period: statistics.Period,
    region: str | None,
    fmt: str,
    table: str,
) -> ExportFile:
    """A regulator's export, from the API or the portal: compute, render the file, and audit the export
    in the caller's transaction."""
    stats = statistics.compute(s, who, period, region)
    if fmt == "csv":
        data, media, name = to_csv(stats, table), "text/csv; charset=utf-8", f"{table}.csv"
    elif fmt == "xlsx":
        data, media, name = to_xlsx(stats), XLSX, "statistics.xlsx"
    else:
        raise AppError("EXPORT_FORMAT", 422)
    audit.record(
        s,
        Event(
            who.actor_kind,
            str(who.id),
            "stats.export",
            f"region:{stats['scope']['region_code']}",
            "success",
            {
                "format": fmt,
                "table": table if fmt == "csv" else "all",
                "start": str(period.start),
                "end": str(period.end),
            },
            who.request_id,
            who.client_ip,
        ),
    )
    return ExportFile(data, media, f"统计-{stats['scope']['region_code']}-{period.start}-{period.end}-{name}")
