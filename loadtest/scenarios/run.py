"""`paygate scenario run` (SPEC 12): drive one scenario against a running system, answer the
operator's questions, check the assertions, write the report.

The system is a fresh `paygate up` (cli/scenario.py starts it with the scenario's time scale). Here:
the clock jumps to day 1's start; merchants are created; the open-loop generator sends the load
while the timeline's events fire at their simulated times (timeline.py: bank profile changes,
kills, callback storms, clock jumps, review decisions); the backlog drains; then the answers:
peak 垫资 exposure and when, uncovered exposure, money lost (the bank's paid set against the
gateway's settled set), payouts stuck past the SLO, refusals by reason, reconciliation per
bank, the ledger check.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from gateway.client import AdminClient
from loadtest.bench.transfers import open_accounts, spread_load
from loadtest.generator.merge import merge_results
from loadtest.generator.processes import run_in_process
from loadtest.generator.result import LoadResult
from loadtest.generator.shapes import Shape, constant, spike
from loadtest.generator.spec import LoadSpec, MerchantCred
from loadtest.scenarios import phases
from loadtest.scenarios import watch as scenario_watch
from loadtest.scenarios.model import Bound, Load, Scenario, day_and_time, day_one, sim_offset_s
from loadtest.scenarios.simtime import ClockMap
from loadtest.scenarios.timeline import jump_to, run_timeline, say, set_profile, wall_s
from loadtest.scenarios.watch import Watch
from loadtest.system import observe
from protocol.clock import BUSINESS_TZ

DRAIN_MIN_S = 20.0
# Wall seconds between setting the clock and the load's first request: time for the load
# generator's process to start, so that its first second is day 1's start.
LEAD_S = 2.0
OPEN = ("review_pending", "accepted", "processing")
PAID = ("succeeded", "returned")


@dataclass
class Outcome:
    scenario: Scenario
    fast: bool
    time_scale: float
    start: datetime  # day 1's start, simulated
    load: LoadResult
    load_start_wall: float  # unix seconds of the load's first scheduled request
    clock: ClockMap
    samples: list[dict[str, Any]]  # the watch's, each second (wall unix seconds in "wall")
    payout_times: list[tuple[float, float | None, str]]  # accepted, first final, status
    totals: dict[str, Any]
    answers: dict[str, Any]
    recon: dict[str, dict[str, int]]
    ledger: dict[str, Any]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    exposure: dict[str, Any] = field(default_factory=dict)  # GET /admin/exposure at the end

    @property
    def passed(self) -> bool:
        return not self.failures


def effective_time_scale(scenario: Scenario, fast: bool) -> float:
    return scenario.time_scale * (scenario.fast_factor if fast else 1.0)


def load_shape(load: Load, scenario: Scenario, time_scale: float, start: datetime) -> Shape:
    duration = wall_s(scenario.duration_min * 60, time_scale)
    if load.shape == "spike" and load.spike_at is not None:
        at = wall_s(sim_offset_s(load.spike_at, start), time_scale)
        length = wall_s(load.spike_min * 60, time_scale)
        return spike(load.rate_per_s, load.spike_rate_per_s, duration, at, length)
    return constant(load.rate_per_s, duration)


def check(expect: dict[str, Bound | bool], answers: dict[str, Any]) -> list[str]:
    """The assertions that do not hold, each as a reason."""
    failures = []
    for key, bound in expect.items():
        if key not in answers:
            failures.append(f"{key}: no such answer")
            continue
        value = answers[key]
        if isinstance(bound, bool):
            if bool(value) != bound:
                failures.append(f"{key} is {value}, expected {bound}")
            continue
        if bound.min is not None and value < bound.min:
            failures.append(f"{key} {value} < min {bound.min:g}")
        if bound.max is not None and value > bound.max:
            failures.append(f"{key} {value} > max {bound.max:g}")
    return failures


async def _admin(info: dict[str, Any]) -> AdminClient:
    client = AdminClient(info["gateway_url"], info["admin_token"])
    await client.__aenter__()
    return client


async def _prepare(info: dict[str, Any], sc: Scenario, admin: AdminClient) -> list[MerchantCred]:
    url = f"{info['bank_sim_url']}/sim/preset/{sc.bank_preset}"
    async with aiohttp.ClientSession() as http, http.put(url) as r:
        if r.status != 200:
            raise RuntimeError(f"bank preset {sc.bank_preset}: {r.status} {await r.text()}")
    for bank, patch in sc.banks.items():
        await set_profile(info["bank_sim_url"], bank, patch)
    creds = []
    for m in sc.merchants:
        made = await admin.create_merchant(
            name=f"{sc.name} {m.name}", funding_mode=m.funding_mode,
            advance_limit=m.advance_limit_fen,
            rate_limit={"rps": m.rate_limit.rps, "burst": m.rate_limit.burst},
            review_threshold=m.review_threshold_fen,
        )  # fmt: skip
        if sc.webhooks:
            await _notify_at_sink(info, admin, made["id"], made["secret"])
        if m.credit_fen:
            resp = await admin.credit(made["id"], m.credit_fen, f"scenario-{made['id']}")
            if resp.status != 201:
                raise RuntimeError(f"credit for {made['id']}: {resp.status} {resp.body!r}")
        creds.append(MerchantCred(made["id"], made["secret"], m.weight))
    return creds


async def _notify_at_sink(
    info: dict[str, Any], admin: AdminClient, merchant_id: str, secret: str
) -> None:
    """The run's webhook sink learns the merchant's secret (to verify what it is sent), then
    the merchant's notifications go there."""
    sink = info["webhook_sink_url"]
    body = orjson.dumps({"secret": secret})
    async with aiohttp.ClientSession() as http, http.put(f"{sink}/merchants/{merchant_id}",
                                                         data=body) as r:  # fmt: skip
        if r.status not in (200, 201):
            raise RuntimeError(f"sink registration of {merchant_id}: {r.status}")
    resp = await admin.patch(f"/admin/merchants/{merchant_id}",
                             {"notify_url": f"{sink}/notify/{merchant_id}"})  # fmt: skip
    if resp.status != 200:
        raise RuntimeError(f"notify_url of {merchant_id}: {resp.status} {resp.body!r}")


async def _open_accounts(
    info: dict[str, Any], sc: Scenario, creds: list[MerchantCred]
) -> dict[int, dict[str, Any]]:
    """For each load with the `accounts` workload (by its index in `sc.loads()`): its classes'
    personal accounts, opened and funded over the merchant API, as the generator's routes (a
    ring per merchant) and which of its merchants front failed debits (垫资 ones)."""
    out: dict[int, dict[str, Any]] = {}
    for g, (load, classes) in enumerate(sc.loads()):
        if load.workload != "accounts":
            continue
        books = []
        for k in classes:
            m = sc.merchants[k]
            books += await open_accounts(info["gateway_url"], [creds[k]], m.accounts,
                                         m.account_fund_fen)  # fmt: skip
        say(f"load {g + 1}: {sum(len(b.personal) for b in books)} personal accounts opened")
        fronting = tuple(j for j, k in enumerate(classes)
                         if sc.merchants[k].funding_mode == "advance")  # fmt: skip
        out[g] = {"routes": spread_load(books).routes, "advance_merchants": fronting}
    return out


async def _money_and_stuck(info: dict[str, Any], since: datetime) -> dict[str, int]:
    url = f"{info['bank_sim_url']}/sim/records"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        records = orjson.loads(await r.read())["data"]
    conn = await asyncpg.connect(info["database_url"])
    try:
        rows = await conn.fetch(
            "SELECT id, status, amount_fen FROM payouts WHERE created_at >= $1", since
        )
        # A payout event recorded twice: a status word taken twice (a replayed callback
        # applied as news), which would move money twice and notify twice.
        events_twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT 1 FROM outbox_events
               WHERE created_at >= $1 AND (type LIKE 'payout.%' OR type LIKE 'collection.%')
               GROUP BY object_id, type HAVING count(*) > 1) d""",
            since,
        )
        debits = await conn.fetch(
            "SELECT id, status, amount_fen FROM collections WHERE created_at >= $1", since
        )
        open_by = await conn.fetch(
            """SELECT 'payout ' || q.state AS state, coalesce(p.bank_id, '-') AS bank,
                      count(*) AS n, max(q.poll_count) AS polls
               FROM payout_queue q JOIN payouts p ON p.id = q.payout_id GROUP BY 1, 2
               UNION ALL
               SELECT 'collection ' || q.state, coalesce(c.bank_id, '-'), count(*),
                      max(q.poll_count)
               FROM collection_queue q JOIN collections c ON c.id = q.collection_id
               GROUP BY 1, 2"""
        )
        # Open with no queue row: nothing would ever move it on (work lost, not slow work).
        unqueued = await conn.fetch(
            """SELECT p.id, p.status FROM payouts p
               WHERE p.created_at >= $1 AND p.status = ANY($2::text[])
                 AND NOT EXISTS (SELECT 1 FROM payout_queue q WHERE q.payout_id = p.id)
               UNION ALL
               SELECT c.id, c.status FROM collections c
               WHERE c.created_at >= $1 AND c.status = 'pending'
                 AND NOT EXISTS (SELECT 1 FROM collection_queue q
                                 WHERE q.collection_id = c.id)""",
            since,
            list(OPEN),
        )
    finally:
        await conn.close()
    gateway = {r["id"]: (r["status"], r["amount_fen"]) for r in rows}
    bank_paid = {r["ref"]: r["amount"] for r in records
                 if r["status"] in PAID and r["ref"] in gateway}  # fmt: skip
    gw_paid = {pid: amount for pid, (status, amount) in gateway.items() if status in PAID}
    # Money lost: the bank paid a payout the gateway ended unpaid (failed, rejected), or the
    # gateway settled one the bank did not pay. One still in flight is stuck, not lost.
    lost = sum(a for pid, a in bank_paid.items()
               if pid not in gw_paid and gateway[pid][0] not in OPEN)  # fmt: skip
    lost += sum(a for pid, a in gw_paid.items() if pid not in bank_paid)
    # Collections (代收): the bank took the payer's money and the gateway ended the collection
    # failed, or the gateway credited money the bank never took.
    collections = {r["id"]: (r["status"], r["amount_fen"]) for r in debits}
    bank_took = {r["ref"] for r in records if r["ref"] in collections
                 and r["status"] == "succeeded"}  # fmt: skip
    lost += sum(
        a
        for cid, (status, a) in collections.items()
        if status != "pending" and (cid in bank_took) != (status == "succeeded")
    )
    known = gateway.keys() | collections.keys()
    twice = sum(1 for r in records if r["ref"] in known and r["submissions"] > 1)
    stuck = sum(1 for status, _ in gateway.values() if status in OPEN)
    stuck += sum(1 for status, _ in collections.values() if status == "pending")
    if stuck:
        by = [f"{r['bank']} {r['state']} x{r['n']} (polls up to {r['polls']})" for r in open_by]
        say("open after the drain: " + ", ".join(by))
        if unqueued:
            say(
                "open with no queue row: "
                + ", ".join(f"{r['id']} {r['status']}" for r in unqueued[:10])
            )
    return {"money_lost_fen": lost, "submitted_twice": twice, "stuck_payouts": stuck,
            "events_twice": int(events_twice),
            "payouts": len(gateway), "paid": len(gw_paid), "collections": len(collections),
            "collected": sum(1 for s, _ in collections.values() if s == "succeeded")}  # fmt: skip


async def _reconcile(info: dict[str, Any], admin: AdminClient, since: datetime) -> dict[str, Any]:
    conn = await asyncpg.connect(info["database_url"])
    try:
        pairs = await conn.fetch(
            """SELECT bank_id, bank_date FROM payouts
               WHERE created_at >= $1 AND bank_date IS NOT NULL
               UNION
               SELECT bank_id, bank_date FROM collections
               WHERE created_at >= $1 AND bank_date IS NOT NULL ORDER BY 1, 2""",
            since,
        )
    finally:
        await conn.close()
    out: dict[str, dict[str, int]] = {}
    for p in pairs:
        resp = await admin.post("/admin/reconcile", {"bank_id": p["bank_id"],
                                "date": p["bank_date"].isoformat(), "apply": False})  # fmt: skip
        if resp.status != 200:
            out[f"{p['bank_id']} {p['bank_date']}"] = {"error": resp.status}
            continue
        report = resp.json()
        # Differences that need an operator (safe ones are only counted by kind).
        opened = sum(1 for item in report["items"] if "exception_id" in item)
        out[f"{p['bank_id']} {p['bank_date']}"] = report["summary"] | {"exceptions": opened}
    return out


def _exceptions(summary: dict[str, int]) -> int:
    return int(summary.get("exceptions", 0)) + (1 if "error" in summary else 0)


async def _set_day_one(admin: AdminClient, info: dict[str, Any], sc: Scenario,
                       time_scale: float) -> tuple[datetime, float]:  # fmt: skip
    """Jump the clock so that day 1's start comes LEAD_S wall seconds from now: day 1's start
    and the wall moment (unix s) it is reached, exact from the clock's anchor."""
    now = datetime.fromisoformat((await admin.get("/admin/clock")).json()["now"])
    lead = timedelta(seconds=LEAD_S * time_scale)
    start = day_one(now + lead, sc.start)
    await jump_to(admin, start - lead)
    anchor = await scenario_watch.anchor_now(info["database_url"])
    return start, anchor.wall_s + (start.timestamp() - anchor.sim_s) / anchor.scale


async def drive(info: dict[str, Any], state_dir: Path, sc: Scenario, fast: bool) -> Outcome:
    time_scale = effective_time_scale(sc, fast)
    admin = await _admin(info)
    try:
        since = datetime.now(UTC) - timedelta(seconds=1)
        creds = await _prepare(info, sc, admin)
        by_class = {m.name: c for m, c in zip(sc.merchants, creds, strict=True)}
        routed = await _open_accounts(info, sc, creds)
        start, load_start_wall = await _set_day_one(admin, info, sc, time_scale)
        say(f"day 1 starts {start.astimezone(BUSINESS_TZ):%Y-%m-%d %H:%M} China time; "
            f"simulated time x{time_scale:g}")  # fmt: skip
        run_id = f"sc{int(time.time())}"
        specs = [
            LoadSpec(
                base_url=info["gateway_url"], merchants=tuple(creds[k] for k in classes),
                workload=load.workload, shape=load_shape(load, sc, time_scale, start), seed=7,
                run_id=f"{run_id}g{g}", merchant_pick="weighted",
                start_at_unix_s=load_start_wall, **routed.get(g, {}),
            )
            for g, (load, classes) in enumerate(sc.loads())
        ]  # fmt: skip
        stop = asyncio.Event()
        watch = Watch()
        sampler = asyncio.create_task(
            scenario_watch.watch_until(info["database_url"], admin, stop, watch)
        )
        log: list[dict[str, Any]] = []
        t0 = time.monotonic() + (load_start_wall - time.time())  # the load's start, monotonic
        events = asyncio.create_task(
            run_timeline(info, state_dir, admin, sc, start, time_scale, t0, log, by_class)
        )
        try:
            wall = wall_s(sc.duration_min * 60, time_scale)
            say(f"{sc.duration_min:g} simulated minutes of load in {wall:.0f}s ...")
            # One generator process per load (a class with a shape of its own has its own).
            load = merge_results(await asyncio.gather(*(
                asyncio.to_thread(run_in_process, spec, relay_prefix=f"load {g + 1}")
                for g, spec in enumerate(specs))))  # fmt: skip
            await events  # events after the load's end still fire
            drain_s = max(DRAIN_MIN_S, sc.slo_s / time_scale)
            drain_t0 = time.monotonic()
            left = await observe.wait_quiet(info["database_url"], drain_s)
            took_s = time.monotonic() - drain_t0
            if left:
                say(f"{left} payouts/collections/notifications still open after the drain "
                    f"({took_s:.0f}s of {drain_s:.0f}s)")  # fmt: skip
            else:
                say(f"drained in {took_s:.1f}s (of up to {drain_s:.0f}s)")
        finally:
            stop.set()
            events.cancel()
            await asyncio.gather(sampler, events, return_exceptions=True)
        totals = await observe.totals(info["database_url"], since)
        times = await scenario_watch.payout_times(info["database_url"], since)
        watch.anchors.add(await scenario_watch.anchor_now(info["database_url"]))
        exposure = (await admin.get("/admin/exposure")).json()
        ledger = (await admin.get("/admin/ledger/check")).json()
        money = await _money_and_stuck(info, since)
        recon = await _reconcile(info, admin, since)
    finally:
        await admin.close()
    clock = ClockMap(watch.anchors, start)
    rows = watch.rows
    peak = max(rows, key=lambda r: r["advance_used"]) if rows else None
    peak_at = datetime.fromtimestamp(clock.sim_s(peak["wall"]), UTC) if peak else start
    final = {s: n for s, n in totals["status"].items() if s not in OPEN}
    answers: dict[str, Any] = {
        "ledger_ok": bool(ledger["ok"]),
        "money_lost_fen": money["money_lost_fen"],
        "submitted_twice": money["submitted_twice"],
        "events_twice": money["events_twice"],
        "stuck_payouts": money["stuck_payouts"],
        "payouts": money["payouts"],
        "success_ratio": round(final.get("succeeded", 0) / max(1, sum(final.values())), 4),
        "request_p99_ms": round(load.latency_ms.p99_ms, 1),
        "server_errors": sum(n for code, n in load.by_status.items() if int(code) >= 500),
        # 5xx other than 503 (a store down or restarting, SPEC 14): the gateway's own bugs.
        "internal_errors": sum(
            n for code, n in load.by_status.items() if int(code) >= 500 and int(code) != 503
        ),
        "no_answer": int(load.totals.errors),
        "rate_limited": int(load.by_code.get("rate_limited", 0)),
        "peak_advance_used_fen": int(peak["advance_used"]) if peak else 0,
        "peak_advance_at": day_and_time(peak_at, start),
        "uncovered_fen": int(exposure.get("uncovered", 0)),
        "collections": money["collections"],
        "collections_succeeded": money["collected"],
        "collections_fronted_end_fen": int(exposure.get("collections_fronted", 0)),
        "advance_used_end_fen": int(exposure.get("advance_used", 0)),
        "recon_exceptions": sum(_exceptions(s) for s in recon.values()),
    }
    slo = phases.slo_per_phase(phases.phases(sc, start), times, clock, sc.slo_s)
    answers["slo_phases"] = slo
    shares = [p["within_slo"] for p in slo if p["within_slo"] is not None]
    answers["slo_within_min"] = min(shares, default=1.0)
    outcome = Outcome(sc, fast, time_scale, start, load, load_start_wall, clock, rows, times,
                      totals, answers, recon, ledger, log, exposure=exposure)  # fmt: skip
    outcome.failures = check(sc.expect, answers)
    return outcome


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def answer_rows(o: Outcome) -> list[tuple[str, str]]:
    a = o.answers
    refusals = ", ".join(f"{k}: {v}" for k, v in sorted(o.load.by_code.items())) or "none"
    recon = "; ".join(f"{k}: {_exceptions(v)} exceptions" for k, v in o.recon.items()) or "-"
    return [
        ("peak 垫资 exposure (advance used) and when",
         f"{yuan(a['peak_advance_used_fen'])} at {a['peak_advance_at']} China time"),
        ("uncovered exposure after reversals", yuan(a["uncovered_fen"])),
        ("money lost (must be ¥0.00)", yuan(a["money_lost_fen"])),
        ("orders submitted to a bank twice; events recorded twice",
         f"{a['submitted_twice']}; {a['events_twice']}"),
        ("payouts and collections stuck past the SLO (open after the drain)",
         str(a["stuck_payouts"])),
        *[phases.row(o.scenario.slo_s, p) for p in a["slo_phases"]],
        ("payouts / success ratio of final ones", f"{a['payouts']} / {a['success_ratio']:.2%}"),
        *([("collections (代收) / succeeded; still fronted for payers (公司垫付) at the end",
            f"{a['collections']} / {a['collections_succeeded']}; "
            f"{yuan(a['collections_fronted_end_fen'])}")] if a["collections"] else []),
        ("request p99; 5xx answers (of which not 503); requests with no answer",
         f"{a['request_p99_ms']} ms; {a['server_errors']} ({a['internal_errors']}); "
         f"{a['no_answer']}"),
        ("refusals by reason", refusals),
        ("reconciliation per bank and date", recon),
        ("ledger check", "PASS" if a["ledger_ok"] else "FAIL"),
    ]  # fmt: skip


def last_line(o: Outcome) -> str:
    if o.passed:
        return f"scenario {o.scenario.name}: PASS"
    return f"scenario {o.scenario.name}: FAIL ({'; '.join(o.failures)})"
