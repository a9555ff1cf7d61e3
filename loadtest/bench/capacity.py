"""End-to-end capacity (SPEC 13): the highest offered payout rate that holds — every accept
answered 2xx, the open backlog not growing, p99 accept->final under 1 s (from the merchant's
request to the final status: the request's p99 plus the server's accepted->final p99, an upper
bound) — found by stepping.

Coarse steps multiply the rate until one fails; two more steps narrow the gap between the last
rate that held and the first that did not; the best rate that held is then held again for the
full `hold_s` (30 s in the full benchmark), stepping down if it does not hold. Each
step is measured on its own: its payouts' accept->final latency from the database (payouts
still open count as too slow), the backlog sampled every second, and what it cost
(`loadtest/bench/cost.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from loadtest.bench.cost import CostMeter, cost_summary
from loadtest.generator.result import LoadResult
from loadtest.system import observe
from protocol.ids import floor_id

P99_LIMIT_MS = 1000.0
# The window's last payouts get this long to finish before its latency is read.
GRACE_S = 2.0
# Backlog growth tolerated per second, as a share of the offered rate: the backlog settles at
# rate x latency after each step up, so a short step sees that rise; a real overload keeps
# growing (and shows in the p99 too). Judged only on enough samples.
GROWTH_SHARE = 0.05
GROWTH_FLOOR = 20.0
MIN_SAMPLES = 4
STEP_DOWN = 0.85
# A short step can pass a rate the system cannot keep up for 30 s (its backlog grows slowly):
# holds then step down until one holds.
HOLD_TRIES = 6
REFINE_STEPS = 2


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    start_per_s: float
    factor: float  # coarse steps: rate *= factor while they hold
    max_per_s: float
    step_s: float  # coarse step length
    hold_s: float  # the confirming hold (30 s in the full benchmark)
    drain_s: float  # at most this long for a failed step's backlog to clear before a hold


@dataclass(frozen=True, slots=True)
class Step:
    rate_per_s: float
    seconds: float
    accepted: int
    refused_or_failed: int  # non-2xx answers and transport errors
    p99_request_ms: float  # the accept request, from its scheduled send (the generator's)
    p99_final_ms: float | None  # accepted -> final, on the server (payout rows)
    p99_total_ms: float | None  # the two added: what the 1 s limit applies to
    still_open: int  # payouts of the window not final after the grace period
    backlog_growth_per_s: float | None
    # What the step cost the write-ahead log: KB per payout accepted, full-page images (the
    # first change to a page after a checkpoint writes the whole page) and checkpoints done.
    wal_kb_per_payout: float | None
    full_page_images: int
    checkpoints: int
    held: bool
    why_not: str


# Runs one constant-rate load of the given rate and seconds; returns its result.
Runner = Callable[[float, float, str], Awaitable[LoadResult]]


async def _latency(conn: asyncpg.Connection, since: datetime, until: datetime) -> tuple[Any, int]:
    # By id range (ids follow creation time): the primary key, not a scan of every payout.
    row = await conn.fetchrow(
        """SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY
                      CASE WHEN status = ANY($3::text[])
                           THEN extract(epoch FROM updated_at - created_at) * 1000
                           ELSE 1e9 END) AS p99,
                  count(*) FILTER (WHERE NOT (status = ANY($3::text[]))) AS open
           FROM payouts WHERE id >= $1 AND id < $2""",
        floor_id("po", since.timestamp()),
        floor_id("po", until.timestamp()),
        list(observe.FINAL),
    )
    assert row is not None
    return row["p99"], int(row["open"])


async def _wait_final(conn: asyncpg.Connection, since: datetime, until: datetime) -> None:
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        _, still_open = await _latency(conn, since, until)
        if not still_open:
            return
        await asyncio.sleep(0.2)  # polling the window's payouts, with a deadline


async def measure_step(
    info: dict[str, Any], run: Runner, rate: float, seconds: float, tag: str
) -> tuple[Step, LoadResult, datetime, datetime]:
    stop = asyncio.Event()
    samples = observe.Samples()
    conn = await asyncpg.connect(info["database_url"])
    try:
        wal_before = await observe.wal_reading(conn)
        sampler = asyncio.create_task(observe.sample_until(info["database_url"], stop, samples))
        since = datetime.now(UTC)
        try:
            result = await run(rate, seconds, tag)
        finally:
            until = datetime.now(UTC)
            stop.set()
            await sampler
        await _wait_final(conn, since, until)
        p99, still_open = await _latency(conn, since, until)
        wal_after = await observe.wal_reading(conn)
    finally:
        await conn.close()
    wal = {k: wal_after[k] - wal_before[k] for k in wal_before}
    ok = sum(v for k, v in result.by_status.items() if k.startswith("2"))
    bad = result.totals.completed + result.totals.errors - ok
    half = samples.rows[len(samples.rows) // 2 :]
    growth = observe.slope(samples.rows, "open_payouts") if len(half) >= MIN_SAMPLES else None
    p99_ms = None if p99 is None else round(float(p99), 1)
    # From the merchant's side: the request waited (scheduled -> answered) before the payout
    # existed, then accept -> final ran on the server. Their p99s added bound the whole.
    accept_p99_ms = round(result.latency_ms.p99_ms, 1)
    total_ms = None if p99_ms is None else round(accept_p99_ms + p99_ms, 1)
    reasons = []
    if bad:
        reasons.append(f"{bad} accepts not 2xx")
    if total_ms is None or total_ms >= P99_LIMIT_MS:
        reasons.append(f"p99 request {accept_p99_ms} ms + accept->final {p99_ms} ms")
    if growth is not None and growth > max(GROWTH_FLOOR, GROWTH_SHARE * rate):
        reasons.append(f"backlog grows {growth}/s")
    step = Step(rate_per_s=round(rate), seconds=seconds, accepted=ok, refused_or_failed=bad,
                p99_request_ms=accept_p99_ms, p99_final_ms=p99_ms, p99_total_ms=total_ms,
                still_open=still_open, backlog_growth_per_s=growth,
                wal_kb_per_payout=round(wal["wal_bytes"] / 1024 / ok, 1) if ok else None,
                full_page_images=wal["full_page_images"], checkpoints=wal["checkpoints"],
                held=not reasons, why_not="; ".join(reasons))  # fmt: skip
    return step, result, since, until


async def find_capacity(
    info: dict[str, Any],
    run: Runner,
    plan: CapacityPlan,
    meter: CostMeter,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The capacity, every step taken, and the cost table of the confirming hold."""
    steps: list[Step] = []
    rate = plan.start_per_s
    best: float | None = None
    while rate <= plan.max_per_s:
        step, *_ = await measure_step(info, run, rate, plan.step_s, f"cap{round(rate)}-")
        steps.append(step)
        say(f"  {round(rate)}/s for {plan.step_s:.0f}s: "
            f"{'held' if step.held else 'did not hold: ' + step.why_not}")  # fmt: skip
        if not step.held:
            break
        best = rate
        rate *= plan.factor
    # Narrow the gap between the last rate that held and the first that did not.
    failed = rate
    for _ in range(REFINE_STEPS if best is not None else 0):
        assert best is not None
        if failed / best < 1.05:
            break
        mid = (best * failed) ** 0.5
        await observe.wait_quiet(info["database_url"], plan.drain_s)  # the failure's backlog
        step, *_ = await measure_step(info, run, mid, plan.step_s, f"cap{round(mid)}-")
        steps.append(step)
        say(f"  {round(mid)}/s for {plan.step_s:.0f}s: "
            f"{'held' if step.held else 'did not hold: ' + step.why_not}")  # fmt: skip
        if step.held:
            best = mid
        else:
            failed = mid
    candidate = best if best is not None else plan.start_per_s * STEP_DOWN
    capacity: float | None = None
    cost: dict[str, Any] | None = None
    async with aiohttp.ClientSession() as http:
        for _ in range(HOLD_TRIES):
            # A step that did not hold left a backlog: let it clear, so the hold (and its
            # cost table) measures its own payouts only.
            left = await observe.wait_quiet(info["database_url"], plan.drain_s)
            before = await meter.read(http)
            step, result, _, _ = await measure_step(
                info, run, candidate, plan.hold_s, f"hold{round(candidate)}-"
            )
            after = await meter.read(http)
            steps.append(step)
            say(f"  hold {round(candidate)}/s for {plan.hold_s:.0f}s: "
                f"{'held' if step.held else 'did not hold: ' + step.why_not}")  # fmt: skip
            cost = cost_summary(before, after, step.accepted, generator_cpu_s(result))
            cost["rate_per_s"] = round(candidate)
            cost["backlog_before"] = left  # not 0: the figures include older work
            if step.held:
                capacity = candidate
                break
            candidate *= STEP_DOWN
    return {
        "capacity_per_s": round(capacity) if capacity is not None else 0,
        "steps": [asdict(s) for s in steps],
        "cost": cost,
    }


def generator_cpu_s(result: LoadResult) -> float | None:
    """The load generator's own CPU seconds over the run, when it reported them."""
    cpu = getattr(result.totals, "cpu_s", None)
    return float(cpu) if cpu is not None else None
