"""Statistics as files: one table as CSV (UTF-8 with BOM, so spreadsheet software reads the Chinese),
or every table as one XLSX workbook with a sheet per table."""

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from app.domain.errors import AppError
from app.services.statistics import TABLE_KEYS, TABLES, Table


def _value(v: Any) -> Any:
    return "" if v is None else v if isinstance(v, int | float) else str(v)


def to_csv(stats: dict[str, Any], table_key: str) -> bytes:
    table = TABLE_KEYS.get(table_key)
    if table is None:
        raise AppError("STATS_TABLE_UNKNOWN", 404)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.title for c in table.columns])
    for row in stats["tables"][table.key]:
        w.writerow([_value(row.get(c.key)) for c in table.columns])
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
    info.append(["统计范围", scope["region_name"], scope["region_code"]])
    info.append(["统计期间", str(period["start"]), str(period["end"])])
    for k, v in stats["summary"].items():
        info.append([k, _value(v)])
    for t in TABLES:
        ws = wb.create_sheet(sheet_title(t))
        ws.append([c.title for c in t.columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in stats["tables"][t.key]:
            ws.append([_value(row.get(c.key)) for c in t.columns])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
