"""The monthly partitions (migration 0021, SPEC 15) as the worker and `paygate partitions` use
them: make the months ahead, list what is attached, detach a settled month for archive. The
rules themselves are SQL functions of the migration (`ensure_partitions`, `detach_month`), so
every process and psql apply the same ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import orjson

# Making or detaching a month takes a short exclusive lock on each table: a long transaction
# in front of it must not queue the traffic behind it (the caller tries again later).
LOCK_TIMEOUT = "2s"


class MonthStillOpen(Exception):
    """`detach_month` refused: the month is not over, or holds open money (says which)."""


async def ensure_partitions(conn: asyncpg.Connection, months_ahead: int) -> int:
    """Make the missing monthly partitions up to `months_ahead` months ahead; how many."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        made: int = await conn.fetchval("SELECT ensure_partitions($1)", months_ahead)
    return made


async def detach_month(conn: asyncpg.Connection, month: date, now_at: Any = None) -> dict[str, int]:
    """Detach `month` from every partitioned table (rows per table), or MonthStillOpen."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            raw = await conn.fetchval(
                "SELECT detach_month($1, coalesce($2::timestamptz, now()))", month, now_at
            )
    except asyncpg.ObjectNotInPrerequisiteStateError as exc:
        raise MonthStillOpen(exc.args[0] if exc.args else str(exc)) from None
    counts: dict[str, int] = orjson.loads(raw) if isinstance(raw, str) else dict(raw)
    return counts


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    bounds: str
    rows_estimate: int
    bytes: int


async def attached(conn: asyncpg.Connection) -> list[Partition]:
    """Every attached partition of the partitioned tables, oldest first per table."""
    rows = await conn.fetch(
        """SELECT t.name AS table, c.relname AS name,
                  pg_get_expr(c.relpartbound, c.oid) AS bounds,
                  greatest(c.reltuples, 0)::bigint AS rows_estimate,
                  pg_total_relation_size(c.oid) AS bytes
           FROM partitioned_tables t
           JOIN pg_inherits i ON i.inhparent = t.name::regclass
           JOIN pg_class c ON c.oid = i.inhrelid
           ORDER BY t.name, c.relname"""
    )
    return [Partition(**dict(r)) for r in rows]
