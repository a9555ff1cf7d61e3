"""`paygate bench` (SPEC 13): one run, one machine, every figure next to its ceiling.

Phases, on a fresh `paygate up` with the `instant` bank profile:
1. bare ceiling: the signed no-op endpoint, offered more than it can take;
2. end to end: payouts at a fixed rate, accepted -> bank -> callback -> notified, with the
   backlog sampled every second (it must not grow);
3. end-to-end capacity: the highest rate that holds (loadtest/bench/capacity.py), with what a
   payout costs in every process at that rate (loadtest/bench/cost.py);
4. acceptance at saturation, spread over N merchants and on one hot merchant, with dispatch
   paused (the API alone: banks, callbacks and notifications do not share the machine);
5. acceptance at fixed rates (10% and 50% of the spread saturation): latency percentiles;
6. internal transfers at saturation (loadtest/bench/transfers.py), on one hot account (商转个
   from a settlement account) and spread over many pairs of personal accounts (个转个);
7. storage ceiling: the accept transaction driven directly with asyncpg (group commit of 32),
   spread and hot.
Then the ledger check (SPEC 4 and 16 invariants) over everything the run wrote.
The generator runs in its own process(es) and reports its own CPU. Ratios: acceptance/bare,
acceptance/storage, hot/spread, p99 at 50% load / p50 at 10% load, transfers hot/spread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gateway.client import AdminClient
from loadtest.bench.capacity import CapacityPlan, find_capacity, generator_cpu_s
from loadtest.bench.cost import CostMeter, cost_lines
from loadtest.bench.ledger_check import ledger_check, ledger_line
from loadtest.bench.machine_speed import speed_line
from loadtest.bench.storage import storage_ceiling
from loadtest.bench.transfers import (
    describe,
    hot_load,
    open_accounts,
    outcome,
    spread_load,
    transfer_rows,
)
from loadtest.bench.writes import read_writes, writes_lines, writes_per_payout
from loadtest.generator.processes import run_in_process
from loadtest.generator.result import LoadResult
from loadtest.generator.shapes import constant, ramp
from loadtest.generator.spec import LoadSpec, MerchantCred, TransferRoute
from loadtest.system import observe

MERCHANT_CREDIT_FEN = 10**12
UNLIMITED = {"rps": 1_000_000, "burst": 1_000_000}


@dataclass(frozen=True, slots=True)
class BenchPlan:
    phase_s: float
    merchants: int
    offered_noop_per_s: float
    offered_accept_per_s: float
    e2e_per_s: float
    e2e_s: float
    quiet_s: float  # at most this long between phases for the previous one's work to finish
    capacity: CapacityPlan
    offered_transfer_per_s: float
    transfer_merchants: int  # spread: personal accounts of this many merchants
    transfer_accounts: int  # personal accounts per merchant (hot: the first merchant's)
    generator_processes: int = 1
    gateway_processes: int = 1  # `paygate up --workers N`
    # The latency phases at 10 % and 50 % (0: `phase_s`). Longer than the others: over 8 s at
    # 10 % load a p99 is the 26th-slowest of ~2,600 requests, and one slow second decides it.
    latency_s: float = 0.0

    @classmethod
    def full(cls) -> BenchPlan:
        capacity = CapacityPlan(start_per_s=200, factor=1.4, max_per_s=5000, step_s=8,
                                hold_s=30, drain_s=120)  # fmt: skip
        return cls(phase_s=8, merchants=1000, offered_noop_per_s=20000,
                   offered_accept_per_s=8000, e2e_per_s=150, e2e_s=20, quiet_s=30,
                   capacity=capacity, offered_transfer_per_s=8000, transfer_merchants=20,
                   transfer_accounts=50, latency_s=20)  # fmt: skip

    @classmethod
    def quick(cls) -> BenchPlan:
        capacity = CapacityPlan(start_per_s=250, factor=2.0, max_per_s=4000, step_s=4,
                                hold_s=6, drain_s=15)  # fmt: skip
        return cls(phase_s=2, merchants=50, offered_noop_per_s=10000,
                   offered_accept_per_s=6000, e2e_per_s=100, e2e_s=4, quiet_s=3,
                   capacity=capacity, offered_transfer_per_s=6000, transfer_merchants=5,
                   transfer_accounts=20)  # fmt: skip


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


async def make_merchants(info: dict[str, Any], n: int) -> list[MerchantCred]:
    """n merchants with ample funds and no rate limit, created over the admin API."""
    out: list[MerchantCred] = []
    sem = asyncio.Semaphore(32)
    async with (
        AdminClient(info["gateway_url"], info["admin_token"]) as admin,
        aiohttp.ClientSession() as http,
    ):

        async def one(i: int) -> MerchantCred:
            async with sem:
                m = await admin.create_merchant(name=f"Bench {i}", rate_limit=UNLIMITED,
                                                daily_amount=10**13, daily_count=10**8)  # fmt: skip
                # Notified at the demo webhook sink, which must know the secret to verify.
                sink = info["webhook_sink_url"]
                await admin.patch(f"/admin/merchants/{m['id']}",
                                  {"notify_url": f"{sink}/notify/{m['id']}"})  # fmt: skip
                async with http.put(f"{sink}/merchants/{m['id']}",
                                    json={"secret": m["secret"]}) as put:  # fmt: skip
                    assert put.status == 200, await put.text()
                resp = await admin.credit(m["id"], MERCHANT_CREDIT_FEN, f"bench-{m['id']}")
                assert resp.status == 201, resp.body
                return MerchantCred(m["id"], m["secret"])

        out = list(await asyncio.gather(*(one(i) for i in range(n))))
    return out


def _run(info: dict[str, Any], merchants: Sequence[MerchantCred], workload: str, rate: float,
         seconds: float, tag: str, pick: str = "round_robin", ramp_up: bool = False,
         processes: int = 1, routes: tuple[TransferRoute, ...] = ()) -> LoadResult:  # fmt: skip
    """One open-loop run; `ramp_up` climbs from a tenth of `rate` to `rate` (saturation runs:
    the peak served rate is the capacity, without drowning the server in a backlog)."""
    spec = LoadSpec(
        base_url=info["gateway_url"],
        merchants=tuple(merchants),
        workload=workload,
        shape=ramp(rate / 10, rate, seconds) if ramp_up else constant(rate, seconds),
        seed=hash(tag) & 0xFFFF,
        run_id=f"{tag}{int(time.time()) % 100000}",
        merchant_pick="hot" if pick == "hot" else "round_robin",
        timeout_s=10.0,
        routes=routes,
    )
    return run_in_process(spec, relay_prefix=tag, processes=processes)


def _served_per_s(r: LoadResult) -> float:
    """Responses per second over the run."""
    ok = sum(v for k, v in r.by_status.items() if k.startswith("2"))
    return ok / max(r.totals.duration_s, 1e-9)


def _peak_per_s(r: LoadResult) -> float:
    """Capacity from a ramp: the median of the three busiest seconds' completions."""
    done = sorted((s.completed for s in r.timeline), reverse=True)[:3]
    return float(done[len(done) // 2]) if done else 0.0


async def run_bench(info: dict[str, Any], plan: BenchPlan) -> dict[str, Any]:
    t0 = time.monotonic()
    say(f"creating {plan.merchants} merchants ...")
    spread = await make_merchants(info, plan.merchants)
    hot = spread[:1]
    out: dict[str, Any] = {"plan": asdict(plan), "phases": {}}
    phases = out["phases"]

    procs = plan.generator_processes
    say(f"[1/7] bare ceiling: signed no-op at {plan.offered_noop_per_s:.0f}/s offered")
    noop = await asyncio.to_thread(_run, info, spread, "noop", plan.offered_noop_per_s,
                                   plan.phase_s, "noop", "round_robin", True, procs)  # fmt: skip
    phases["noop"] = _phase(noop)

    say(f"[2/7] end to end: payouts at {plan.e2e_per_s:.0f}/s for {plan.e2e_s:.0f}s")
    since = datetime.now(UTC)
    writes_before = await read_writes(info["database_url"])
    stop = asyncio.Event()
    samples = observe.Samples()
    sampler = asyncio.create_task(observe.sample_until(info["database_url"], stop, samples))
    e2e = await asyncio.to_thread(_run, info, spread, "payouts", plan.e2e_per_s, plan.e2e_s,
                                  "e2e")  # fmt: skip
    # The last seconds' payouts and notifications finish (bounded), still sampled.
    left = await observe.wait_quiet(info["database_url"], plan.quiet_s)
    stop.set()
    await sampler
    e2e_totals = await observe.totals(info["database_url"], since)
    writes_after = await read_writes(info["database_url"])
    made = sum(e2e_totals["status"].values())
    phases["e2e"] = {**_phase(e2e), "db": e2e_totals, "samples": samples.rows,
                     "backlog_growth_per_s": observe.slope(samples.rows, "open_payouts"),
                     "left_after_drain": left,
                     "writes": writes_per_payout(writes_before, writes_after, made)}  # fmt: skip

    say("[3/7] end-to-end capacity: stepping the payout rate up until it stops holding")
    meter = CostMeter(info)
    await meter.locate()

    async def constant_run(rate: float, seconds: float, tag: str) -> LoadResult:
        return await asyncio.to_thread(_run, info, spread, "payouts", rate, seconds, tag,
                                       "round_robin", False, procs)  # fmt: skip

    phases["capacity"] = await find_capacity(info, constant_run, plan.capacity, meter, say)
    await observe.wait_quiet(info["database_url"], plan.quiet_s)

    # Acceptance is the API alone: dispatch is paused (as an operator would during a bank
    # incident), so the bank, callbacks and notifications do not share the machine with it.
    # Payouts accepted from here on wait in the queue; the run's database is thrown away.
    await _pause_dispatch(info, True)
    say(f"[4/7] acceptance at saturation ({plan.offered_accept_per_s:.0f}/s offered, "
        "dispatch paused)")  # fmt: skip
    offered = plan.offered_accept_per_s
    spread_sat = await asyncio.to_thread(
        _run, info, spread, "payouts", offered, plan.phase_s, "spread", "round_robin", True, procs
    )
    hot_sat = await asyncio.to_thread(
        _run, info, hot, "payouts", offered, plan.phase_s, "hot", "hot", True, procs
    )
    phases["accept_spread_saturation"] = _phase(spread_sat)
    phases["accept_hot_saturation"] = _phase(hot_sat)
    capacity = _peak_per_s(spread_sat)

    latency_s = plan.latency_s or plan.phase_s
    say(f"[5/7] acceptance at 10% and 50% of {capacity:.0f}/s, {latency_s:.0f}s each")
    low = await asyncio.to_thread(_run, info, spread, "payouts", max(capacity * 0.1, 1),
                                  latency_s, "at10")  # fmt: skip
    mid = await asyncio.to_thread(_run, info, spread, "payouts", max(capacity * 0.5, 1),
                                  latency_s, "at50")  # fmt: skip
    phases["accept_10pct"] = _phase(low)
    phases["accept_50pct"] = _phase(mid)

    phases["transfers"], transfer_results = await transfers_phase(info, spread, plan)

    say("[7/7] storage ceiling: accept transactions straight to PostgreSQL (batch 32)")
    ids = [m.id for m in spread]
    phases["storage_spread"] = await storage_ceiling(
        info["database_url"], ids, seconds=plan.phase_s, batch=32, concurrency=4, tag="ss"
    )
    phases["storage_hot"] = await storage_ceiling(
        info["database_url"], ids[:1], seconds=plan.phase_s, batch=32, concurrency=4, tag="sh"
    )
    # One snapshot of everything the run wrote (while dispatch is still paused: a quiet system).
    say("ledger check over everything the run wrote ...")
    out["ledger"] = await ledger_check(info["gateway_url"], info["admin_token"])
    say(f"ledger check: {ledger_line(out['ledger'])}")
    await _pause_dispatch(info, False)

    bare = _peak_per_s(noop)
    hot_rate = _peak_per_s(hot_sat)
    storage = phases["storage_spread"]["accepts_per_s"]
    out["ratios"] = {
        "acceptance_over_bare": _ratio(capacity, bare),
        "acceptance_over_storage": _ratio(capacity, storage),
        "hot_over_spread": _ratio(hot_rate, capacity),
        "p99_at_50pct_over_p50_at_10pct": _ratio(mid.latency_ms.p99_ms, low.latency_ms.p50_ms),
        "transfers_hot_over_spread": _ratio(
            phases["transfers"]["hot"]["transfers_per_s"],
            phases["transfers"]["spread"]["transfers_per_s"],
        ),
    }
    out["rates"] = {"bare_per_s": round(bare), "accept_spread_per_s": round(capacity),
                    "accept_hot_per_s": round(hot_rate), "storage_spread_per_s": storage,
                    "storage_hot_per_s": phases["storage_hot"]["accepts_per_s"],
                    "e2e_offered_per_s": plan.e2e_per_s,
                    "e2e_capacity_per_s": phases["capacity"]["capacity_per_s"],
                    "transfer_hot_per_s": phases["transfers"]["hot"]["transfers_per_s"],
                    "transfer_spread_per_s": phases["transfers"]["spread"]["transfers_per_s"],
                    }  # fmt: skip
    out["generator"] = {
        "processes": procs,
        "noop": _generator_cost(noop),
        "spread": _generator_cost(spread_sat),
    }
    out["took_s"] = round(time.monotonic() - t0, 1)
    out["results"] = {"noop": noop, "e2e": e2e, "spread": spread_sat, "hot": hot_sat,
                      "at10": low, "at50": mid, **transfer_results}  # fmt: skip
    return out


async def transfers_phase(
    info: dict[str, Any], merchants: Sequence[MerchantCred], plan: BenchPlan
) -> tuple[dict[str, Any], dict[str, LoadResult]]:
    """Phase 6: internal transfers at saturation, hot account then spread, each a ramp like
    acceptance at saturation (the rate is the peak, refusals counted beside it). Returns the
    phase's figures and its two runs."""
    offered = plan.offered_transfer_per_s
    owners = merchants[: plan.transfer_merchants]
    say(f"[6/7] internal transfers at saturation ({offered:.0f}/s offered): opening and "
        f"funding {plan.transfer_accounts} personal accounts for each of {len(owners)} "
        "merchants ...")  # fmt: skip
    books = await open_accounts(info["gateway_url"], owners, plan.transfer_accounts)
    shapes = {"hot": hot_load(books[0]), "spread": spread_load(books)}
    out: dict[str, Any] = {"accounts": sum(len(b.personal) for b in books)}
    results: dict[str, LoadResult] = {}
    for name, load in shapes.items():
        r = await asyncio.to_thread(_run, info, load.merchants, "transfers", offered, plan.phase_s,
                                    f"tr{name}", "round_robin", True,
                                    plan.generator_processes, load.routes)  # fmt: skip
        counts, peak = outcome(r), round(_peak_per_s(r))
        say(f"  {name} ({len(load.routes)} routes): {peak:,} transfers/s; {describe(counts)}")
        out[name] = {**_phase(r), "transfers_per_s": peak,
                     "routes": len(load.routes), "merchants": len(load.merchants),
                     "outcome": counts}  # fmt: skip
        results[f"transfers_{name}"] = r
    return out, results


def _phase(r: LoadResult) -> dict[str, Any]:
    lat = r.latency_ms
    return {
        "offered_per_s": round(r.totals.offered_rate_per_s),
        "served_2xx_per_s": round(_served_per_s(r)),
        "completed": r.totals.completed,
        "errors": r.totals.errors,
        "by_status": r.by_status,
        "latency_ms": {
            "p50": lat.p50_ms,
            "p99": lat.p99_ms,
            "p999": lat.p999_ms,
            "max": lat.max_ms,
        },
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


async def _pause_dispatch(info: dict[str, Any], paused: bool) -> None:
    async with AdminClient(info["gateway_url"], info["admin_token"]) as admin:
        resp = await admin.patch("/admin/dispatch", {"paused": paused})
        assert resp.status == 200, resp.body


def _generator_cost(r: LoadResult) -> dict[str, Any]:
    """The load generator's CPU per 1,000 requests it sent, and its share of the run."""
    cpu_s = generator_cpu_s(r)
    if cpu_s is None or not r.totals.sent:
        return {"cpu_ms_per_1000": None, "cores": None}
    return {"cpu_ms_per_1000": round(cpu_s * 1e6 / r.totals.sent, 1),
            "cores": round(cpu_s / max(r.totals.duration_s, 1e-9), 2)}  # fmt: skip


def table(out: dict[str, Any]) -> str:
    p = out["phases"]
    r = out["ratios"]
    e2e = p["e2e"]
    cap = p["capacity"]
    rows = [
        ("bare ceiling (signed no-op)",
         f"{out['rates']['bare_per_s']:,}/s{generator_bound_note(out['generator'], 'noop')}"),
        ("acceptance, spread saturation", f"{out['rates']['accept_spread_per_s']:,}/s  "
         f"(dispatch paused: the API alone){generator_bound_note(out['generator'], 'spread')}"),
        ("acceptance, hot merchant saturation", f"{out['rates']['accept_hot_per_s']:,}/s"),
        ("storage ceiling spread / hot", f"{out['rates']['storage_spread_per_s']:,}/s / "
                                          f"{out['rates']['storage_hot_per_s']:,}/s"),
        ("latency at 10% load p50/p99/p99.9", _lat(p["accept_10pct"])),
        ("latency at 50% load p50/p99/p99.9", _lat(p["accept_50pct"])),
        *transfer_rows(p["transfers"]),
        ("end to end offered / served", f"{e2e['offered_per_s']}/s / {e2e['served_2xx_per_s']}/s"),
        ("  accept -> final p50 / p99", _pair(e2e["db"]["accept_to_final_ms"])),
        ("  notification lag p50 / p99", _pair(e2e["db"]["notification_lag_ms"])),
        ("  backlog growth (open payouts/s)", str(e2e["backlog_growth_per_s"])),
        *writes_lines(e2e.get("writes")),
        ("end to end capacity", f"{cap['capacity_per_s']:,} payouts/s"),
        *cost_lines(cap["cost"] or {}),
        ("load generator (noop / spread)", _gen(out["generator"])),
        ("gateway processes", str(out["plan"]["gateway_processes"])),
        ("RATIO acceptance / bare ceiling", str(r["acceptance_over_bare"])),
        ("RATIO acceptance / storage ceiling", str(r["acceptance_over_storage"])),
        ("RATIO hot / spread", str(r["hot_over_spread"])),
        ("RATIO p99@50% / p50@10%", str(r["p99_at_50pct_over_p50_at_10pct"])),
        ("RATIO transfers hot / spread", str(r["transfers_hot_over_spread"])),
        ("ledger check (end of run)", ledger_line(out["ledger"])),
        speed_line(out.get("machine")),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


# A generator process this busy is a limit of its own: the figure is the generator's.
GENERATOR_BOUND_CORES = 0.85


def generator_bound_note(g: dict[str, Any], phase: str) -> str:
    """A warning for a saturation figure when the load generator, not the server, was busy
    enough to be its limit (its processes at GENERATOR_BOUND_CORES of a core each or more)."""
    cores = g[phase]["cores"]
    if cores is None or cores / g["processes"] < GENERATOR_BOUND_CORES:
        return ""
    return (f"  [LOAD GENERATOR BOUND: {cores} cores in {g['processes']} process(es); "
            "try --generators N or wrk]")  # fmt: skip


def _gen(g: dict[str, Any]) -> str:
    def one(d: dict[str, Any]) -> str:
        if d["cpu_ms_per_1000"] is None:
            return "n/a"
        return f"{d['cpu_ms_per_1000']:,.0f} CPU ms per 1,000 requests ({d['cores']} cores)"

    return f"{one(g['noop'])} / {one(g['spread'])}, {g['processes']} process(es)"


def _lat(phase: dict[str, Any]) -> str:
    lat = phase["latency_ms"]
    return f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['p999']:.1f} ms"


def _pair(d: dict[str, Any]) -> str:
    return f"{d['p50']} / {d['p99']} ms (n={d['n']})"
