"""A tiny plotting module: line and bar charts as standalone inline SVG strings (no JS, no
fonts, no dependencies), readable at 800×300.

    line_chart({"p99": [(0, 12.5), (1, 14.0)]}, "second", "ms", "Latency", log_y=True)
    bar_chart({"200": 950, "429": 50}, "Status mix")
    bar_chart({"merchant 1": {"ok": 90, "refused": 10}}, "Outcomes")   # stacked
    state_strips({"102": [(0, 5, "closed"), (5, 9, "open")]}, "Breakers", ...)

A point whose y is NaN breaks a line (a gap: nothing known there, e.g. a clock jump).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH_PX = 800
HEIGHT_PX = 300
# Paul Tol's "bright" scheme: distinguishable for colour-blind readers and in greyscale print.
PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
CHAR_PX = 6.6  # rough width of one 11px character, for laying out legends and labels
TITLE_CHAR_PX = 7.8  # the same for the 13px bold title
MAX_MARKED_POINTS = 40


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where the plot area sits in the picture."""

    width: int
    height: int
    left: int = 64
    right: int = 16
    top: int = 34
    bottom: int = 44

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom


def fmt_number(value: float) -> str:
    """Short tick label: 0.05, 2.5, 40, 1.2k, 3M."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude == 0 or magnitude >= 1:
        return f"{value:.3g}"
    return f"{value:.2g}"


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round ticks (steps of 1, 2 or 5 × 10^n) covering [low, high]."""
    if high <= low:
        high = low + 1
    raw_step = (high - low) / max(target, 1)
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw_step)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks at 1, 2, 5 × 10^n (only powers of ten over many decades), from the last one at or
    below `low` to the first one at or above `high`."""
    first = math.floor(math.log10(low))
    last = math.ceil(math.log10(high))
    multiples = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in multiples]
    bottom = max(t for t in ticks if t <= low * (1 + 1e-9))
    top = min((t for t in ticks if t >= high * (1 - 1e-9)), default=ticks[-1])
    kept = [t for t in ticks if bottom <= t <= top]
    return kept if len(kept) > 1 else [bottom, bottom * 10]


def _text(x: float, y: float, label: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#333"{extra}>{escape(label)}</text>'
    )


def _open(frame: _Frame, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{frame.width}" height="{frame.height}" '
        f'viewBox="0 0 {frame.width} {frame.height}" role="img" style="{FONT};max-width:100%">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{frame.width}" height="{frame.height}" fill="#fff"/>',
        f'<text x="{frame.left}" y="18" font-size="13" font-weight="600" '
        f'fill="#111">{escape(title)}</text>',
    ]


def _legend_width(names: Sequence[str]) -> float:
    return sum(len(name) * CHAR_PX + 22 for name in names)


def _framed(width: int, height: int, title: str, legend: Sequence[str]) -> tuple[_Frame, int]:
    """The frame, and the legend's baseline: beside the title, or below it when too wide."""
    frame = _Frame(width, height)
    title_px = len(title) * TITLE_CHAR_PX + 16
    if frame.left + title_px + _legend_width(legend) <= width - frame.right:
        return frame, 19
    return _Frame(width, height, top=frame.top + 16), 35


def _legend(
    frame: _Frame, names: Sequence[str], colours: Sequence[str], baseline: int
) -> list[str]:
    """One row at the top right, laid out from the right edge leftwards."""
    parts = []
    x = frame.width - frame.right - _legend_width(names)
    for name, colour in zip(names, colours, strict=True):
        parts.append(
            f'<rect x="{x:.1f}" y="{baseline - 10}" width="12" height="12" fill="{colour}"/>'
        )
        parts.append(_text(x + 16, baseline, name, "start"))
        x += len(name) * CHAR_PX + 22
    return parts


def _no_data(frame: _Frame) -> str:
    return _text(frame.left + frame.plot_w / 2, frame.top + frame.plot_h / 2, "no data")


def _axes(
    frame: _Frame,
    y_ticks: Sequence[float],
    y_pos: Mapping[float, float],
    x_label: str,
    y_label: str,
) -> list[str]:
    parts = []
    for tick in y_ticks:
        y = y_pos[tick]
        parts.append(
            f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.width - frame.right}" '
            f'y2="{y:.1f}" stroke="#e4e4e4"/>'
        )
        parts.append(_text(frame.left - 6, y + 4, fmt_number(tick), "end"))
    bottom = frame.top + frame.plot_h
    parts.append(
        f'<path d="M{frame.left},{frame.top} V{bottom} H{frame.width - frame.right}" '
        f'fill="none" stroke="#888"/>'
    )
    parts.append(_text(frame.left + frame.plot_w / 2, frame.height - 8, x_label))
    mid_y = frame.top + frame.plot_h / 2
    parts.append(_text(14, mid_y, y_label, extra=f' transform="rotate(-90 14 {mid_y:.1f})"'))
    return parts


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    x_label: str,
    y_label: str,
    title: str,
    log_y: bool = False,
    *,
    width: int = WIDTH_PX,
    height: int = HEIGHT_PX,
    x_ticks: Callable[[float, float], Sequence[float]] | None = None,
    x_format: Callable[[float], str] = fmt_number,
) -> str:
    """One line per series; with `log_y`, points at or below zero are left out. `x_ticks`
    chooses the ticks for the data's x range (default: round numbers), `x_format` labels
    them (and the points' tooltips)."""
    kept = {
        name: sorted(
            ((x, y) for x, y in points if math.isnan(y) or not log_y or y > 0),
            key=lambda p: p[0],
        )
        for name, points in series.items()
    }
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(kept))]
    frame, baseline = _framed(width, height, title, list(kept))
    parts = _open(frame, title) + _legend(frame, list(kept), colours, baseline)
    xs = [x for points in kept.values() for x, _ in points]
    ys = [y for points in kept.values() for _, y in points if not math.isnan(y)]
    if not ys:
        parts += [*_axes(frame, [], {}, x_label, y_label), _no_data(frame), "</svg>"]
        return "\n".join(parts)

    ticks = list(x_ticks(min(xs), max(xs))) if x_ticks else nice_ticks(min(xs), max(xs), 8)
    x_lo, x_hi = min(ticks[0], min(xs)), max(ticks[-1], max(xs))
    if log_y:
        y_ticks = log_ticks(min(ys), max(ys))
        y_lo, y_hi = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
    else:
        y_ticks = nice_ticks(min(0.0, min(ys)), max(ys))
        y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return frame.left + (x - x_lo) / ((x_hi - x_lo) or 1) * frame.plot_w

    def py(y: float) -> float:
        v = math.log10(y) if log_y else y
        return frame.top + frame.plot_h - (v - y_lo) / ((y_hi - y_lo) or 1) * frame.plot_h

    parts += _axes(frame, y_ticks, {t: py(t) for t in y_ticks}, x_label, y_label)
    bottom = frame.top + frame.plot_h
    for tick in ticks:
        parts.append(f'<line x1="{px(tick):.1f}" y1="{bottom}" x2="{px(tick):.1f}" '
                     f'y2="{bottom + 4}" stroke="#888"/>')  # fmt: skip
        parts.append(_text(px(tick), bottom + 16, x_format(tick)))
    for (name, points), colour in zip(kept.items(), colours, strict=True):
        drawn = [(x, y) for x, y in points if not math.isnan(y)]
        for run in _runs(points):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.8" '
                f'stroke-linejoin="round"><title>{escape(name)}</title></polyline>'
            )
        if len(drawn) <= MAX_MARKED_POINTS:
            parts += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)}: {x_format(x)}, {fmt_number(y)}</title></circle>"
                for x, y in drawn
            ]
    parts.append("</svg>")
    return "\n".join(parts)


def _runs(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """The stretches of a line between its gaps (NaN points)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if math.isnan(y):
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def bar_chart(
    categories: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    title: str,
    *,
    y_label: str = "",
    colours: Mapping[str, str] | None = None,
    width: int = WIDTH_PX,
    height: int = HEIGHT_PX,
) -> str:
    """One bar per category; a category mapping to a dict is a stacked bar (legend: its keys).
    `colours` maps a category (or stack key) to a colour."""
    stacks: dict[str, dict[str, float]] = {
        bar: dict(value) if isinstance(value, Mapping) else {"": float(value)}
        for bar, value in categories.items()
    }
    keys = list(dict.fromkeys(k for stack in stacks.values() for k in stack))
    stacked = keys != [""]
    chosen = colours or {}
    palette = {k: chosen.get(k, PALETTE[i % len(PALETTE)]) for i, k in enumerate(keys)}
    frame, baseline = _framed(width, height, title, keys if stacked else [])
    parts = _open(frame, title)
    if stacked:
        parts += _legend(frame, keys, [palette[k] for k in keys], baseline)
    totals = [sum(v for v in stack.values() if v > 0) for stack in stacks.values()]
    if not stacks or max(totals) <= 0:
        parts += [*_axes(frame, [], {}, "", y_label), _no_data(frame), "</svg>"]
        return "\n".join(parts)

    y_ticks = nice_ticks(0.0, max(totals) * 1.08)  # headroom for the value above the bar
    y_hi = y_ticks[-1]

    def py(y: float) -> float:
        return frame.top + frame.plot_h - y / y_hi * frame.plot_h

    parts += _axes(frame, y_ticks, {t: py(t) for t in y_ticks}, "", y_label)
    slot = frame.plot_w / len(stacks)
    bar_w = min(slot * 0.7, 80.0)
    max_chars = max(1, int(slot / CHAR_PX))
    for i, (bar, stack) in enumerate(stacks.items()):
        x = frame.left + slot * i + (slot - bar_w) / 2
        level = 0.0
        for key, value in stack.items():
            if value <= 0:
                continue
            colour = palette[key] if stacked else chosen.get(bar, PALETTE[0])
            label = f"{bar} {key}: {fmt_number(value)}" if stacked else f"{bar}: {value:g}"
            parts.append(
                f'<rect x="{x:.1f}" y="{py(level + value):.1f}" width="{bar_w:.1f}" '
                f'height="{py(level) - py(level + value):.1f}" fill="{colour}">'
                f"<title>{escape(label)}</title></rect>"
            )
            level += value
        parts.append(_text(x + bar_w / 2, py(level) - 4, fmt_number(level)))
        shown = bar if len(bar) <= max_chars else bar[: max_chars - 1] + "…"
        parts.append(_text(x + bar_w / 2, frame.top + frame.plot_h + 16, shown))
    parts.append("</svg>")
    return "\n".join(parts)


def state_strips(
    lanes: Mapping[str, Sequence[tuple[float, float, str]]],
    title: str,
    colours: Mapping[str, str],
    x_label: str,
    *,
    x_ticks: Callable[[float, float], Sequence[float]] | None = None,
    x_format: Callable[[float], str] = fmt_number,
    width: int = WIDTH_PX,
) -> str:
    """One horizontal lane per name, coloured by state over x: `(x_from, x_to, state)`
    stretches (e.g. a circuit breaker closed, open, half-open). Legend: `colours`' keys."""
    height = max(120, 34 + 44 + 22 * len(lanes))
    frame, baseline = _framed(width, height, title, list(colours))
    parts = _open(frame, title) + _legend(frame, list(colours), list(colours.values()), baseline)
    xs = [x for stretches in lanes.values() for a, b, _ in stretches for x in (a, b)]
    if not xs:
        parts += [*_axes(frame, [], {}, x_label, ""), _no_data(frame), "</svg>"]
        return "\n".join(parts)
    ticks = list(x_ticks(min(xs), max(xs))) if x_ticks else nice_ticks(min(xs), max(xs), 8)
    x_lo, x_hi = min(ticks[0], min(xs)), max(ticks[-1], max(xs))

    def px(x: float) -> float:
        return frame.left + (x - x_lo) / ((x_hi - x_lo) or 1) * frame.plot_w

    parts += _axes(frame, [], {}, x_label, "")
    bottom = frame.top + frame.plot_h
    for tick in ticks:
        parts.append(f'<line x1="{px(tick):.1f}" y1="{bottom}" x2="{px(tick):.1f}" '
                     f'y2="{bottom + 4}" stroke="#888"/>')  # fmt: skip
        parts.append(_text(px(tick), bottom + 16, x_format(tick)))
    lane_h = frame.plot_h / max(1, len(lanes))
    for i, (name, stretches) in enumerate(lanes.items()):
        top = frame.top + i * lane_h + 2
        parts.append(_text(frame.left - 6, top + lane_h / 2 + 2, name, "end"))
        for a, b, state in stretches:
            fill = colours.get(state, PALETTE[-1])
            tip = f"{name}: {state} {x_format(a)} – {x_format(b)}"
            parts.append(
                f'<rect x="{px(a):.1f}" y="{top:.1f}" width="{max(px(b) - px(a), 0.8):.1f}" '
                f'height="{lane_h - 4:.1f}" fill="{fill}"><title>{escape(tip)}</title></rect>'
            )
    parts.append("</svg>")
    return "\n".join(parts)
