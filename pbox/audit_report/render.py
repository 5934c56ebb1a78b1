"""Write the report: JSON for machines, HTML (pbox/templates/audit/report.html.j2) for auditors."""

import json
from pathlib import Path

import jinja2

from pbox.audit_report.model import Report
from pbox.paths import TEMPLATES as PBOX_TEMPLATES

TEMPLATES = PBOX_TEMPLATES / "audit"
CLAUSE_TITLES = {
    "8.1.3.2": "区域边界 访问控制 (boundary access control)",
    "8.1.4.1": "身份鉴别 (identification and authentication)",
    "8.1.4.2": "访问控制 (access control)",
    "8.1.4.3": "安全审计 (security audit)",
    "8.1.4.4": "入侵防范 (intrusion prevention)",
    "8.1.4.6": "可信验证 (trusted verification)",
    "8.1.4.8": "数据保密性 (data confidentiality)",
    "8.1.5": "安全管理中心 (security management centre)",
}


def clause_title(clause: str) -> str:
    return CLAUSE_TITLES.get(clause.split()[0], "")


def html(report: Report) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(report=report, clause_title=clause_title)


def write(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, page = out_dir / "report.json", out_dir / "report.html"
    js.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    page.write_text(html(report), encoding="utf-8")
    return js, page
