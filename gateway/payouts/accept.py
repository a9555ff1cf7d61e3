"""Accept payouts (SPEC 6 "Accept"): funds check, hold, payout row, journal entry and outbox
event for a whole batch in ONE transaction, each item still getting its own decision.

Set-based (SPEC 13 group commit): one locking read of the merchants' balance rows (in merchant
id order), one read of existing orders, then a handful of `unnest` writes, whatever the batch
size. Decisions are made in Python, in item order, against the balances as held so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from gateway.api.schemas import PayoutRequest
from gateway.clock import BUSINESS_TZ
from gateway.errors import ApiError, BusinessRefusal, Conflict, Forbidden, InvalidRequest
from gateway.ids import new_id
from gateway.ledger import journal, moves
from gateway.outbox import OutboxEvent, insert_events
from gateway.payouts import model
from gateway.payouts.fees import fee_for
from gateway.payouts.funding import Funding, FundsState, apply_hold, decide
from gateway.payouts.state import Status
from risk import rules


@dataclass(frozen=True, slots=True)
class AcceptItem:
    merchant_id: str
    request: PayoutRequest
    request_hash: str


@dataclass(frozen=True, slots=True)
class AcceptResult:
    http_status: int  # 201 created, 200 idempotent replay; errors carry their own status
    payout: dict[str, Any] | None = None
    error: ApiError | None = None


@dataclass(slots=True)
class _MerchantTerms:
    status: str
    currency: str
    fee_fixed_fen: int
    fee_bps: int
    max_amount_fen: int
    daily_amount_fen: int
    daily_count: int
    review_threshold_fen: int | None
    funds: FundsState
    used_today: rules.DailyUsage


_LOCK_MERCHANTS = """
    SELECT b.merchant_id, b.available_fen, b.advance_used_fen, m.status, m.funding_mode,
           m.currency, m.advance_limit_fen, m.fee_fixed_fen, m.fee_bps, m.max_amount_fen,
           m.daily_amount_fen, m.daily_count, m.review_threshold_fen
    FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
    WHERE b.merchant_id = ANY($1::text[])
    ORDER BY b.merchant_id
    FOR UPDATE OF b"""

_EXISTING = f"""
    SELECT {model.COLUMNS} FROM payouts
    WHERE (merchant_id, merchant_order_id) IN
          (SELECT * FROM unnest($1::text[], $2::text[]))"""

_INSERT = """
    INSERT INTO payouts (id, merchant_id, merchant_order_id, request_hash, amount_fen, fee_fen,
        currency, status, payee, purpose, metadata, funding_balance_fen, funding_advance_fen,
        business_date, created_at, updated_at)
    SELECT u.*, $15::timestamptz, $15::timestamptz
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
        $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::jsonb[], $12::bigint[],
        $13::bigint[], $14::date[]) AS u"""


def _needs_pool(items: Sequence[AcceptItem], terms: dict[str, _MerchantTerms]) -> bool:
    """Lock the platform pool row only if some advance merchant may dip into credit."""
    totals: dict[str, int] = {}
    for item in items:
        t = terms.get(item.merchant_id)
        if t is None or t.funds.funding_mode != "advance":
            continue
        amount = item.request.amount
        totals[item.merchant_id] = (
            totals.get(item.merchant_id, 0) + amount + fee_for(amount, t.fee_fixed_fen, t.fee_bps)
        )
    return any(total > terms[m].funds.available_fen for m, total in totals.items())


async def accept_batch(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    sim_now: datetime,
    risk_rules: rules.RiskRules,
) -> list[AcceptResult]:
    """`sim_now` (simulated time) decides the business day and the velocity hour."""
    async with conn.transaction():
        return await _accept_in_transaction(conn, items, sim_now, risk_rules)


async def _payee_state(
    conn: asyncpg.Connection, items: Sequence[AcceptItem], hour: datetime
) -> tuple[set[str], dict[str, int]]:
    """Blocked accounts, and this hour's velocity counters locked (account order)."""
    accounts = sorted({i.request.payee.account_no for i in items})
    blocked = {
        r["account_no"]
        for r in await conn.fetch(
            "SELECT account_no FROM payee_blocklist WHERE account_no = ANY($1::text[])", accounts
        )
    }
    await conn.execute(
        """INSERT INTO payee_velocity (account_no, hour_start, count)
           SELECT a, $2, 0 FROM unnest($1::text[]) AS a ORDER BY a
           ON CONFLICT (account_no, hour_start) DO NOTHING""",
        accounts,
        hour,
    )
    rows = await conn.fetch(
        """SELECT account_no, count FROM payee_velocity
           WHERE account_no = ANY($1::text[]) AND hour_start = $2
           ORDER BY account_no FOR UPDATE""",
        accounts,
        hour,
    )
    return blocked, {r["account_no"]: r["count"] for r in rows}


async def _accept_in_transaction(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    sim_now: datetime,
    risk_rules: rules.RiskRules,
) -> list[AcceptResult]:
    business_date = sim_now.astimezone(BUSINESS_TZ).date()
    hour = rules.hour_start(sim_now)
    merchant_ids = sorted({i.merchant_id for i in items})
    terms: dict[str, _MerchantTerms] = {}
    for r in await conn.fetch(_LOCK_MERCHANTS, merchant_ids):
        terms[r["merchant_id"]] = _MerchantTerms(
            status=r["status"],
            currency=r["currency"],
            fee_fixed_fen=r["fee_fixed_fen"],
            fee_bps=r["fee_bps"],
            max_amount_fen=r["max_amount_fen"],
            daily_amount_fen=r["daily_amount_fen"],
            daily_count=r["daily_count"],
            review_threshold_fen=r["review_threshold_fen"],
            used_today=rules.DailyUsage(),
            funds=FundsState(
                funding_mode=r["funding_mode"],
                available_fen=r["available_fen"],
                advance_limit_fen=r["advance_limit_fen"],
                advance_used_fen=r["advance_used_fen"],
            ),
        )
    existing: dict[tuple[str, str], dict[str, Any]] = {
        (r["merchant_id"], r["merchant_order_id"]): dict(r)
        for r in await conn.fetch(
            _EXISTING,
            [i.merchant_id for i in items],
            [i.request.merchant_order_id for i in items],
        )
    }
    # Read after the lock, in its own statement: a join in the locking read would see the usage
    # row as of before the wait (EvalPlanQual re-reads only the locked table).
    for r in await conn.fetch(
        """SELECT merchant_id, amount_fen, count FROM merchant_daily_usage
           WHERE merchant_id = ANY($1::text[]) AND business_date = $2""",
        merchant_ids,
        business_date,
    ):
        terms[r["merchant_id"]].used_today = rules.DailyUsage(r["amount_fen"], r["count"])
    blocked, velocity = await _payee_state(conn, items, hour)
    velocity_before = dict(velocity)
    pool_room = 0
    if _needs_pool(items, terms):
        pool_room = int(
            await conn.fetchval(
                "SELECT cap_fen - used_fen FROM advance_pool WHERE id = 1 FOR UPDATE"
            )
        )

    now = datetime.now(UTC)
    results: list[AcceptResult] = []
    new_rows: list[dict[str, Any]] = []
    holds: list[moves.Move] = []
    events: list[OutboxEvent] = []
    for item in items:
        req = item.request
        key = (item.merchant_id, req.merchant_order_id)
        prior = existing.get(key)
        if prior is not None:
            if prior["request_hash"] == item.request_hash:
                results.append(AcceptResult(200, model.public(prior)))
            else:
                results.append(AcceptResult(409, error=Conflict(
                    "merchant_order_id already used with different fields",
                    field="merchant_order_id", code="idempotency_conflict")))  # fmt: skip
            continue
        t = terms.get(item.merchant_id)
        if t is None:
            results.append(AcceptResult(403, error=Forbidden("unknown merchant")))
            continue
        refusal = _refuse(t, req) or rules.check_payee(
            req.payee.account_no in blocked, velocity[req.payee.account_no], risk_rules
        )
        if refusal is not None:
            results.append(AcceptResult(refusal.status, error=refusal))
            continue
        fee = fee_for(req.amount, t.fee_fixed_fen, t.fee_bps)
        decision = decide(t.funds, req.amount + fee, pool_room)
        if not isinstance(decision, Funding):
            results.append(AcceptResult(422, error=BusinessRefusal(
                decision.message, field="amount", code=decision.code)))  # fmt: skip
            continue
        apply_hold(t.funds, decision)
        pool_room -= decision.advance_fen
        t.used_today.amount_fen += req.amount
        t.used_today.count += 1
        velocity[req.payee.account_no] += 1
        review = t.review_threshold_fen is not None and req.amount >= t.review_threshold_fen
        row: dict[str, Any] = {
            "id": new_id("po"),
            "merchant_id": item.merchant_id,
            "merchant_order_id": req.merchant_order_id,
            "request_hash": item.request_hash,
            "amount_fen": req.amount,
            "fee_fen": fee,
            "currency": req.currency,
            "status": (Status.REVIEW_PENDING if review else Status.ACCEPTED).value,
            "version": 1,
            "payee": {
                "account_no": req.payee.account_no,
                "account_name": req.payee.account_name,
                "bank_code": req.payee.bank_code,
                "account_type": req.payee.account_type,
            },
            "purpose": req.purpose,
            "metadata": req.metadata,
            "funding_balance_fen": decision.balance_fen,
            "funding_advance_fen": decision.advance_fen,
            "bank_id": None,
            "bank_ref": None,
            "failure_code": None,
            "failure_message": None,
            "business_date": business_date,
            "created_at": now,
            "updated_at": now,
        }
        existing[key] = row  # a later duplicate in this batch is a replay of this one
        new_rows.append(row)
        holds.append(moves.hold(item.merchant_id, row["id"], decision.balance_fen,
                                decision.advance_fen))  # fmt: skip
        payout = model.public(row)
        events.append(OutboxEvent(item.merchant_id, f"payout.{row['status']}", row["id"], 1,
                                  payout))  # fmt: skip
        results.append(AcceptResult(201, payout))

    if new_rows:
        await _insert_payouts(conn, new_rows, now)
        await journal.record(conn, holds)
        await insert_events(conn, events)
        await _record_usage(conn, terms, business_date)
        await _record_velocity(conn, velocity, velocity_before, hour)
    return results


async def _record_usage(
    conn: asyncpg.Connection, terms: dict[str, _MerchantTerms], business_date: date
) -> None:
    used = sorted((m, t.used_today) for m, t in terms.items() if t.used_today.count)
    await conn.execute(
        """INSERT INTO merchant_daily_usage (merchant_id, business_date, amount_fen, count)
           SELECT m, $3, a, c FROM unnest($1::text[], $2::bigint[], $4::int[]) AS u (m, a, c)
           ON CONFLICT (merchant_id, business_date)
           DO UPDATE SET amount_fen = excluded.amount_fen, count = excluded.count""",
        [m for m, _ in used],
        [u.amount_fen for _, u in used],
        business_date,
        [u.count for _, u in used],
    )


async def _record_velocity(
    conn: asyncpg.Connection, now: dict[str, int], before: dict[str, int], hour: datetime
) -> None:
    changed = sorted(a for a in now if now[a] != before[a])
    await conn.execute(
        """UPDATE payee_velocity v SET count = u.c
           FROM unnest($1::text[], $2::int[]) AS u (a, c)
           WHERE v.account_no = u.a AND v.hour_start = $3""",
        changed,
        [now[a] for a in changed],
        hour,
    )


def _refuse(t: _MerchantTerms, req: PayoutRequest) -> ApiError | None:
    """Checks on fresh merchant terms (the cached copy used for auth may be seconds old)."""
    if t.status != "active":
        return Forbidden("merchant is suspended", code="merchant_suspended")
    if req.currency != t.currency:
        return InvalidRequest(f"currency must be {t.currency}", field="currency")
    return rules.check_amount(req.amount, t.max_amount_fen) or rules.check_daily(
        t.used_today, req.amount, t.daily_amount_fen, t.daily_count
    )


async def _insert_payouts(
    conn: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime
) -> None:
    def col(name: str) -> list[Any]:
        return [r[name] for r in rows]

    await conn.execute(
        _INSERT,
        col("id"),
        col("merchant_id"),
        col("merchant_order_id"),
        col("request_hash"),
        col("amount_fen"),
        col("fee_fen"),
        col("currency"),
        col("status"),
        col("payee"),
        col("purpose"),
        col("metadata"),
        col("funding_balance_fen"),
        col("funding_advance_fen"),
        col("business_date"),
        now,
    )
