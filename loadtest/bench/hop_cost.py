"""CPU per payout of every process of a running system (issue 25): the bank simulator, the
webhook sink, the gateway, the worker, PostgreSQL, Redis and the load generator, at a fixed
payout rate with dispatch on (instant banks), for one or more checkouts measured in turns.

    python -m loadtest.bench.hop_cost [--rate 250] [--seconds 20] [--rounds 4] \
        before=../main after=.
    python -m loadtest.bench.hop_cost --env waits:PAYGATE_ADMISSION_BATCH_WAIT_MS=1 \
        main=. waits=.

`--env LABEL:NAME=VALUE` (repeatable) starts that checkout's system with one more setting, so
one checkout can be measured against itself with a knob turned.

Each checkout gets a fresh `paygate up` (its own state directory and ports) and 50 merchants
notified at its sink; round k runs every checkout before round k + 1, so a busier minute of a
shared machine falls on all of them. A round sends `rate` payouts per second for `seconds`
and waits until the sink has been told of as many (at most 30 s); each process's CPU time
(user + system, from the OS, as the bench's cost table reads it: `loadtest/bench/cost.py`)
over that window is divided by the payouts answered 2xx, the generator's by the requests it
sent; `total` is their sum. Prints each round, the medians and the ratios of every checkout to
the first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp

from gateway.ports import free_port
from gateway.state_lock import wipe
from loadtest.bench.cost import CostMeter
from loadtest.bench.run import _run, make_merchants
from loadtest.generator.spec import MerchantCred
from loadtest.system.up import running_system

PROCESSES = ("bank-sim", "webhook-sink", "gateway", "worker", "postgres", "redis")
DRAIN_S = 30.0
Costs = dict[str, float]  # process -> µs of CPU per payout


async def _notified(info: dict[str, Any]) -> int:
    url = info["webhook_sink_url"] + "/stats?totals=1"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return int((await r.json())["received"])


async def _round(info: dict[str, Any], meter: CostMeter, merchants: Sequence[MerchantCred],
                 rate: float, seconds: float, tag: str) -> Costs:  # fmt: skip
    notified_before = await _notified(info)
    before = meter.cpu()
    result = await asyncio.to_thread(_run, info, merchants, "payouts", rate, seconds, tag)
    ok = sum(v for k, v in result.by_status.items() if k.startswith("2"))
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:  # polling the sink's count, with a deadline
        if await _notified(info) - notified_before >= ok:
            break
        await asyncio.sleep(0.2)
    after = meter.cpu()
    costs = {n: (after[n] - before[n]) * 1e6 / max(ok, 1) for n in PROCESSES if n in after}
    costs["generator"] = result.totals.cpu_s * 1e6 / max(result.totals.sent, 1)
    costs["total"] = sum(costs.values())
    return costs


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def _measure(infos: dict[str, dict[str, Any]], rate: float, seconds: float,
                   rounds: int) -> dict[str, list[Costs]]:  # fmt: skip
    systems = []
    for label, info in infos.items():
        meter = CostMeter(info)
        await meter.locate()
        merchants = await make_merchants(info, 50)
        await _round(info, meter, merchants, rate, 3.0, f"w{label}")  # warm-up
        systems.append((label, info, meter, merchants))
    runs: dict[str, list[Costs]] = {label: [] for label in infos}
    for k in range(rounds):
        for label, info, meter, merchants in systems:
            costs = await _round(info, meter, merchants, rate, seconds, f"r{k}{label}")
            runs[label].append(costs)
            print(f"round {k + 1} {label}: " + ", ".join(f"{n} {v:.0f}" for n, v in
                                                          costs.items()) + " µs CPU per payout",
                  flush=True)  # fmt: skip
    return runs


def extra_env(specs: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, str]]:
    """`--env` values (`LABEL:NAME=VALUE`) by label; ValueError names a malformed one."""
    extra: dict[str, dict[str, str]] = {label: {} for label in labels}
    for spec in specs:
        label, _, assignment = spec.partition(":")
        name, eq, value = assignment.partition("=")
        if label not in extra:
            raise ValueError(f"--env {spec!r}: no checkout labelled {label!r}")
        if not eq or not name.startswith("PAYGATE_"):
            raise ValueError(f"--env {spec!r}: want LABEL:PAYGATE_NAME=VALUE")
        extra[label][name] = value
    return extra


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench.hop_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=250.0, help="payouts per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--state-dir", type=Path, default=Path(".paygate/bench/hop-cost"))
    parser.add_argument("--env", action="append", default=[], metavar="LABEL:NAME=VALUE",
                        help="one more setting for that checkout's system")  # fmt: skip
    parser.add_argument("checkouts", nargs="+", metavar="LABEL=DIR")
    args = parser.parse_args(argv)
    labels = [c.partition("=")[0] for c in args.checkouts]
    if len(set(labels)) != len(labels):
        parser.error("each checkout needs a label of its own")
    try:
        extra = extra_env(args.env, labels)
    except ValueError as exc:
        parser.error(str(exc))
    shared = [n for n in ("PAYGATE_DATABASE_URL", "PAYGATE_REDIS_URL") if os.environ.get(n)]
    if shared and len(args.checkouts) > 1:
        # Every system would write the same database (and count each other's CPU).
        parser.error(
            f"{' and '.join(shared)} set: the checkouts would share one store; unset "
            "it, and each system starts its own embedded PostgreSQL and Redis"
        )
    env = {"PAYGATE_BANK_PROFILE_PRESET": "instant", "PAYGATE_LOG_LEVEL": "WARNING"}
    with ExitStack() as stack:
        infos: dict[str, dict[str, Any]] = {}
        state_dir = args.state_dir.resolve()  # each system runs in its own checkout
        for checkout in args.checkouts:
            label, _, tree = checkout.partition("=")
            wipe(state_dir / label)
            infos[label] = stack.enter_context(running_system(
                state_dir / label, port=free_port(), bank_port=free_port(),
                sink_port=free_port(), env=env | extra[label], cwd=Path(tree or "."),
            ))  # fmt: skip
        runs = asyncio.run(_measure(infos, args.rate, args.seconds, args.rounds))
    first = next(iter(runs))
    for label, costs in runs.items():
        medians = {n: _median([c[n] for c in costs]) for n in costs[0]}
        line = ", ".join(f"{n} {v:.0f}" for n, v in medians.items())
        print(f"median {label}: {line} µs CPU per payout")
        if label != first:
            ratios = ", ".join(
                f"{n} {v / _median([c[n] for c in runs[first]]):.2f}" for n, v in medians.items()
            )
            print(f"ratio {label} / {first}: {ratios}")


if __name__ == "__main__":
    main()
