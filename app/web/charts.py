"""Bar charts as inline SVG, drawn on the server: the statistics pages need no JavaScript library."""

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup, escape

ROW = 22
LABEL_W = 150
BAR_W = 300
VALUE_W = 70


def _number(v: Any) -> float:
    try:
        return float(Decimal(str(v)))
    except (InvalidOperation, ValueError):
        return 0.0


def bar_chart(
    rows: Sequence[Mapping[str, Any]], label: str, value: str, title: str, limit: int = 15
) -> Markup:
    """Horizontal bars, one per row (the first `limit` rows), scaled to the largest value."""
    rows = [r for r in rows if r.get(value) is not None][:limit]
    if not rows:
        return Markup("")
    top = max(_number(r[value]) for r in rows) or 1.0
    width = LABEL_W + BAR_W + VALUE_W
    height = ROW * len(rows) + 4
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i, r in enumerate(rows):
        y = 2 + i * ROW
        n = _number(r[value])
        w = max(1.0, BAR_W * n / top) if n > 0 else 0.0
        name = str(r.get(label) or "—")
        short = name if len(name) <= 10 else name[:9] + "…"
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(short)}</text>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}" fill="#2b6cb0"/>'
            f'<text x="{LABEL_W + w + 4:.1f}" y="{y + 15}" font-size="12">{escape(str(r[value]))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is escaped above
