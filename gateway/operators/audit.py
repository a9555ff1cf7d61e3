"""`operator_actions`: the append-only record of every operator action (SPEC 17), written in
the transaction of the change it records, and read by the console's audit page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from gateway.operators.model import Actor

_FIELDS = ("id, operator_id, operator_name, via, at, sim_at, action, object_type, object_id,"
           " before, after, reason")  # fmt: skip


def _json(value: Any) -> str | None:
    # Datetimes and the like as ISO strings: the record keeps what the page showed.
    return None if value is None else orjson.dumps(value, default=str).decode()


async def record(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    *,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    sim_at: datetime | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO operator_actions (operator_id, operator_name, via, sim_at, action,
               object_type, object_id, before, after, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9::text::jsonb, $10)""",
        actor.operator_id, actor.name, actor.via, sim_at, action, object_type, object_id,
        _json(before), _json(after), reason,
    )  # fmt: skip


async def list_page(
    pool: asyncpg.Pool | asyncpg.Connection,
    *,
    object_id: str | None = None,
    operator: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest first, filtered by object, operator name or action (a prefix)."""
    rows = await pool.fetch(
        f"""SELECT {_FIELDS}, before::text AS before_text, after::text AS after_text
            FROM operator_actions
            WHERE ($1::text IS NULL OR object_id = $1) AND ($2::text IS NULL OR operator_name = $2)
              AND ($3::text IS NULL OR action LIKE $3 || '%')
              AND ($4::bigint IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5""",
        object_id, operator, action, before_id, limit,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def last_of(pool: asyncpg.Pool, action: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"""SELECT {_FIELDS}, after::text AS after_text FROM operator_actions
            WHERE action = $1 ORDER BY id DESC LIMIT 1""",
        action,
    )
    return dict(row) if row is not None else None
