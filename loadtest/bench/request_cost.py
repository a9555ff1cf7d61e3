"""What one signed request costs the gateway (issue 25): µs of gateway CPU per request.

Requests per second on a shared machine are noisy; CPU time per request is not (much). On a
fresh `paygate up` (dispatch paused, so the gateway only answers), the open-loop generator
sends `rate` requests per second for `seconds` from its own process, and the gateway
process's CPU time (user + system, its children included: `--workers N`) is read from the
OS before and after. The gateway's idle CPU over the same time (metric flushes, the clock)
is measured first and shown beside the figure; `net` takes it off.

    paygate bench --only request-cost [--rate 1000] [--seconds 20] [--rounds 3]

Workloads: `noop` (the signed no-op: signature, nonce + rate limit, middleware, nothing
else) and `payouts` (a signed payout accept). Profile the same load with py-spy against the
printed gateway pid (`py-spy record --pid P`) while a round runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from gateway.state_lock import wipe
from loadtest.bench.run import _pause_dispatch, _run, make_merchants, say
from loadtest.generator.spec import MerchantCred
from loadtest.system.up import running_system

WORKLOADS = ("noop", "payouts")
IDLE_S = 3.0


def _cpu_s(proc: psutil.Process) -> float:
    """User + system seconds of `proc` and its live descendants."""
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def idle_cpu_per_s(gateway: psutil.Process, seconds: float = IDLE_S) -> float:
    before, t0 = _cpu_s(gateway), time.monotonic()
    await asyncio.sleep(seconds)  # a measuring window, not synchronisation
    return (_cpu_s(gateway) - before) / (time.monotonic() - t0)


async def measure(
    info: dict[str, Any],
    gateway: psutil.Process,
    merchants: Sequence[MerchantCred],
    workload: str,
    rate: float,
    seconds: float,
    idle_per_s: float,
    tag: str,
) -> dict[str, Any]:
    """One run of `workload` at `rate` for `seconds`: the gateway's CPU per answered request."""
    before, t0 = _cpu_s(gateway), time.monotonic()
    result = await asyncio.to_thread(_run, info, merchants, workload, rate, seconds, tag)
    took = time.monotonic() - t0
    cpu = _cpu_s(gateway) - before
    answered = result.totals.completed
    ok = sum(v for k, v in result.by_status.items() if k.startswith("2"))
    per = 1e6 / max(answered, 1)
    return {
        "workload": workload,
        "rate_per_s": rate,
        "answered": answered,
        "ok_2xx": ok,
        "by_status": result.by_status,
        "gateway_cpu_s": round(cpu, 3),
        "us_per_request": round(cpu * per, 1),
        "net_us_per_request": round((cpu - idle_per_s * took) * per, 1),
        "p50_ms": result.latency_ms.p50_ms,
        "p99_ms": result.latency_ms.p99_ms,
        "generator_us_per_request": round(result.totals.cpu_s * per, 1),
    }


async def run_request_cost(
    info: dict[str, Any], rate: float, seconds: float, rounds: int, workloads: Sequence[str]
) -> dict[str, Any]:
    gateway = psutil.Process(int(info["pids"]["gateway"]))
    say(f"gateway pid {gateway.pid}; creating 50 merchants ...")
    merchants = await make_merchants(info, 50)
    await _pause_dispatch(info, True)  # the gateway only answers: no callbacks to it
    # Warm-up: caches filled, code paths run once, connections open.
    for workload in workloads:
        await measure(info, gateway, merchants, workload, rate, 2.0, 0.0, f"w{workload}")
    idle = await idle_cpu_per_s(gateway)
    say(f"gateway idle: {idle * 1e3:.1f} ms CPU per second")
    runs: list[dict[str, Any]] = []
    for k in range(rounds):
        for workload in workloads:
            r = await measure(info, gateway, merchants, workload, rate, seconds, idle,
                              f"c{workload}{k}")  # fmt: skip
            say(f"round {k + 1} {workload}: {r['answered']:,} answered ({r['ok_2xx']:,} 2xx), "
                f"gateway {r['us_per_request']} µs CPU/request (net of idle "
                f"{r['net_us_per_request']}), p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms")  # fmt: skip
            runs.append(r)
    summary = {}
    for workload in workloads:
        mine = sorted(r["us_per_request"] for r in runs if r["workload"] == workload)
        nets = sorted(r["net_us_per_request"] for r in runs if r["workload"] == workload)
        summary[workload] = {"median_us": mine[len(mine) // 2],
                             "median_net_us": nets[len(nets) // 2], "all_us": mine}  # fmt: skip
    await _pause_dispatch(info, False)
    return {"idle_ms_per_s": round(idle * 1e3, 2), "runs": runs, "summary": summary}


def on_fresh_system(
    state_dir: Path,
    ports: tuple[int, int, int],
    rate: float,
    seconds: float,
    rounds: int,
    workloads: Sequence[str] = WORKLOADS,
) -> dict[str, Any]:
    """A fresh `paygate up` (gateway, bank simulator and sink on `ports`) in `state_dir`,
    measured, then stopped."""
    wipe(state_dir)
    env = {"PAYGATE_BANK_PROFILE_PRESET": "instant", "PAYGATE_LOG_LEVEL": "WARNING"}
    port, bank_port, sink_port = ports
    with running_system(state_dir, port=port, bank_port=bank_port, sink_port=sink_port,
                        env=env) as info:  # fmt: skip
        return asyncio.run(run_request_cost(info, rate, seconds, rounds, workloads))


def summary_lines(out: dict[str, Any]) -> list[str]:
    return [
        f"{workload}: gateway CPU per request, median of {len(s['all_us'])}: {s['median_us']} µs "
        f"(net of idle {s['median_net_us']} µs); all {s['all_us']}"
        for workload, s in out["summary"].items()
    ]
