"""The HTML reports of `paygate bench` and `paygate scenario` (and so `paygate demo`):
sections built from their figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.bench.transfers import counts_text
from loadtest.reports.plots import error_codes, status_mix, summary_table
from loadtest.reports.report import Section, result_section, write_report
from loadtest.reports.svg import bar_chart, line_chart
from loadtest.scenarios.plots import scenario_plots
from loadtest.scenarios.watch import lag_points


def _system_plots(samples: list[dict[str, Any]], totals: dict[str, Any]) -> list[str]:
    plots = [
        line_chart(
            {
                "advance used (CNY)": [(r["t"], r["advance_used"] / 100) for r in samples],
                "pending_in (CNY)": [(r["t"], r["pending_in"] / 100) for r in samples],
            },
            "second",
            "CNY",
            "Advance exposure (垫资) and B2B funds on their way",
        ),
        line_chart(
            {
                "open payouts": [(r["t"], float(r["open_payouts"])) for r in samples],
                "notifications pending": [
                    (r["t"], float(r["notifications_pending"])) for r in samples
                ],
            },
            "second",
            "count",
            "Backlog: payouts not final, notifications not delivered",
        ),
        *_end_of_run_bars(totals),
    ]
    lag = totals.get("notification_lag_p99_by_second") or []
    if lag:
        t0 = lag[0][0]
        plots.append(
            line_chart(
                {"p99 lag": [(t - t0, ms) for t, ms in lag]},
                "second",
                "ms",
                "Notification lag (created -> delivered), p99",
            )
        )
    return plots


def _end_of_run_bars(totals: dict[str, Any]) -> list[str]:
    return [
        bar_chart(
            {s: float(n) for s, n in sorted(totals["status"].items())},
            "Payout status mix (end of run)",
            y_label="payouts",
        ),
        bar_chart(
            {bank: {s: float(n) for s, n in by.items()} for bank, by in totals["banks"].items()},
            "Outcomes per bank channel",
            y_label="payouts",
        ),
    ]


def _ledger_section(ledger: dict[str, Any]) -> Section:
    return Section(
        "Ledger check",
        [
            ["check", "ok", "violations"],
            *[[c["name"], c["ok"], c["violations"]] for c in ledger["checks"]],
        ],
    )


def write_bench_report(path: Path, out: dict[str, Any], table_text: str) -> Path:
    rates = out["rates"]
    sections = [
        Section(
            "Figures",
            [
                ["measure", "value"],
                *[line.strip().split("  ", 1) for line in table_text.splitlines()],
            ],
        ),
        Section(
            "Throughput against ceilings",
            None,
            [
                bar_chart(
                    {
                        "bare ceiling": rates["bare_per_s"],
                        "accept spread": rates["accept_spread_per_s"],
                        "accept hot": rates["accept_hot_per_s"],
                        "storage spread": rates["storage_spread_per_s"],
                        "storage hot": rates["storage_hot_per_s"],
                        "transfers hot": rates["transfer_hot_per_s"],
                        "transfers spread": rates["transfer_spread_per_s"],
                    },
                    "Requests per second",
                    y_label="per s",
                )
            ],
        ),
    ]
    names = {
        "noop": "Bare ceiling (signed no-op)",
        "spread": "Acceptance, spread saturation",
        "hot": "Acceptance, hot merchant",
        "at10": "Acceptance at 10% load",
        "at50": "Acceptance at 50% load",
        "transfers_hot": "Internal transfers, hot account (商转个 from one settlement account)",
        "transfers_spread": "Internal transfers, spread (个转个 between personal accounts)",
        "e2e": "End to end",
    }
    for key, heading in names.items():
        sections.append(result_section(out["results"][key], heading))
    e2e = out["phases"]["e2e"]
    sections.append(
        Section("End to end: the system", None, _system_plots(e2e["samples"], e2e["db"]))
    )
    sections.append(_capacity_section(out["phases"]["capacity"]))
    sections.append(transfers_section(out["phases"]["transfers"]))
    sections.append(_ledger_section(out["ledger"]))
    return write_report(path, "Paygate bench", sections)


def transfers_section(transfers: dict[str, Any]) -> Section:
    """Transfers per second in both shapes, with what was refused or went unanswered."""
    rows: list[list[object]] = [
        ["shape", "routes", "merchants", "transfers/s (peak)", "offered/s", "created",
         "refused", "no answer", "p50 ms", "p99 ms"],
    ]  # fmt: skip
    for shape in ("hot", "spread"):
        t = transfers[shape]
        o = t["outcome"]
        rows.append([shape, t["routes"], t["merchants"], t["transfers_per_s"], t["offered_per_s"],
                     o["created"], counts_text(o["refused"]), counts_text(o["no_answer"]),
                     t["latency_ms"]["p50"], t["latency_ms"]["p99"]])  # fmt: skip
    text = (f"{transfers['accounts']} personal accounts, each funded from its merchant's "
            "settlement account well beyond what a phase moves; offered as a ramp to "
            "saturation; the rate is the median of its three busiest seconds' answers, as for "
            "acceptance.")  # fmt: skip
    return Section("Internal transfers: hot account and spread", rows, text=text)


def _capacity_section(cap: dict[str, Any]) -> Section:
    """The capacity search's steps and what a payout cost at the rate that held."""
    steps = cap["steps"]
    plots = [
        line_chart(
            {
                "p99 request + accepted -> final": [
                    (float(i + 1), float(s["p99_total_ms"] or 0)) for i, s in enumerate(steps)
                ],
                "p99 request": [
                    (float(i + 1), float(s["p99_request_ms"])) for i, s in enumerate(steps)
                ],
            },
            "step",
            "ms",
            "End-to-end capacity: p99 accept -> final per step (limit 1,000 ms)",
        ),
    ]
    cost = cap.get("cost")
    if cost:
        cpu = {k: v for k, v in cost["cpu_ms_per_1000_payouts"].items() if k != "total"}
        plots.append(bar_chart(cpu, "CPU ms per 1,000 payouts, by process", y_label="CPU ms"))
    table = [
        ["rate /s", "seconds", "accepted", "not 2xx", "p99 request ms", "p99 accepted->final ms",
         "backlog growth /s", "WAL KB per payout", "full-page images", "checkpoints", "held",
         "why not"],
        *[[s["rate_per_s"], s["seconds"], s["accepted"], s["refused_or_failed"],
           s["p99_request_ms"], s["p99_final_ms"], s["backlog_growth_per_s"],
           s.get("wal_kb_per_payout"), s.get("full_page_images"), s.get("checkpoints"),
           s["held"], s["why_not"]] for s in steps],
    ]  # fmt: skip
    return Section(f"End-to-end capacity: {cap['capacity_per_s']:,} payouts/s", table, plots)


def write_scenario_report(path: Path, outcome: Any, answers: list[tuple[str, str]]) -> Path:
    """The scenario's report: the answers first, then the timeline, the assertions, the load
    and the system over time."""
    sc = outcome.scenario
    checks = [["assertion", "result"]] + [
        [key, "FAIL" if any(f.startswith(key) for f in outcome.failures) else "ok"]
        for key in sc.expect
    ]
    sections = [
        Section(f"Answers — {sc.name}", [["question", "answer"], *[[k, v] for k, v in answers]],
                text=sc.description),
        Section("Timeline (simulated time, as fired)",
                [["at", "wall s", "what", "note"],
                 *[[e["at"], e["wall_s"], e["what"], e["note"]] for e in outcome.timeline]]),
        Section("Assertions", checks, text="; ".join(outcome.failures) or "all hold"),
        Section("Load: requests as the merchants saw them", summary_table(outcome.load),
                [status_mix(outcome.load), *([error_codes(outcome.load)] if outcome.load.by_code
                                             else [])]),
        Section("Over simulated time", None,
                scenario_plots(outcome.clock, outcome.samples, outcome.load,
                               outcome.load_start_wall, outcome.payout_times,
                               lag_points(outcome.totals)),
                text="x is the simulated clock (China time); a gap in a line is a clock jump."),
        Section("End of run", None, _end_of_run_bars(outcome.totals)),
        Section("Reconciliation per bank and business date",
                [["bank date", "summary"],
                 *[[k, ", ".join(f"{a}: {b}" for a, b in v.items())]
                   for k, v in outcome.recon.items()]]),
    ]  # fmt: skip
    return write_report(path, f"Paygate scenario {sc.name}", sections)
