"""Customers (客户, SPEC 16): the merchant's users, created idempotently by `external_id`,
and the merchant itself with its settlement account (made with the merchant)."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.accounts import model
from gateway.contract.requests import CustomerCreate
from protocol.errors import idempotency_conflict
from protocol.ids import new_id


async def add_merchant_customer(
    conn: asyncpg.Connection, merchant_id: str, name: str, currency: str
) -> None:
    """The merchant as a customer and its settlement account (kind merchant), whose money is
    the merchant's balance row. Runs in the transaction that creates the merchant."""
    customer_id = new_id("cus")
    await conn.execute(
        "INSERT INTO customers (id, merchant_id, kind, name) VALUES ($1, $2, 'merchant', $3)",
        customer_id,
        merchant_id,
        name,
    )
    await conn.execute(
        """INSERT INTO customer_accounts (id, merchant_id, customer_id, kind, purpose, currency,
               depth)
           VALUES ($1, $2, $3, 'merchant', $4, $5, 0)""",
        new_id("acc"),
        merchant_id,
        customer_id,
        model.SETTLEMENT_PURPOSE,
        currency,
    )


async def create(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, req: CustomerCreate
) -> tuple[int, dict[str, Any]]:
    """201 with a new customer; 200 with the one already named by `external_id` (same name);
    409 if that one has another name."""
    row = await conn.fetchrow(
        f"""INSERT INTO customers (id, merchant_id, kind, external_id, name)
            VALUES ($1, $2, 'personal', $3, $4)
            ON CONFLICT (merchant_id, external_id) DO NOTHING
            RETURNING {model.CUSTOMER_COLUMNS}""",
        new_id("cus"),
        merchant_id,
        req.external_id,
        req.name,
    )
    if row is not None:
        return 201, model.customer(row)
    existing = await by_external_id(conn, merchant_id, req.external_id)
    assert existing is not None, "a customer is never deleted"
    if existing["name"] != req.name:
        raise idempotency_conflict("external_id")
    return 200, existing


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, customer_id: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {model.CUSTOMER_COLUMNS} FROM customers WHERE id = $1 AND merchant_id = $2",
        customer_id,
        merchant_id,
    )
    return model.customer(row) if row else None


async def by_external_id(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, external_id: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {model.CUSTOMER_COLUMNS} FROM customers"
        " WHERE merchant_id = $1 AND external_id = $2",
        merchant_id,
        external_id,
    )
    return model.customer(row) if row else None


async def list_page(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {model.CUSTOMER_COLUMNS} FROM customers
            WHERE merchant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3""",
        merchant_id,
        after,
        limit,
    )
    return [model.customer(r) for r in rows]
