"""The Reports page's chart: requests received per month (bars) and the on-time rate (a line),
drawn on the server as inline SVG, so it needs no script and no charting library.

The numbers are also in the table under the chart; the SVG carries a title and a description
for screen readers.
"""

from collections.abc import Sequence
from html import escape

from app.reports.schemas import MonthFigures

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 52, 20, 44
BAR_COLOUR, RATE_COLOUR, GRID_COLOUR, TEXT_COLOUR = "#1d4ed8", "#b45309", "#d1d5db", "#111827"
MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _label(month: str) -> str:
    year, number = month.split("-")
    return f"{MONTH_NAMES[int(number) - 1]} {year[2:]}"


def monthly_chart(months: Sequence[MonthFigures]) -> str:
    """An SVG document fragment (safe to insert unescaped: every text is escaped here)."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    # Four grid steps of 1, 2 or 5 times a power of ten: whole numbers on the left axis.
    step = _nice_ceiling(-(-max([month.received for month in months] + [1]) // 4))
    top = 4 * step
    slot = plot_width / max(len(months), 1)
    bar_width = max(slot * 0.6, 1.0)
    base = TOP + plot_height

    def y_for_count(count: int) -> float:
        return base - plot_height * count / top

    def y_for_rate(rate: float) -> float:
        return base - plot_height * rate

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'role="img" aria-labelledby="chart-title chart-desc" class="chart">',
        '<title id="chart-title">Requests received and on-time rate per month</title>',
        '<desc id="chart-desc">Bars: requests received each month (left axis). Line: the share '
        "of that month's completed requests answered on time (right axis). The table below "
        "gives the same figures.</desc>",
    ]
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = base - plot_height * fraction
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{TEXT_COLOUR}">{int(top * fraction)}</text>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}" font-size="11" '
            f'fill="{RATE_COLOUR}">{round(fraction * 100)}%</text>'
        )
    points = []
    label_every = max(1, round(len(months) / 12))
    for position, month in enumerate(months):
        centre = LEFT + slot * (position + 0.5)
        y = y_for_count(month.received)
        parts.append(
            f'<rect x="{centre - bar_width / 2:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
            f'height="{base - y:.1f}" fill="{BAR_COLOUR}">'
            f"<title>{escape(_label(month.month))}: {month.received} received</title></rect>"
        )
        if position % label_every == 0:
            parts.append(
                f'<text x="{centre:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" '
                f'fill="{TEXT_COLOUR}">{escape(_label(month.month))}</text>'
            )
        if month.on_time_rate is not None:
            points.append((centre, y_for_rate(month.on_time_rate), month))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{RATE_COLOUR}" stroke-width="2"/>'
        )
    for x, y, month in points:
        rate = round((month.on_time_rate or 0) * 100)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{RATE_COLOUR}">'
            f"<title>{escape(_label(month.month))}: {rate}% on time</title></circle>"
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11" fill="{BAR_COLOUR}">'
        "&#9632; received</text>"
        f'<text x="{LEFT + 90}" y="{HEIGHT - 8}" font-size="11" fill="{RATE_COLOUR}">'
        "&#9679; on time (% of completed)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
