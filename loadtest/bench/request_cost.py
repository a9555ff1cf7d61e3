"""What one signed request costs the gateway (issue 25): µs of gateway CPU per request.

Requests per second on a shared machine are noisy; CPU time per request is not (much). On a
fresh `paygate up` (dispatch paused, so the gateway only answers), the open-loop generator
sends `rate` requests per second for `seconds` from its own process, and the gateway
process's CPU time (user + system, its children included: `--workers N`) is read from the
OS before and after. The gateway's idle CPU over the same time (metric flushes, the clock)
is measured first and shown beside the figure; `net` takes it off.

    paygate bench --only request-cost [--rate 1000] [--seconds 20] [--rounds 3]
                  [--against ../main-checkout]

With `--against DIR` (another checkout, e.g. main's in a second worktree) both are started
and measured in turns, round by round: a before/after on a shared machine.

Workloads: `noop` (the signed no-op: signature, nonce + rate limit, middleware, nothing
else) and `payouts` (a signed payout accept). Profile the same load with py-spy against the
printed gateway pid (`py-spy record --pid P`) while a round runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from gateway.state_lock import wipe
from loadtest.bench.cost import cpu_seconds
from loadtest.bench.run import _pause_dispatch, _run, make_merchants, say
from loadtest.generator.spec import MerchantCred
from loadtest.system.up import running_system

WORKLOADS = ("noop", "payouts")
IDLE_S = 3.0


def _cpu_s(proc: psutil.Process) -> float:
    """User + system seconds of `proc` and its live descendants."""
    return cpu_seconds(proc, with_children=True)


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
    """One run of `workload` at `rate` for `seconds`: the gateway's CPU per request sent (a
    request the generator gave up on, after its 10 s timeout, was still served)."""
    before, t0 = _cpu_s(gateway), time.monotonic()
    result = await asyncio.to_thread(_run, info, merchants, workload, rate, seconds, tag)
    took = time.monotonic() - t0
    cpu = _cpu_s(gateway) - before
    answered = result.totals.completed
    ok = sum(v for k, v in result.by_status.items() if k.startswith("2"))
    per = 1e6 / max(result.totals.sent, 1)
    return {
        "workload": workload,
        "rate_per_s": rate,
        "sent": result.totals.sent,
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


@dataclass
class _System:
    """One running Paygate under measurement: `label` names the code it runs."""

    label: str
    info: dict[str, Any]
    gateway: psutil.Process
    merchants: list[MerchantCred]
    idle_per_s: float = 0.0


async def _prepare(label: str, info: dict[str, Any], rate: float,
                   workloads: Sequence[str]) -> _System:  # fmt: skip
    gateway = psutil.Process(int(info["pids"]["gateway"]))
    say(f"{label}: gateway pid {gateway.pid}; creating 50 merchants ...")
    merchants = await make_merchants(info, 50)
    await _pause_dispatch(info, True)  # the gateway only answers: no callbacks to it
    # Warm-up: caches filled, code paths run once, connections open.
    for workload in workloads:
        await measure(info, gateway, merchants, workload, rate, 2.0, 0.0, f"w{workload}")
    return _System(label, info, gateway, merchants)


async def run_request_cost(
    infos: dict[str, dict[str, Any]],
    rate: float,
    seconds: float,
    rounds: int,
    workloads: Sequence[str],
) -> dict[str, Any]:
    """`rounds` runs of each workload on each system (label -> its run.json), interleaved:
    round k runs every workload on every system before round k + 1, so a busier minute of a
    shared machine falls on all of them."""
    systems = [await _prepare(label, info, rate, workloads) for label, info in infos.items()]
    for system in systems:
        system.idle_per_s = await idle_cpu_per_s(system.gateway)
        say(f"{system.label}: gateway idle {system.idle_per_s * 1e3:.1f} ms CPU per second")
    runs: list[dict[str, Any]] = []
    for k in range(rounds):
        for workload in workloads:
            for system in systems:
                r = await measure(system.info, system.gateway, system.merchants, workload, rate,
                                  seconds, system.idle_per_s, f"c{workload}{k}")  # fmt: skip
                r["system"] = system.label
                say(f"round {k + 1} {system.label} {workload}: {r['sent']:,} sent, "
                    f"{r['answered']:,} answered "
                    f"({r['ok_2xx']:,} 2xx), gateway {r['us_per_request']} µs CPU/request "
                    f"(net of idle {r['net_us_per_request']}), p50 {r['p50_ms']} ms, "
                    f"p99 {r['p99_ms']} ms")  # fmt: skip
                runs.append(r)
    summary: dict[str, dict[str, Any]] = {}
    for system in systems:
        for workload in workloads:
            mine = [r for r in runs if r["system"] == system.label and r["workload"] == workload]
            raw = sorted(r["us_per_request"] for r in mine)
            net = sorted(r["net_us_per_request"] for r in mine)
            summary[f"{system.label} {workload}"] = {
                "median_us": raw[len(raw) // 2], "min_us": raw[0],
                "median_net_us": net[len(net) // 2], "all_us": raw,
            }  # fmt: skip
        await _pause_dispatch(system.info, False)
    idle = {s.label: round(s.idle_per_s * 1e3, 2) for s in systems}
    return {"idle_ms_per_s": idle, "runs": runs, "summary": summary}


def on_fresh_systems(
    trees: dict[str, Path | None],
    state_dir: Path,
    ports: Callable[[], int],
    rate: float,
    seconds: float,
    rounds: int,
    workloads: Sequence[str] = WORKLOADS,
) -> dict[str, Any]:
    """A fresh `paygate up` for each source tree (label -> a checkout to run, None: this
    one), each in `state_dir/<label>` on ports from `ports()`, measured side by side, then
    stopped."""
    env = {"PAYGATE_BANK_PROFILE_PRESET": "instant", "PAYGATE_LOG_LEVEL": "WARNING"}
    # Absolute: a checkout run from its own directory would put a relative one (the default
    # `.paygate`) under that checkout, and run.json would never appear where it is awaited.
    state_dir = state_dir.resolve()
    with ExitStack() as stack:
        infos = {}
        for label, tree in trees.items():
            wipe(state_dir / label)
            infos[label] = stack.enter_context(running_system(
                state_dir / label, port=ports(), bank_port=ports(), sink_port=ports(), env=env,
                cwd=tree,
            ))  # fmt: skip
        return asyncio.run(run_request_cost(infos, rate, seconds, rounds, workloads))


def summary_lines(out: dict[str, Any]) -> list[str]:
    return [
        f"{name}: gateway CPU per request, median of {len(s['all_us'])}: {s['median_us']} µs "
        f"(min {s['min_us']}, median net of idle {s['median_net_us']}); all {s['all_us']}"
        for name, s in out["summary"].items()
    ]
