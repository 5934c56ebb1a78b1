"""The car's file (一车一档) as a PDF an owner can download and print: every live repair, in order,
with its work items, parts and costs. Rendered from the same audited history the owner sees.

The Chinese font comes from the operating system (Debian fonts-wqy-microhei, installed on app hosts
by the app role and on the controller by scripts/bootstrap-controller.sh).
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from app.domain.clock import CHINA
from app.domain.reference import code_tables

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # Debian fonts-wqy-microhei
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),  # RHEL family wqy-microhei-fonts
)


def font_path() -> Path:
    for p in FONT_CANDIDATES:
        if p.exists():
            return p
    raise RuntimeError("no CJK font: install fonts-wqy-microhei (Debian) or wqy-microhei-fonts (RHEL)")


def _money(v: Any) -> str:
    return "-" if v is None else f"{v}"


def render(history: dict[str, Any], generated_at: datetime) -> bytes:
    pdf = FPDF(format="A4")
    pdf.add_font("cjk", fname=str(font_path()))
    pdf.set_font("cjk", size=10)
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(f"机动车维修电子健康档案 {history['vin']}")
    pdf.add_page()
    pdf.set_font_size(16)
    pdf.cell(0, 10, "机动车维修电子健康档案", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font_size(10)
    v = history.get("vehicle") or {}
    fuel = code_tables()["fuel_type"].get(v.get("fuel_type") or "", "")
    for line in (
        f"车辆识别代号（VIN）：{history['vin']}",
        f"号牌号码：{v.get('plate_no') or '-'}    品牌型号：{v.get('brand') or ''} {v.get('model') or ''}",
        f"燃料种类：{fuel or '-'}",
        f"维修记录：{len(history['records'])} 条",
        f"生成时间：{generated_at.astimezone(CHINA):%Y-%m-%d %H:%M}",
    ):
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    head = FontFace(fill_color=(230, 236, 245))
    # oldest first: a file reads as the car's life in order
    for rec in sorted(history["records"], key=lambda r: (r["settle_date"], r["record_id"])):
        pdf.ln(4)
        pdf.set_font_size(12)
        pdf.cell(
            0,
            8,
            f"{rec['settle_date']}  {rec.get('enterprise_name') or '维修企业'}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font_size(9)
        pdf.multi_cell(
            0,
            5,
            f"结算清单号：{rec['settlement_no']}  维修类别：{rec.get('repair_type_name') or '-'}  "
            f"送修日期：{rec.get('repair_date') or '-'}  里程：{rec.get('mileage_km') or '-'} km\n"
            f"故障描述：{rec.get('fault_description') or '-'}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        if rec.get("items"):
            with pdf.table(col_widths=(60, 15, 20), headings_style=head, line_height=5) as t:
                t.row(["维修项目", "工时", "工时费（元）"])
                for i in rec["items"]:
                    t.row([str(i.get("name", "")), str(i.get("hours", "")), str(i.get("fee", ""))])
        if rec.get("parts"):
            pdf.ln(1)
            with pdf.table(col_widths=(40, 20, 20, 10, 15), headings_style=head, line_height=5) as t:
                t.row(["配件名称", "编码", "品牌", "数量", "单价（元）"])
                for p in rec["parts"]:
                    t.row([str(p.get(k) or "") for k in ("name", "code", "brand", "quantity", "unit_price")])
        tot = rec.get("totals") or {}
        pdf.cell(
            0,
            6,
            f"工时费 {_money(tot.get('labour'))}  配件费 {_money(tot.get('parts'))}  "
            f"其他 {_money(tot.get('other'))}  合计 {_money(tot.get('total'))} 元",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    return bytes(pdf.output())
