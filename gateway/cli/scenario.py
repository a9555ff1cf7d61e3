"""`paygate scenario run|list` and `paygate demo` (the demo is scenarios/demo.yaml run on
the ports of `paygate up`, with its summary table and report)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import orjson

from gateway.cli.common import run_stamp, terminate_as_interrupt
from gateway.ports import free_port
from gateway.settings import Settings


def cmd_demo(settings: Settings, duration_s: float, rate: float, time_scale: float) -> int:
    from loadtest.reports.run_reports import write_scenario_report
    from loadtest.scenarios.demo import (
        DEMO_SCENARIO,
        console_lines,
        demo_scenario,
        leave_for_review,
        print_table,
        save_json,
        say,
        summary_rows,
    )
    from loadtest.scenarios.model import ScenarioError
    from loadtest.scenarios.run import drive, last_line
    from loadtest.system.up import running_system

    try:
        sc = demo_scenario(DEMO_SCENARIO, duration_s, rate, time_scale)
    except ScenarioError as exc:
        print(f"paygate demo: {exc}", file=sys.stderr)
        return 2
    terminate_as_interrupt()
    started = time.monotonic()
    say("starting paygate (storage, gateway, bank simulator, workers, webhook sink) ...")
    env = {"PAYGATE_TIME_SCALE": str(time_scale)}
    try:
        with running_system(settings.state_dir, port=settings.port,
                            bank_port=settings.bank_port, sink_port=settings.sink_port,
                            env=env) as info:  # fmt: skip
            say(f"up in {time.monotonic() - started:.1f}s at {info['gateway_url']} "
                f"(simulated time x{time_scale:g})")  # fmt: skip
            for line in console_lines(info, None):
                say(line)
            # Its own merchants each run (scenarios/demo.yaml): every run tells the same story.
            outcome = asyncio.run(drive(info, settings.state_dir, sc, fast=False))
            review = asyncio.run(leave_for_review(info))
            say("stopping ...")
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    rows = summary_rows(outcome)
    print_table(rows)
    stamp = run_stamp()
    reports = settings.state_dir / "reports"
    data = save_json(outcome, reports, stamp)
    report = write_scenario_report(reports / f"demo-{stamp}.html", outcome, rows)
    say(f"report: {report.resolve()}")
    say(f"data:   {data.resolve()}")
    for line in console_lines(info, review):
        say(line)
    print(last_line(outcome), flush=True)
    return 0 if outcome.passed else 1


def cmd_scenario_list(directory: Path) -> int:
    from loadtest.scenarios.model import ScenarioError, list_scenarios

    try:
        found = list_scenarios(directory)
    except ScenarioError as exc:
        print(f"paygate scenario: {exc}", file=sys.stderr)
        return 2
    for name, description, path in found:
        print(f"{name:<16} {description}  ({path})")
    return 0


def cmd_scenario_run(settings: Settings, path: Path, fast: bool) -> int:
    from gateway.state_lock import wipe
    from loadtest.reports.run_reports import write_scenario_report
    from loadtest.scenarios.model import ScenarioError, load_scenario
    from loadtest.scenarios.run import answer_rows, drive, effective_time_scale, last_line
    from loadtest.scenarios.timeline import say
    from loadtest.system.up import running_system

    try:
        sc = load_scenario(path)
    except ScenarioError as exc:
        print(f"paygate scenario: {exc}", file=sys.stderr)
        return 2
    terminate_as_interrupt()
    state_dir = settings.state_dir / "scenario-run"
    # A fresh system each run (its embedded database too): a scenario starts from nothing.
    wipe(state_dir)
    env = {
        "PAYGATE_TIME_SCALE": str(effective_time_scale(sc, fast)),
        "PAYGATE_BANK_PROFILE_PRESET": sc.bank_preset,
        "PAYGATE_LOG_LEVEL": "WARNING",
    }
    say(f"{sc.name}: starting paygate ({'fast' if fast else 'normal'} speed) ...")
    with running_system(state_dir, port=free_port(), bank_port=free_port(),
                        sink_port=free_port(), env=env) as info:  # fmt: skip
        outcome = asyncio.run(drive(info, state_dir, sc, fast))
    rows = answer_rows(outcome)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    stamp = run_stamp()
    out_dir = settings.state_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = write_scenario_report(out_dir / f"scenario-{sc.name}-{stamp}.html", outcome, rows)
    data = out_dir / f"scenario-{sc.name}-{stamp}.json"
    data.write_bytes(orjson.dumps({"scenario": sc.name, "fast": fast, "answers": outcome.answers,
                                   "failures": outcome.failures, "timeline": outcome.timeline,
                                   "recon": outcome.recon, "load": outcome.load.to_dict()},
                                  option=orjson.OPT_INDENT_2))  # fmt: skip
    say(f"report: {report.resolve()}")
    say(f"data:   {data.resolve()}")
    print(last_line(outcome), flush=True)
    return 0 if outcome.passed else 1
