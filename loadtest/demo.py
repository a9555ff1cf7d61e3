"""`paygate demo` (what `make run` runs): the whole system, ~30 s of mixed load, a summary and
an HTML report.

1. `paygate up` as a child (embedded storage unless URLs are given), demo merchants;
2. the banks get a little realism (some returns 退票, duplicate and lost callbacks);
3. a few large payouts of the reviewed merchant go through review (one approved, one rejected);
4. the open-loop generator (its own process) sends mixed load — payouts, batches, B2B funding,
   queries — at a base rate with a spike that the reviewed merchant's rate limit (25/s) visibly
   refuses (429); the advance merchant holds little money, so it pays out on its 垫资 line;
   two thirds in, simulated time jumps past the next day's 17:00 China-time cut-off, so T+1
   B2B funds clear and repay the advance;
5. the backlog drains, then the summary table and `.paygate/reports/demo-<time>.html`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from channels.bank_sim.presets import T_PLUS_1_CUTOFF
from gateway.client import AdminClient, MerchantClient
from loadtest import observe
from loadtest.processes import run_in_process
from loadtest.result import LoadResult
from loadtest.shapes import spike
from loadtest.spec import LoadSpec, MerchantCred
from protocol.clock import BUSINESS_TZ

BANKS = ("102", "103", "104", "105", "308", "ibps")
DEMO_BANK_PROFILE = {
    "return_prob": 0.01,
    "return_delay": {"median_ms": 20_000, "p99_ms": 60_000},
    "callback_faults": {"duplicate": 0.02, "lost": 0.01},
}
DRAIN_TIMEOUT_S = 20.0
# The reviewed merchant's rate limit: above its share of the base load, below its share of
# the spike, so the spike shows 429s for it and for no one else.
SPIKE_LIMITED = ("m_demo_review", {"rps": 25, "burst": 25})


@dataclass(frozen=True, slots=True)
class DemoPlan:
    duration_s: float = 30.0
    base_rate_per_s: float = 120.0
    spike_rate_per_s: float = 400.0
    seed: int = 7


@dataclass
class DemoOutcome:
    load: LoadResult
    samples: list[dict[str, Any]]
    totals: dict[str, Any]
    exposure: dict[str, Any]
    ledger: dict[str, Any]
    review: dict[str, str]
    started_at: datetime


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


async def _tune_banks(sim_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for bank in BANKS:
            async with http.put(f"{sim_url}/banks/{bank}/profile",
                                data=orjson.dumps(DEMO_BANK_PROFILE)) as resp:  # fmt: skip
                assert resp.status == 200, await resp.text()


async def _review_flow(info: dict[str, Any]) -> dict[str, str]:
    """Two payouts over the reviewed merchant's threshold: one approved, one rejected."""
    m = next(m for m in info["merchants"] if m["id"] == "m_demo_review")
    decided: dict[str, str] = {}
    async with (
        MerchantClient(info["gateway_url"], m["id"], m["secret"]) as client,
        AdminClient(info["gateway_url"], info["admin_token"]) as admin,
    ):
        for decision in ("approve", "reject"):
            payee = {"account_no": "6222020200998877665", "account_name": "Qian Qi",
                     "bank_code": "308584000013", "account_type": "corporate"}  # fmt: skip
            order_id = f"demo-review-{decision}-{int(time.time())}"
            body = {"merchant_order_id": order_id, "amount": 6_000_000, "currency": "CNY",
                    "payee": payee}  # fmt: skip
            resp = await client.post("/v1/payouts", body)
            payout = resp.json()
            if resp.status == 201 and payout["status"] == "review_pending":
                done = await admin.post(f"/admin/payouts/{payout['id']}/{decision}")
                decided[payout["id"]] = f"{decision}: {done.json().get('status')}"
    return decided


def seconds_past_next_cutoff(now: datetime, cutoff: str = T_PLUS_1_CUTOFF) -> float:
    """From `now` to one minute past the next day's T+1 cut-off (China time): every T+1
    payment notified before `now` is due to clear by then."""
    hour, minute = (int(x) for x in cutoff.split(":"))
    local = now.astimezone(BUSINESS_TZ)
    target = datetime.combine(local.date() + timedelta(days=1), dtime(hour, minute),
                              BUSINESS_TZ) + timedelta(minutes=1)  # fmt: skip
    return (target - local).total_seconds()


async def _jump_past_the_cutoff(info: dict[str, Any], delay_s: float) -> None:
    await asyncio.sleep(delay_s)  # a timed step of the scripted demo, not synchronisation
    async with AdminClient(info["gateway_url"], info["admin_token"]) as admin:
        now = datetime.fromisoformat((await admin.get("/admin/clock")).json()["now"])
        resp = await admin.post(
            "/admin/clock/advance", {"advance_s": seconds_past_next_cutoff(now)}
        )
        when = datetime.fromisoformat(resp.json()["now"]).astimezone(BUSINESS_TZ)
        say(f"simulated time jumps to {when:%Y-%m-%d %H:%M} China time, past the T+1 "
            f"cut-off: T+1 funds clear and repay the advance")  # fmt: skip


async def _limit_for_the_spike(info: dict[str, Any]) -> None:
    merchant_id, limit = SPIKE_LIMITED
    async with AdminClient(info["gateway_url"], info["admin_token"]) as admin:
        resp = await admin.patch(f"/admin/merchants/{merchant_id}", {"rate_limit": limit})
        assert resp.status == 200, resp.body


async def _admin_get(info: dict[str, Any], path: str) -> dict[str, Any]:
    async with AdminClient(info["gateway_url"], info["admin_token"]) as admin:
        resp = await admin.get(path)
        data: dict[str, Any] = resp.json()
        return data


async def drive(info: dict[str, Any], plan: DemoPlan) -> DemoOutcome:
    started_at = datetime.now(UTC)
    await _tune_banks(info["bank_sim_url"])
    review = await _review_flow(info)
    say(f"review flow: {len(review)} large payouts decided by an operator")
    await _limit_for_the_spike(info)
    weights = {"m_demo_prefunded": 4.0, "m_demo_advance": 4.0, "m_demo_review": 1.0}
    spec = LoadSpec(
        base_url=info["gateway_url"],
        merchants=tuple(
            MerchantCred(m["id"], m["secret"], weights.get(m["id"], 1.0)) for m in info["merchants"]
        ),
        workload="mixed",
        shape=spike(
            plan.base_rate_per_s,
            plan.spike_rate_per_s,
            plan.duration_s,
            plan.duration_s / 2,
            min(5.0, plan.duration_s / 6),
        ),
        seed=plan.seed,
        run_id=f"demo{int(time.time())}",
        merchant_pick="weighted",
    )
    stop = asyncio.Event()
    samples = observe.Samples()
    sampler = asyncio.create_task(observe.sample_until(info["database_url"], stop, samples))
    jump = asyncio.create_task(_jump_past_the_cutoff(info, plan.duration_s * 2 / 3))
    try:
        rates = f"{plan.base_rate_per_s:.0f}/s, spike to {plan.spike_rate_per_s:.0f}/s"
        say(f"sending mixed load for {plan.duration_s:.0f}s ({rates}) ...")
        load = await asyncio.to_thread(run_in_process, spec)
        say("load done; letting the banks and notifications catch up ...")
        left = await observe.wait_quiet(info["database_url"], DRAIN_TIMEOUT_S)
        if left:
            say(f"{left} payouts/notifications still open after {DRAIN_TIMEOUT_S:.0f}s")
    finally:
        stop.set()
        jump.cancel()
        await asyncio.gather(sampler, jump, return_exceptions=True)
    totals = await observe.totals(info["database_url"], started_at)
    exposure = await _admin_get(info, "/admin/exposure")
    ledger = await _admin_get(info, "/admin/ledger/check")
    return DemoOutcome(load, samples.rows, totals, exposure, ledger, review, started_at)


def summary_rows(o: DemoOutcome) -> list[tuple[str, str]]:
    t = o.load.totals
    lat = o.load.latency_ms
    status = o.totals["status"]
    rows = [
        ("requests sent / completed / no answer", f"{t.sent} / {t.completed} / {t.errors}"),
        ("achieved rate", f"{t.achieved_rate_per_s:.0f}/s (offered {t.offered_rate_per_s:.0f}/s)"),
        (
            "request latency p50 / p99 / p99.9",
            f"{lat.p50_ms:.1f} / {lat.p99_ms:.1f} / {lat.p999_ms:.1f} ms",
        ),
        ("HTTP status mix", ", ".join(f"{k}: {v}" for k, v in sorted(o.load.by_status.items()))),
        (
            "refused by reason",
            ", ".join(f"{k}: {v}" for k, v in sorted(o.load.by_code.items())) or "none",
        ),
        ("payouts accepted (created)", str(sum(status.values()))),
    ]
    for s in ("succeeded", "failed", "returned", "rejected", "processing", "accepted",
              "review_pending"):  # fmt: skip
        rows.append((f"  {s}", str(status.get(s, 0))))
    final = o.totals["accept_to_final_ms"]
    rows.append(("accept -> final p50 / p99", f"{final['p50']} / {final['p99']} ms"))
    n = o.totals["notifications"]
    # skipped: recorded, not sent (a type the merchant's notify_events leaves out), not owed
    kinds = ("delivered", "pending", "failed", "skipped")
    counts = " / ".join(str(n.get(k, 0)) for k in kinds)
    rows.append(("notifications delivered / pending / failed / skipped", counts))
    lag = o.totals["notification_lag_ms"]
    rows.append(("notification lag p50 / p99", f"{lag['p50']} / {lag['p99']} ms"))
    e = o.exposure
    money = " / ".join(_yuan(e[k]) for k in ("advance_used", "pending_in", "uncovered"))
    rows.append(("advance exposure (used / pending_in / uncovered)", money))
    failing = [c["name"] for c in o.ledger["checks"] if not c["ok"]]
    rows.append(("ledger check", "PASS" if o.ledger["ok"] else f"FAIL: {', '.join(failing)}"))
    return rows


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")
    print(flush=True)


def save_json(o: DemoOutcome, out_dir: Path, stamp: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"demo-{stamp}.json"
    path.write_bytes(orjson.dumps({
        "load": o.load.to_dict(), "samples": o.samples, "totals": o.totals,
        "exposure": o.exposure, "ledger": o.ledger, "review": o.review,
    }, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))  # fmt: skip
    return path
