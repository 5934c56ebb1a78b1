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


# one colour per score, red (1) to green (5)
SCORE_COLOURS = ("#c53030", "#dd6b20", "#d69e2e", "#68a063", "#2f855a")


def distribution_chart(
    rows: Sequence[Mapping[str, Any]], label: str, keys: Sequence[str], title: str
) -> Markup:
    """One stacked bar per row (a rating dimension): its segments are the counts under `keys`
    (scores 1 to 5), in proportion to the row's total; each segment carries its score and count."""
    rows = [r for r in rows if sum(int(r.get(k) or 0) for k in keys) > 0]
    if not rows:
        return Markup("")
    width = LABEL_W + BAR_W + VALUE_W
    height = ROW * (len(rows) + 1) + 4
    parts = [
        f'<svg class="chart distribution" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"'
        ' preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i, r in enumerate(rows):
        y = 2 + i * ROW
        counts = [int(r.get(k) or 0) for k in keys]
        total = sum(counts)
        name = str(r.get(label) or "—")
        parts.append(
            f'<g class="dist-row" data-label="{escape(name)}">'
            f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{escape(name[:10])}</text>"
        )
        x = float(LABEL_W)
        for j, n in enumerate(counts):
            w = BAR_W * n / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}"'
                f' fill="{SCORE_COLOURS[j % len(SCORE_COLOURS)]}" data-score="{j + 1}" data-count="{n}">'
                f"<title>{j + 1} 分：{n}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{LABEL_W + BAR_W + 4}" y="{y + 15}" font-size="12">{total}</text></g>')
    # legend: the colour of each score
    y = 2 + len(rows) * ROW
    for j in range(len(keys)):
        x = LABEL_W + j * 60
        parts.append(
            f'<rect x="{x}" y="{y + 5}" width="12" height="12"'
            f' fill="{SCORE_COLOURS[j % len(SCORE_COLOURS)]}"/>'
            f'<text x="{x + 16}" y="{y + 15}" font-size="12">{j + 1} 分</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is escaped above
