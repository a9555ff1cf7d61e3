"""A line chart as SVG markup, drawn on the server from numbers only (no script, so the CSP
stays strict; the overview's live chart is the same shape, redrawn by static/console.js)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 900, 160, 4  # static/console.js draws the same size


def line_chart(points: Sequence[tuple[float, int | float]], label: str) -> Markup:
    """`points` as (x, y), x increasing; an empty chart says so."""
    head = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{escape(label)}">')  # fmt: skip
    if len(points) < 2:
        return Markup(head + f'<text x="10" y="{HEIGHT // 2}">no samples yet</text></svg>')
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    top = max(max(ys), 1)
    span = (x1 - x0) or 1
    coords = " ".join(
        f"{PAD + (x - x0) / span * (WIDTH - 2 * PAD):.1f},"
        f"{HEIGHT - PAD - y / top * (HEIGHT - 2 * PAD):.1f}"
        for x, y in points
    )
    return Markup(
        head + f'<polyline fill="none" stroke="currentColor" stroke-width="2" '
        f'points="{coords}"/><text x="8" y="16">max {top:,}</text></svg>'
    )
