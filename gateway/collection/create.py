"""Creating a collection (代收, SPEC 16): one transaction writes the row (`pending`) and its
queue row; the dispatcher sends it to a bank (workers/dispatch.py with collection/orders.py).
Idempotent by `merchant_order_id`: the same fields answer 200 with the same collection, other
fields 409."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from gateway.accounts import repo
from gateway.collection import model
from gateway.contract.requests import CollectionRequest
from gateway.fingerprint import request_fingerprint
from gateway.storage import owned
from protocol.errors import (
    BusinessRefusal,
    InvalidRequest,
    NotFound,
    archived_order,
    idempotency_conflict,
)
from protocol.ids import new_id


async def _replay(
    conn: asyncpg.Connection, merchant_id: str, order_id: str, req_hash: str
) -> dict[str, Any] | None:
    row = await owned.order_row(conn, model.COLLECTIONS, merchant_id, order_id)
    if row is None:
        return None
    if row["id"] is None:  # its collection's month is archived
        raise archived_order()
    if row["request_hash"] != req_hash:
        raise idempotency_conflict()
    return model.public(row)


async def create_collection(
    conn: asyncpg.Connection, merchant_id: str, advance_limit_fen: int, req: CollectionRequest
) -> tuple[int, dict[str, Any]]:
    """201 with a new pending collection, 200 with the same one replayed; 404 for an account
    that is not the merchant's; 400 for another currency; 422 `advance_limit_exceeded` when
    `advance_on_failure` is asked of a merchant without an advance line (垫资)."""
    req_hash = request_fingerprint(req)
    prior = await _replay(conn, merchant_id, req.merchant_order_id, req_hash)
    if prior is not None:
        return 200, prior
    account = (await repo.refs(conn, [req.account_id])).get(req.account_id)
    if account is None or account.merchant_id != merchant_id:
        raise NotFound("no such account", field="account_id")
    if req.currency != account.currency:
        raise InvalidRequest(f"the account is in {account.currency}", field="currency")
    if req.advance_on_failure and advance_limit_fen <= 0:
        raise BusinessRefusal("advance_on_failure fronts a failed debit from the merchant's"
                              " advance line (垫资), and this merchant has none",
                              field="advance_on_failure",
                              code="advance_limit_exceeded")  # fmt: skip
    collection_id = new_id("col")
    payer = msgspec.to_builtins(req.payer)
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                f"""WITH c AS (
                        INSERT INTO collections (id, merchant_id, merchant_order_id,
                            request_hash, account_id, amount_fen, currency, payer,
                            payer_account_no, advance_on_failure)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                        RETURNING {model.COLUMNS}),
                    q AS (INSERT INTO collection_queue (collection_id) SELECT id FROM c)
                    SELECT * FROM c""",
                collection_id, merchant_id, req.merchant_order_id, req_hash, account.id,
                req.amount, req.currency, payer, req.payer.account_no, req.advance_on_failure,
            )  # fmt: skip
    except asyncpg.UniqueViolationError:  # a concurrent request with this merchant_order_id
        row = None  # committed first (its order key, migration 0021)
    if row is None:
        replayed = await _replay(conn, merchant_id, req.merchant_order_id, req_hash)
        assert replayed is not None
        return 200, replayed
    return 201, model.public(row)
