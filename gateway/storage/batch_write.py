"""Many writes in one round trip: each part is a data-modifying CTE over `unnest`ed arrays.

A batch's state change touches several tables (payouts, journal entries, postings, balances,
outbox, ...). Each module still owns its SQL and adds its part; `run` sends them as ONE
statement, so a transaction that holds row locks keeps them for one round trip instead of
one per table. Parts marked `counted` return their rows (`RETURNING ...`, which later parts may
read by the part's name) and the statement answers how many rows each touched, so the caller
can refuse to commit when a guard missed.

Foreign keys between parts (postings -> journal entries) are checked at the end of the
statement, when every part has run. Two parts must never update the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg


class BatchWrite:
    def __init__(self) -> None:
        self._args: list[Any] = []
        self._parts: list[tuple[str, str, bool]] = []

    def arg(self, value: Any, pg_type: str) -> str:
        """A parameter placeholder, cast to `pg_type` (e.g. `text[]`)."""
        self._args.append(value)
        return f"${len(self._args)}::{pg_type}"

    def add(self, name: str, sql: str, *, counted: bool = False) -> None:
        assert name not in {n for n, _, _ in self._parts}, f"part {name} added twice"
        assert not counted or "RETURNING" in sql, f"a counted part ({name}) must return its rows"
        self._parts.append((name, sql, counted))

    def __bool__(self) -> bool:
        return bool(self._parts)

    async def run(
        self, conn: asyncpg.Connection, order: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Run every part in one statement; rows touched by each counted part. `order`: count
        these parts instead, in this order, which is the order they run in (each must return
        its rows); the others run when a counted part reads them, or after all of them."""
        if not self._parts:
            return {}
        ctes = ",\n".join(f"{name} AS ({sql})" for name, sql, _ in self._parts)
        counted = list(order) if order is not None else [n for n, _, c in self._parts if c]
        select = ", ".join(f"(SELECT count(*) FROM {n}) AS {n}" for n in counted) or "1 AS done"
        row = await conn.fetchrow(f"WITH {ctes}\nSELECT {select}", *self._args)
        assert row is not None
        return {n: int(row[n]) for n in counted}
