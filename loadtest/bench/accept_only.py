"""`paygate bench --only accept`: phase 4 of the bench alone (acceptance at saturation, spread
over the plan's merchants then on one hot merchant, dispatch paused) and the ledger check.
Minutes shorter than the whole bench, for the hot ÷ spread ratio with N gateway processes
(SPEC 15: one hot merchant across processes); the ratio is only meaningful within one run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

from loadtest.bench.ledger_check import ledger_check, ledger_line
from loadtest.bench.machine_speed import speed_line
from loadtest.bench.run import (
    BenchPlan,
    _pause_dispatch,
    _peak_per_s,
    _phase,
    _ratio,
    _run,
    make_merchants,
    say,
)


async def run_accept_only(info: dict[str, Any], plan: BenchPlan) -> dict[str, Any]:
    t0 = time.monotonic()
    say(f"creating {plan.merchants} merchants ...")
    spread = await make_merchants(info, plan.merchants)
    procs = plan.generator_processes
    offered = plan.offered_accept_per_s
    await _pause_dispatch(info, True)
    say(f"acceptance at saturation ({offered:.0f}/s offered, dispatch paused): spread ...")
    spread_sat = await asyncio.to_thread(
        _run, info, spread, "payouts", offered, plan.phase_s, "spread", "round_robin", True, procs
    )
    say("... and one hot merchant")
    hot_sat = await asyncio.to_thread(
        _run, info, spread[:1], "payouts", offered, plan.phase_s, "hot", "hot", True, procs
    )
    say("ledger check over everything the run wrote ...")
    ledger = await ledger_check(info["gateway_url"], info["admin_token"])
    await _pause_dispatch(info, False)
    spread_rate, hot_rate = _peak_per_s(spread_sat), _peak_per_s(hot_sat)
    return {
        "plan": asdict(plan),
        "phases": {
            "accept_spread_saturation": _phase(spread_sat),
            "accept_hot_saturation": _phase(hot_sat),
        },
        "rates": {"accept_spread_per_s": round(spread_rate), "accept_hot_per_s": round(hot_rate)},
        "ratios": {"hot_over_spread": _ratio(hot_rate, spread_rate)},
        "ledger": ledger,
        "took_s": round(time.monotonic() - t0, 1),
    }


def accept_table(out: dict[str, Any]) -> str:
    p = out["phases"]
    rows = [
        ("gateway processes", str(out["plan"]["gateway_processes"])),
        ("acceptance, spread saturation", f"{out['rates']['accept_spread_per_s']:,}/s  "
         f"({out['plan']['merchants']} merchants, dispatch paused)"),
        ("acceptance, hot merchant saturation", f"{out['rates']['accept_hot_per_s']:,}/s"),
        ("  spread / hot by status", f"{p['accept_spread_saturation']['by_status']} / "
         f"{p['accept_hot_saturation']['by_status']}"),
        ("RATIO hot / spread", str(out["ratios"]["hot_over_spread"])),
        ("ledger check (end of run)", ledger_line(out["ledger"])),
        speed_line(out.get("machine")),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
