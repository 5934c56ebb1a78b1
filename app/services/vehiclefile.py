"""The car's file (一车一档) as a PDF an owner can download and print: every live repair, in order,
with its work items, parts and costs. Rendered from the same audited history the owner sees.

The Chinese font comes from the operating system (Debian fonts-wqy-microhei, installed on app hosts
by the app role and on the controller by scripts/bootstrap-controller.sh). ReportLab parses it once
per process; each document then embeds only the glyphs it uses.
"""

import io
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.domain.clock import CHINA
from app.domain.reference import code_tables

FONT = "cjk"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # Debian fonts-wqy-microhei
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),  # RHEL family wqy-microhei-fonts
)


def font_path() -> Path:
    for p in FONT_CANDIDATES:
        if p.exists():
            return p
    raise RuntimeError("no CJK font: install fonts-wqy-microhei (Debian) or wqy-microhei-fonts (RHEL)")


@cache
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(TTFont(FONT, str(font_path()), subfontIndex=0))
    # one face for every style: <b> in a paragraph must not fall back to a font without Chinese
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT, italic=FONT, boldItalic=FONT)
    base = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=14, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=16, leading=22, alignment=1, spaceAfter=6),
        "h": ParagraphStyle("h", parent=base, fontSize=12, leading=18, spaceBefore=8, spaceAfter=2),
        "body": base,
    }


def _text(v: Any) -> str:
    """Plain text for a Paragraph (which reads a little markup): escape it."""
    return (
        "-"
        if v is None or v == ""
        else str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _table(rows: list[list[str]], widths: list[float], first_number: int) -> Table:
    """A ruled table with a shaded heading; columns from `first_number` on are figures, set right."""
    t = Table(rows, colWidths=[w * mm for w in widths], repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 9),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6ecf5")),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#a0aec0")),
                ("ALIGN", (first_number, 0), (-1, -1), "RIGHT"),
            ]
        )
    )
    return t


def render(history: dict[str, Any], generated_at: datetime) -> bytes:
    st = _styles()
    v = history.get("vehicle") or {}
    fuel = code_tables()["fuel_type"].get(v.get("fuel_type") or "", "")
    story: list[Any] = [
        Paragraph("机动车维修电子健康档案", st["title"]),
        Paragraph(f"车辆识别代号（VIN）：{_text(history['vin'])}", st["body"]),
        Paragraph(
            f"号牌号码：{_text(v.get('plate_no'))}　品牌型号：{_text(v.get('brand'))} {_text(v.get('model'))}"
            f"　燃料种类：{_text(fuel)}",
            st["body"],
        ),
        Paragraph(
            f"维修记录：{len(history['records'])} 条　"
            f"生成时间：{generated_at.astimezone(CHINA):%Y-%m-%d %H:%M}",
            st["body"],
        ),
    ]
    # oldest first: a file reads as the car's life in order
    for rec in sorted(history["records"], key=lambda r: (str(r["settle_date"]), r["record_id"])):
        story.append(
            Paragraph(
                f"{_text(rec['settle_date'])}　{_text(rec.get('enterprise_name') or '维修企业')}", st["h"]
            )
        )
        story.append(
            Paragraph(
                f"结算清单号：{_text(rec['settlement_no'])}　维修类别：{_text(rec.get('repair_type_name'))}　"
                f"送修日期：{_text(rec.get('repair_date'))}　里程：{_text(rec.get('mileage_km'))} km<br/>"
                f"故障描述：{_text(rec.get('fault_description'))}",
                st["body"],
            )
        )
        if rec.get("items"):
            rows = [["维修项目", "工时", "工时费（元）"]]
            rows += [[_text(i.get("name")), _text(i.get("hours")), _text(i.get("fee"))] for i in rec["items"]]
            story += [Spacer(1, 2 * mm), _table(rows, [110, 25, 35], 1)]
        if rec.get("parts"):
            rows = [["配件名称", "编码", "品牌", "数量", "单价（元）"]]
            rows += [
                [_text(p.get(k)) for k in ("name", "code", "brand", "quantity", "unit_price")]
                for p in rec["parts"]
            ]
            story += [Spacer(1, 2 * mm), _table(rows, [60, 35, 35, 15, 25], 3)]
        tot = rec.get("totals") or {}
        story.append(
            Paragraph(
                f"工时费 {_text(tot.get('labour'))}　配件费 {_text(tot.get('parts'))}　"
                f"其他 {_text(tot.get('other'))}　<b>合计 {_text(tot.get('total'))} 元</b>",
                st["body"],
            )
        )
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
        title=f"机动车维修电子健康档案 {history['vin']}",
    )  # fmt: skip
    doc.build(story)
    return out.getvalue()
