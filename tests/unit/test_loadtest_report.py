"""Reports are one self-contained HTML file: well-formed, one inline SVG per plot, nothing
fetched from anywhere, every label escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from loadtest.generator.recorder import Recorder
from loadtest.generator.result import LoadResult
from loadtest.reports.plots import latency_over_time, status_mix, throughput_over_time
from loadtest.reports.report import Section, result_section, write_report
from loadtest.reports.svg import bar_chart, line_chart, log_ticks, nice_ticks

VOID = {"meta", "br", "img", "hr", "input", "link"}
SVG_NS = "{http://www.w3.org/2000/svg}"


class TagBalance(HTMLParser):
    """Checks that every opened HTML element is closed in order (SVG children included)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def sample_result() -> LoadResult:
    rec = Recorder(0.0)
    for i in range(30):
        offset = i / 10
        rec.on_scheduled(offset)
        rec.on_sent(offset, offset, "payout")
        if i % 10 == 9:
            rec.on_error(offset, offset + 1, "timeout")
        else:
            status, code = (422, "insufficient_funds") if i % 7 == 0 else (201, None)
            rec.on_response(offset, offset + 0.02 * (1 + i), status, code)
    return rec.result({"workload": "payouts"}, shape_duration_s=3.0)


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.S)


def assert_valid(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    parser = TagBalance()
    parser.feed(html)
    assert parser.errors == [] and parser.stack == []
    for svg in svgs(html):
        root = ET.fromstring(svg)  # each plot is well-formed XML on its own
        assert root.tag == f"{SVG_NS}svg"
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html and "url(" not in html


def test_report_has_one_svg_per_plot_and_opens_from_disk(tmp_path: Path) -> None:
    result = sample_result()
    sections = [
        result_section(result, "Payouts at 10/s"),
        Section("Plain", table=[["a", "b"], [1, 2.5]], plots=[status_mix(result)], text="x"),
    ]
    path = write_report(tmp_path / "out" / "report.html", "Run <1> & co", sections)

    html = path.read_text(encoding="utf-8")
    assert_valid(html)
    plots = sum(len(s.plots) for s in sections)
    assert plots == 5  # latency, throughput, status mix, error codes; and one more
    assert len(svgs(html)) == plots
    assert html.count("<svg") == plots
    assert "Run &lt;1&gt; &amp; co" in html
    assert "insufficient_funds" in html
    assert "<table>" in html


def test_charts_are_well_formed_with_escaped_labels() -> None:
    line = line_chart(
        {"p<99>": [(0, 1.0), (1, 100.0), (2, 0.0)], "a&b": [(0, 5.0)]},
        "second",
        "ms",
        "T <x>",
        log_y=True,
    )
    ET.fromstring(line)
    assert "p&lt;99&gt;" in line and "a&amp;b" in line
    stacked = bar_chart({"m0": {"ok": 3, "refused": 1}, "m1": {"ok": 2}}, "Outcomes")
    ET.fromstring(stacked)
    assert stacked.count("<rect") >= 3 + 2 + 1  # background, legend keys, bars


def test_empty_data_still_draws_a_chart() -> None:
    for svg in (line_chart({}, "x", "y", "Nothing"), bar_chart({}, "Nothing")):
        ET.fromstring(svg)
        assert "no data" in svg


def test_standard_plots_of_a_run_render() -> None:
    result = sample_result()
    for svg in (latency_over_time(result), throughput_over_time(result), status_mix(result)):
        root = ET.fromstring(svg)
        assert root.get("width") == "800" and root.get("height") == "300"


def test_ticks_are_round_and_cover_the_data() -> None:
    assert nice_ticks(0, 47) == [0, 10, 20, 30, 40, 50]
    assert nice_ticks(0, 2300)[-1] >= 2300
    assert log_ticks(22, 1100) == [20, 50, 100, 200, 500, 1000, 2000]
    assert log_ticks(1, 100_000) == [1, 10, 100, 1000, 10_000, 100_000]
