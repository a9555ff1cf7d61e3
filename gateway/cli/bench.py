"""`paygate bench` (SPEC 13): the full benchmark on a fresh system, or `--only ratelimit`
or `--only request-cost`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.cli.common import run_stamp
from gateway.ports import free_port
from gateway.settings import Settings


def cmd_bench(
    settings: Settings, quick: bool, workers: int = 1, generators: int = 1, only: str = "all"
) -> int:
    """`only="accept"`: acceptance at saturation (spread, hot) and the ledger check alone."""
    from dataclasses import replace

    from gateway.state_lock import wipe
    from loadtest.bench.accept_only import accept_table, run_accept_only
    from loadtest.bench.machine_speed import machine_speed, speed_summary
    from loadtest.bench.run import BenchPlan, run_bench, say, table
    from loadtest.reports.run_reports import write_bench_report
    from loadtest.system.up import running_system

    plan = replace(BenchPlan.quick() if quick else BenchPlan.full(),
                   generator_processes=generators, gateway_processes=workers)  # fmt: skip
    state_dir = settings.state_dir / "bench-run"
    # A fresh system each run (its embedded database too): numbers must not depend on history.
    wipe(state_dir)
    env = {"PAYGATE_BANK_PROFILE_PRESET": "instant", "PAYGATE_LOG_LEVEL": "WARNING"}
    say("timing this machine's speed (loadtest/bench/machine_speed.py) ...")
    speed_at_start = machine_speed()
    say(f"starting paygate ({'quick' if quick else 'full'} run, {workers} gateway process(es), "
        f"{generators} load generator process(es)) ...")  # fmt: skip
    with running_system(state_dir, port=free_port(), bank_port=free_port(),
                        sink_port=free_port(), env=env,
                        up_args=("--workers", str(workers))) as info:  # fmt: skip
        out = asyncio.run(run_accept_only(info, plan) if only == "accept"
                          else run_bench(info, plan))  # fmt: skip
    out["machine"] = speed_summary(speed_at_start, machine_speed())
    text = accept_table(out) if only == "accept" else table(out)
    print(text)
    stamp = run_stamp()
    out_dir = settings.state_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    if only == "accept":
        data = out_dir / f"bench-accept-{stamp}.json"
        data.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        say(f"took {out['took_s']}s; data: {data.resolve()}")
        return 0
    report = write_bench_report(out_dir / f"bench-{stamp}.html", out, text)
    results = out.pop("results")
    out["results"] = {k: v.to_dict() for k, v in results.items()}
    data = out_dir / f"bench-{stamp}.json"
    data.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    say(f"took {out['took_s']}s; report: {report.resolve()}; data: {data.resolve()}")
    return 0


def cmd_bench_ratelimit(settings: Settings, seconds: float, callers: int) -> int:
    """Runs on PAYGATE_REDIS_URL, or on an embedded Redis started for the run (also when the
    URL names a cluster)."""
    from gateway.server import run
    from gateway.storage.embedded import EmbeddedStorage
    from gateway.storage.pools import cluster_url
    from risk.bench_ratelimit import run_bench, table

    out_dir = settings.state_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    redis_url = settings.redis_url
    if cluster_url(redis_url) is not None:  # it compares scripts on one server
        print("the rate-limiter micro-benchmark runs on one Redis: an embedded one, not a cluster")
        redis_url = ""
    with EmbeddedStorage(settings.state_dir, settings.database_url or "unused",
                         redis_url) as storage:  # fmt: skip
        result: dict[str, Any] = {}

        async def main() -> None:
            result.update(await run_bench(storage.redis_url, callers, seconds))

        run(main())
    print(table(result))
    out = out_dir / "ratelimit.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"written: {out}")
    return 0


def cmd_bench_request_cost(
    settings: Settings,
    rate: float,
    seconds: float,
    rounds: int,
    workload: str,
    against: Sequence[Path] = (),
) -> int:
    """µs of gateway CPU per signed no-op and per payout accept (issue 25); with `against`,
    those checkouts' too (labelled by their directory's name), measured in turns with this
    one's."""
    from loadtest.bench.request_cost import WORKLOADS, on_fresh_systems, summary_lines

    workloads = WORKLOADS if workload == "all" else (workload,)
    trees: dict[str, Path | None] = {path.resolve().name: path.resolve() for path in against}
    trees["this"] = None
    out = on_fresh_systems(trees, settings.state_dir / "request-cost-run", free_port, rate,
                           seconds, rounds, workloads)  # fmt: skip
    print("\n".join(summary_lines(out)))
    out_dir = settings.state_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / f"request-cost-{run_stamp()}.json"
    data.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    print(f"data: {data.resolve()}")
    return 0
