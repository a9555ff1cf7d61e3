"""Reading back the rows a merchant owns in one table (payouts, B2B payments, transfers,
freezes, collections): by id, by merchant_order_id, a page. Each domain names its table's
shape (`Owned`); this reader knows none of them.

Two pages, as the API documents them: payouts and B2B payments newest first, filtered by
status (`list_newest_first`); transfers, freezes and collections oldest first
(`list_page`)."""

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
    conn: asyncpg.Pool | asyncpg.Connection, owned: Owned, merchant_id: str, column: str, value: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {owned.columns} FROM {owned.table} WHERE merchant_id = $1 AND {column} = $2",
        merchant_id,
        value,
    )
    return owned.public(row) if row else None


async def get(
    conn: asyncpg.Pool | asyncpg.Connection, owned: Owned, merchant_id: str, object_id: str
) -> dict[str, Any] | None:
    return await _one(conn, owned, merchant_id, "id", object_id)


async def by_order_id(
    conn: asyncpg.Pool | asyncpg.Connection, owned: Owned, merchant_id: str, order_id: str
) -> dict[str, Any] | None:
    return await _one(conn, owned, merchant_id, "merchant_order_id", order_id)


async def list_page(
    conn: asyncpg.Pool | asyncpg.Connection,
    owned: Owned,
    merchant_id: str,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {owned.columns} FROM {owned.table}
            WHERE merchant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3""",
        merchant_id,
        after,
        limit,
    )
    return [owned.public(r) for r in rows]


async def list_newest_first(
    conn: asyncpg.Pool | asyncpg.Connection,
    owned: Owned,
    merchant_id: str,
    status: str | None,
    before: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {owned.columns} FROM {owned.table}
            WHERE merchant_id = $1 AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""",
        merchant_id,
        status,
        before,
        limit,
    )
    return [owned.public(r) for r in rows]
