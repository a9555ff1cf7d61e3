"""Accept without holding the merchant's balance row across round trips (SPEC 15: one hot
merchant across gateway processes keeps group commit).

The locked path (accept.py) holds a batch's balance rows from statement 1 to the commit:
three round trips, the decisions in Python and the commit's flush. Two gateway processes
accepting for one merchant queue on that row. Here the same decisions are made on an
unlocked snapshot, and ONE statement, committed by itself (no explicit transaction), writes
them and checks, once it holds the locks, that they still stand:
- the new rows go in first (payouts, queue, journal, outbox): no lock on the merchant;
- then the balance rows are locked in merchant order and updated by the batch's deltas
  (relative: available -= holds, today's use += the batch); their CHECK refuses an overdraft;
- then the merchants' terms are read FOR SHARE, so the latest committed ones (after the
  balance lock: the lock order), and compared with the terms the decisions used, and today's
  use with the daily budget;
- then the velocity upsert (guarded, count <= K), after the balance rows (the lock order);
- a verdict that fails the statement (a cast error naming the batch as stale) when any check
  missed, so nothing of it is committed.
The balance rows are locked from the update to the commit inside the server: no client round
trip, no Python, while the other process's batch writes its rows beside it.

The decisions stand whenever the checks pass, because the batch qualifies only when they are
monotonic (`Decided.monotonic`): every item was accepted or answered from its idempotency key,
each accepted item is paid wholly from the balance (nothing fronted: no 垫资, no pool), no
withdrawals. Then on the latest balance, which the update shows still covers the batch's total,
every item in order is still covered by the balance; today's use after the batch is within the
budget, so every prefix is; the terms are the same ones. A batch that refuses anything, fronts
anything or fails a check is decided again on the locked path, as before (a concurrent
duplicate order id fails this statement by the unique key; nothing is written twice).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from gateway.payouts.accept import AcceptResult, Decided, build_write, decide_batch
from gateway.payouts.accept_reads import MerchantTerms, read, replayed
from gateway.payouts.model import AcceptItem
from gateway.storage.batch_write import BatchWrite
from protocol.clock import BUSINESS_TZ
from risk import rules

log = logging.getLogger("paygate.accept")

STALE = "paygate: accept batch decided on stale figures"

# The terms a decision reads, compared as one row (IS NOT DISTINCT FROM: the threshold may be
# NULL on both sides).
_TERMS = ("status", "currency", "funding_mode", "advance_limit_fen", "fee_fixed_fen", "fee_bps",
          "max_amount_fen", "daily_amount_fen", "daily_count", "review_threshold_fen")  # fmt: skip
_TYPES = ("text", "text", "text", "bigint", "bigint", "int", "bigint", "bigint", "int", "bigint")


async def accept_fast(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    sim_now: datetime,
    risk_rules: rules.RiskRules,
) -> list[AcceptResult] | None:
    """The batch's answers, committed; or None when it must go the locked way (nothing of it
    was written). `conn` must not be in a transaction: each statement commits by itself."""
    if any(i.request.account_id for i in items):
        return None
    business_date = sim_now.astimezone(BUSINESS_TZ).date()
    hour = rules.hour_start(sim_now)
    reads = await read(conn, items, business_date, hour, lock=False)
    decided_on = {m: _terms_row(t) for m, t in reads.terms.items()}
    replay = await replayed(conn, [pid for _, pid in reads.existing.values()])
    d = decide_batch(items, reads, {}, replay, business_date, risk_rules)
    if not d.monotonic:
        return None
    if d.rows:
        try:
            await _write_checked(conn, d, decided_on, business_date, hour, risk_rules)
        except (asyncpg.UniqueViolationError, asyncpg.CheckViolationError,
                asyncpg.DeadlockDetectedError) as exc:  # fmt: skip
            log.info("accept batch moved under the fast path, deciding it under the lock",
                     extra={"size": len(items), "why": type(exc).__name__})  # fmt: skip
            return None
        except asyncpg.InvalidTextRepresentationError as exc:
            if STALE not in str(exc):
                raise
            log.info("accept batch moved under the fast path, deciding it under the lock",
                     extra={"size": len(items), "why": "stale"})  # fmt: skip
            return None
    return d.results


def _terms_row(t: MerchantTerms) -> tuple[object, ...]:
    f = t.funds
    return (t.status, t.currency, f.funding_mode, f.advance_limit_fen, t.fee_fixed_fen,
            t.fee_bps, t.max_amount_fen, t.daily_amount_fen, t.daily_count,
            t.review_threshold_fen)  # fmt: skip


async def _write_checked(
    conn: asyncpg.Connection,
    d: Decided,
    decided_on: dict[str, tuple[object, ...]],
    business_date: date,
    hour: datetime,
    risk_rules: rules.RiskRules,
) -> None:
    merchants = sorted({r["merchant_id"] for r in d.rows})

    def guard(w: BatchWrite) -> str:
        ids = w.arg(merchants, "text[]")
        decided = {c: w.arg([decided_on[m][k] for m in merchants], f"{pg}[]")
                   for k, (c, pg) in enumerate(zip(_TERMS, _TYPES, strict=True))}  # fmt: skip
        names = ", ".join(_TERMS)
        latest = ", ".join(f"m.{c}" for c in _TERMS)
        then = ", ".join(f"t.{c}" for c in _TERMS)
        # Each merchant's row, locked in merchant order after the balance rows (`balances`, the
        # UPDATE that locks them, is read first by the one-time condition), against the terms
        # decided on: one index probe per merchant.
        w.add("guard_terms", f"""
            SELECT t.merchant_id, ({latest}) IS NOT DISTINCT FROM ({then}) AS same
            FROM unnest({ids}, {", ".join(decided.values())}) AS t (merchant_id, {names})
            JOIN merchants m ON m.id = t.merchant_id
            WHERE (SELECT count(*) FROM balances) >= 0
            ORDER BY t.merchant_id FOR SHARE OF m""")  # fmt: skip
        # One row. Where a merchant's terms are the ones decided on, its limits are too, so
        # today's use is compared with the decided limits, found by the merchant's place in
        # the sorted list: no join, whose generic plan (PAYGATE_GENERIC_PLANS) would rescan
        # one side for every row of the other (a 256-payout batch over 1,000 merchants took
        # ~75 ms instead of ~33).
        at = f"array_position({ids}, nb.merchant_id)"
        w.add("guard", f"""
            SELECT (SELECT count(*) FROM guard_terms) AS merchants,
                   (SELECT bool_and(same) FROM guard_terms) AS same,
                   (SELECT min(merchant_id) FROM guard_terms WHERE NOT same) AS moved,
                   (SELECT count(*) FROM balances) AS balances,
                   (SELECT bool_and(nb.usage_date = {w.arg(business_date, "date")}
                                    AND nb.used_amount_fen <= ({decided["daily_amount_fen"]})[{at}]
                                    AND nb.used_count <= ({decided["daily_count"]})[{at}])
                    FROM balances nb) AS within""")  # fmt: skip
        return "(SELECT count(*) FROM guard) >= 0"

    w, expected = build_write(
        d, business_date, hour, risk_rules, before_velocity=guard, lock_in_order=True
    )
    stale = w.arg(STALE + ": ", "text")
    n_merchants, n_payees = w.arg(len(merchants), "int"), w.arg(expected["velocity"], "int")
    # One row when every check passed; otherwise the cast fails the statement.
    w.add("verdict", f"""
        SELECT 1 FROM guard g
        WHERE CASE WHEN g.same AND g.within AND g.merchants = {n_merchants}
                        AND g.balances = {n_merchants}
                        AND (SELECT count(*) FROM velocity) = {n_payees}
                   THEN 1
                   ELSE ({stale} || coalesce(g.moved, '-'))::int END = 1
        """)  # fmt: skip
    # The order the parts run in: the new rows, then the verdict (balance rows, terms,
    # velocity), then the commit.
    order = ["payouts", "queued", "entries", "postings", "outbox", "notify_queue", "verdict"]
    counts = await w.run(conn, order=order)
    for part in ("payouts", "queued", "outbox"):
        assert counts[part] == expected[part], (part, counts)
    assert counts["verdict"] == 1, counts
