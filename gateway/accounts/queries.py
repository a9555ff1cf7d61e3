"""Reading transfers, freezes and collections back (SPEC 16): by id, by merchant_order_id,
a page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from gateway.accounts import model
from gateway.collection import model as collection_model

_TABLES: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "transfers": (model.TRANSFER_COLUMNS, model.transfer),
    "freezes": (model.FREEZE_COLUMNS, model.freeze),
    "collections": (collection_model.COLUMNS, collection_model.public),
}


async def _one(
    pool: asyncpg.Pool, table: str, merchant_id: str, column: str, value: str
) -> dict[str, Any] | None:
    columns, public = _TABLES[table]
    row = await pool.fetchrow(
        f"SELECT {columns} FROM {table} WHERE merchant_id = $1 AND {column} = $2",
        merchant_id,
        value,
    )
    return public(row) if row else None


async def get(
    pool: asyncpg.Pool, table: str, merchant_id: str, object_id: str
) -> dict[str, Any] | None:
    return await _one(pool, table, merchant_id, "id", object_id)


async def by_order_id(
    pool: asyncpg.Pool, table: str, merchant_id: str, order_id: str
) -> dict[str, Any] | None:
    return await _one(pool, table, merchant_id, "merchant_order_id", order_id)


async def list_page(
    pool: asyncpg.Pool, table: str, merchant_id: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    columns, public = _TABLES[table]
    rows = await pool.fetch(
        f"""SELECT {columns} FROM {table}
            WHERE merchant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3""",
        merchant_id,
        after,
        limit,
    )
    return [public(r) for r in rows]
