"""Self-contained HTML reports: one file, inline CSS and SVG, no scripts, no external fonts;
it opens from disk and can be mailed or attached to a ticket as it is."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from loadtest.generator.result import LoadResult
from loadtest.reports.plots import (
    error_codes,
    latency_over_time,
    status_mix,
    summary_table,
    throughput_over_time,
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;
     max-width:860px;margin:24px auto;padding:0 16px;line-height:1.45}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
p.meta{color:#666;font-size:13px;margin:0 0 16px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 12px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:10px 0}
"""


@dataclass(frozen=True, slots=True)
class Section:
    """A heading, optional text, an optional table (first row is the header) and plots (SVG
    strings, e.g. from `loadtest.reports.svg` or `loadtest.reports.plots`)."""

    heading: str
    table: Sequence[Sequence[object]] | None = None
    plots: Sequence[str] = field(default_factory=tuple)
    text: str | None = None


def _cell(value: object, tag: str) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
    css = ' class="num"' if numeric and tag == "td" else ""
    return f"<{tag}{css}>{escape(shown)}</{tag}>"


def _table(rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return ""
    head = "".join(_cell(v, "th") for v in rows[0])
    body = "".join("<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(section: Section) -> str:
    parts = [f"<section><h2>{escape(section.heading)}</h2>"]
    if section.text:
        parts.append(f"<p>{escape(section.text)}</p>")
    if section.table:
        parts.append(_table(section.table))
    parts += [f"<figure>{plot}</figure>" for plot in section.plots]
    parts.append("</section>")
    return "\n".join(parts)


def render_report(title: str, sections: Sequence[Section]) -> str:
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    body = "\n".join(_section(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
        f'<body><h1>{escape(title)}</h1><p class="meta">generated {escape(generated)}</p>\n'
        f"{body}\n</body></html>\n"
    )


def write_report(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Write the report (creating parent directories) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(title, sections), encoding="utf-8")
    return target


def result_section(result: LoadResult, heading: str, text: str | None = None) -> Section:
    """The standard section for one run: summary, latency, throughput, status mix (and error
    codes when there are any)."""
    plots = [latency_over_time(result), throughput_over_time(result), status_mix(result)]
    if result.by_code:
        plots.append(error_codes(result))
    notes = " ".join(result.notes)
    joined = " ".join(part for part in (text, notes) if part)
    return Section(heading, summary_table(result), plots, joined or None)
