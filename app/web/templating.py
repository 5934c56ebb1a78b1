"""Templates, their filters, and the one way pages are rendered."""

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.domain.clock import CHINA
from app.domain.reference import code_tables
from app.web import charts
from app.web.session import COOKIES

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(v: datetime | date | None, with_time: bool = True) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        v = v.astimezone(CHINA)
        return f"{v:%Y-%m-%d %H:%M}" if with_time else f"{v:%Y-%m-%d}"
    return f"{v:%Y-%m-%d}"


def _money(v: Decimal | str | None) -> str:
    return "" if v is None else f"{Decimal(v):,.2f}"


templates.env.filters["when"] = _when
templates.env.filters["day"] = lambda v: _when(v, with_time=False)
templates.env.filters["money"] = _money
templates.env.globals["codes"] = code_tables()
templates.env.globals["bar_chart"] = charts.bar_chart
templates.env.globals["distribution_chart"] = charts.distribution_chart


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    signed_in = {kind: cookie in request.cookies for kind, cookie in COOKIES.items()}
    return templates.TemplateResponse(request, name, {"signed_in": signed_in, **ctx}, status_code=status)
