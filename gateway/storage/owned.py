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
    # A table partitioned by month (migration 0021) keeps its merchant_order_ids in
    # `order_keys` (kind = the table): a lookup goes there first, then to one partition by id.
    order_keys: bool = False


async def get(
    conn: asyncpg.Pool | asyncpg.Connection, owned: Owned, merchant_id: str, object_id: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {owned.columns} FROM {owned.table} WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        object_id,
    )
    return owned.public(row) if row else None


def prefixed(columns: str, alias: str) -> str:
    """`a, b` -> `t.a, t.b`: a table's column list in a join."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


async def order_row(
    conn: asyncpg.Pool | asyncpg.Connection, owned: Owned, merchant_id: str, order_id: str
) -> asyncpg.Record | None:
    """The row the merchant made with `order_id`, as stored (the idempotency check reads its
    request_hash). In a table with order keys, an order id used by an object of an archived
    month (its partition detached) gives a row whose columns are all NULL."""
    if not owned.order_keys:
        sql = (f"SELECT {owned.columns} FROM {owned.table}"
               " WHERE merchant_id = $1 AND merchant_order_id = $2")  # fmt: skip
    else:
        sql = f"""SELECT {prefixed(owned.columns, "t")} FROM order_keys k
                  LEFT JOIN {owned.table} t ON t.id = k.object_id
                  WHERE k.merchant_id = $1 AND k.kind = '{owned.table}'
                    AND k.merchant_order_id = $2"""
    row: asyncpg.Record | None = await conn.fetchrow(sql, merchant_id, order_id)
    return row


async def by_order_id(
    conn: asyncpg.Pool | asyncpg.Connection, owned: Owned, merchant_id: str, order_id: str
) -> dict[str, Any] | None:
    row = await order_row(conn, owned, merchant_id, order_id)
    return owned.public(row) if row is not None and row["id"] is not None else None


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
