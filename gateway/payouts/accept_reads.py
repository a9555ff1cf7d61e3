"""Statement 1 of an accept batch (see accept.py): lock the batch's balance rows and read,
in the same round trip, what the decisions need; and the careful run's fresh, locked reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from gateway.payouts import model
from gateway.payouts.fees import fee_for
from gateway.payouts.funding import FundsState
from gateway.payouts.model import AcceptItem
from risk import rules


@dataclass(slots=True)
class MerchantTerms:
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


# Statement 1: lock the batch's balance rows (merchant order) and, in the same round trip,
# read everything the decisions need. Columns come back as aligned arrays (one row).
# The terms are locked too (FOR SHARE OF m): a row lock reads the row's latest committed
# version, so an operator's change (PATCH /admin/merchants locks the balance row, then
# updates the terms) that commits while this statement waits is what it decides on; a plain
# join would keep the terms of the statement's snapshot, from before the wait.
_READ = """
    WITH bal AS (
        SELECT b.merchant_id, b.available_fen, b.advance_used_fen, b.usage_date,
               b.used_amount_fen, b.used_count, m.status, m.funding_mode, m.currency,
               m.advance_limit_fen, m.fee_fixed_fen, m.fee_bps, m.max_amount_fen,
               m.daily_amount_fen, m.daily_count, m.review_threshold_fen
        FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
        WHERE b.merchant_id = ANY($1::text[])
        ORDER BY b.merchant_id
        FOR UPDATE OF b FOR SHARE OF m)
    SELECT array_agg(merchant_id) AS merchant_id, array_agg(available_fen) AS available_fen,
           array_agg(advance_used_fen) AS advance_used_fen, array_agg(usage_date) AS usage_date,
           array_agg(used_amount_fen) AS used_amount_fen, array_agg(used_count) AS used_count,
           array_agg(status) AS status, array_agg(funding_mode) AS funding_mode,
           array_agg(currency) AS currency, array_agg(advance_limit_fen) AS advance_limit_fen,
           array_agg(fee_fixed_fen) AS fee_fixed_fen, array_agg(fee_bps) AS fee_bps,
           array_agg(max_amount_fen) AS max_amount_fen,
           array_agg(daily_amount_fen) AS daily_amount_fen, array_agg(daily_count) AS daily_count,
           array_agg(review_threshold_fen) AS review_threshold_fen,
           (SELECT array_agg(ARRAY[k.merchant_id, k.merchant_order_id, k.request_hash,
                                   k.object_id])
            FROM order_keys k WHERE k.kind = 'payouts' AND (k.merchant_id, k.merchant_order_id) IN
                 (SELECT * FROM unnest($2::text[], $3::text[]))) AS existing,
           (SELECT array_agg(account_no) FROM payee_blocklist
            WHERE account_no = ANY($4::text[])) AS blocked,
           (SELECT array_agg(ARRAY[account_no, count::text]) FROM payee_velocity
            WHERE account_no = ANY($4::text[]) AND hour_start = $5) AS velocity,
           (SELECT cap_fen - used_fen FROM advance_pool WHERE id = 1) AS pool_room
    FROM bal"""

_READ_UNLOCKED = _READ.replace("FOR UPDATE OF b FOR SHARE OF m", "")
assert _READ_UNLOCKED != _READ


@dataclass(slots=True)
class Reads:
    terms: dict[str, MerchantTerms]
    existing: dict[tuple[str, str], tuple[str, str]]  # (merchant, order id) -> (hash, payout id)
    blocked: set[str]
    velocity: dict[str, int]
    pool_room_fen: int


def needs_pool(items: Sequence[AcceptItem], terms: dict[str, MerchantTerms]) -> bool:
    """Whether some advance merchant may dip into credit (then the pool matters)."""
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


async def read(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    business_date: date,
    hour: datetime,
    *,
    lock: bool = True,
) -> Reads:
    """`lock=False`: the same figures from one snapshot, locking nothing (accept_fast.py)."""
    accounts = sorted({i.request.payee.account_no for i in items})
    r = await conn.fetchrow(
        _READ if lock else _READ_UNLOCKED,
        sorted({i.merchant_id for i in items}),
        [i.merchant_id for i in items],
        [i.request.merchant_order_id for i in items],
        accounts,
        hour,
    )
    assert r is not None
    terms: dict[str, MerchantTerms] = {}
    for k, merchant_id in enumerate(r["merchant_id"] or ()):
        today = r["usage_date"][k] == business_date
        terms[merchant_id] = MerchantTerms(
            status=r["status"][k],
            currency=r["currency"][k],
            fee_fixed_fen=r["fee_fixed_fen"][k],
            fee_bps=r["fee_bps"][k],
            max_amount_fen=r["max_amount_fen"][k],
            daily_amount_fen=r["daily_amount_fen"][k],
            daily_count=r["daily_count"][k],
            review_threshold_fen=r["review_threshold_fen"][k],
            used_today=rules.DailyUsage(
                r["used_amount_fen"][k] if today else 0, r["used_count"][k] if today else 0
            ),
            funds=FundsState(
                funding_mode=r["funding_mode"][k],
                available_fen=r["available_fen"][k],
                advance_limit_fen=r["advance_limit_fen"][k],
                advance_used_fen=r["advance_used_fen"][k],
            ),
        )
    return Reads(
        terms=terms,
        existing={(m, o): (h, pid) for m, o, h, pid in r["existing"] or ()},
        blocked=set(r["blocked"] or ()),
        velocity={a: int(n) for a, n in r["velocity"] or ()},
        pool_room_fen=int(r["pool_room"]),
    )


async def read_fresh(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    reads: Reads,
    hour: datetime,
) -> None:
    """The careful run: re-read after the lock (a new snapshot) what may have moved, and lock
    the velocity rows and, when an advance may be drawn, the pool."""
    accounts = sorted({i.request.payee.account_no for i in items})
    reads.existing = {
        (r["merchant_id"], r["merchant_order_id"]): (r["request_hash"], r["id"])
        for r in await conn.fetch(
            """SELECT merchant_id, merchant_order_id, request_hash, object_id AS id
               FROM order_keys WHERE kind = 'payouts' AND (merchant_id, merchant_order_id) IN
                     (SELECT * FROM unnest($1::text[], $2::text[]))""",
            [i.merchant_id for i in items],
            [i.request.merchant_order_id for i in items],
        )
    }
    await conn.execute(
        """INSERT INTO payee_velocity (account_no, hour_start, count)
           SELECT a, $2, 0 FROM unnest($1::text[]) AS a ORDER BY a
           ON CONFLICT (account_no, hour_start) DO NOTHING""",
        accounts,
        hour,
    )
    reads.velocity = {
        r["account_no"]: r["count"]
        for r in await conn.fetch(
            """SELECT account_no, count FROM payee_velocity
               WHERE account_no = ANY($1::text[]) AND hour_start = $2
               ORDER BY account_no FOR UPDATE""",
            accounts,
            hour,
        )
    }
    if needs_pool(items, reads.terms):
        reads.pool_room_fen = int(
            await conn.fetchval(
                "SELECT cap_fen - used_fen FROM advance_pool WHERE id = 1 FOR UPDATE"
            )
        )


async def replayed(conn: asyncpg.Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The payouts an idempotent replay answers with (rare: a separate read)."""
    if not ids:
        return {}
    rows = await conn.fetch(f"SELECT {model.COLUMNS} FROM payouts WHERE id = ANY($1::text[])", ids)
    return {r["id"]: model.public(r) for r in rows}
