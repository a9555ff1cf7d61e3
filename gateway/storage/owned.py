"""Reading back the rows a merchant owns in one table (transfers, freezes, collections ...):
by id, by merchant_order_id, a page. Each domain names its table's shape (`Owned`); this
reader knows none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class Owned:
    """A table of merchant-owned objects: its name, the columns read and the public shape."""

    table: str
    columns: str
    public: Callable[[Any], dict[str, Any]]


async def _one(
    pool: asyncpg.Pool, owned: Owned, merchant_id: str, column: str, value: str
) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {owned.columns} FROM {owned.table} WHERE merchant_id = $1 AND {column} = $2",
        merchant_id,
        value,
    )
    return owned.public(row) if row else None


async def get(
    pool: asyncpg.Pool, owned: Owned, merchant_id: str, object_id: str
) -> dict[str, Any] | None:
    return await _one(pool, owned, merchant_id, "id", object_id)


async def by_order_id(
    pool: asyncpg.Pool, owned: Owned, merchant_id: str, order_id: str
) -> dict[str, Any] | None:
    return await _one(pool, owned, merchant_id, "merchant_order_id", order_id)


async def list_page(
    pool: asyncpg.Pool, owned: Owned, merchant_id: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""SELECT {owned.columns} FROM {owned.table}
            WHERE merchant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3""",
        merchant_id,
        after,
        limit,
    )
    return [owned.public(r) for r in rows]
