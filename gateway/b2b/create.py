"""Start a B2B payment (SPEC 7): the bank opens a payment page; the row records it as pending.

The bank is asked first (no transaction is open during the call), then the row is written; a
concurrent request with the same merchant_order_id loses the insert and is answered as a
replay (or 409 if its fields differ). If the bank does not take it, nothing is recorded here
and the merchant gets 503 bank_unavailable (retry with the same merchant_order_id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from channels.client import B2BBank
from gateway.b2b import model
from gateway.b2b.clearing_time import expected_clear_at
from gateway.contract.requests import B2BRequest
from protocol.errors import ServiceUnavailable, idempotency_conflict
from protocol.ids import new_id


async def _existing(
    pool: asyncpg.Pool, merchant_id: str, req: B2BRequest, req_hash: str
) -> tuple[int, dict[str, Any]] | None:
    row = await pool.fetchrow(
        f"SELECT {model.COLUMNS} FROM b2b_payments WHERE merchant_id = $1"
        " AND merchant_order_id = $2",
        merchant_id,
        req.merchant_order_id,
    )
    if row is None:
        return None
    if row["request_hash"] != req_hash:
        raise idempotency_conflict()
    return 200, model.public(row)


async def create_b2b(
    pool: asyncpg.Pool,
    bank: B2BBank,
    merchant_id: str,
    req: B2BRequest,
    sim_now: datetime,
    realtime_clear_delay_s: float,
) -> tuple[int, dict[str, Any]]:
    req_hash = model.request_hash(req)
    prior = await _existing(pool, merchant_id, req, req_hash)
    if prior is not None:
        return prior
    b2b_id = new_id("b2b")
    record = await bank.create(req.payer_bank, {
        "ref": b2b_id, "amount": req.amount, "currency": req.currency,
        "payer_account_name": req.payer_account_name,
    })  # fmt: skip
    if record is None:
        raise ServiceUnavailable("the bank's B2B gateway did not take the payment",
                                 code="bank_unavailable")  # fmt: skip
    clearing = str(record.get("clearing") or "realtime")
    cutoff = str(record.get("clearing_cutoff") or "17:00")
    now = datetime.now(UTC)
    row = await pool.fetchrow(
        f"""INSERT INTO b2b_payments (id, merchant_id, merchant_order_id, request_hash,
                amount_fen, currency, payer_bank, payer_account_name, status, clearing,
                clearing_cutoff, expected_clear_at, bank_ref, bank_page_url, created_at,
                updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12, $13, $14, $14)
            ON CONFLICT (merchant_id, merchant_order_id) DO NOTHING
            RETURNING {model.COLUMNS}""",
        b2b_id, merchant_id, req.merchant_order_id, req_hash, req.amount, req.currency,
        req.payer_bank, req.payer_account_name, clearing, cutoff,
        # An estimate until the bank notifies (then it is fixed from the notification time).
        expected_clear_at(sim_now, clearing, cutoff, realtime_clear_delay_s),
        record.get("bank_ref"), record.get("bank_page_url"), now,
    )  # fmt: skip
    if row is None:
        raced = await _existing(pool, merchant_id, req, req_hash)
        assert raced is not None
        return raced
    return 201, model.public(row)
