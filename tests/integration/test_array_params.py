"""Array parameters after `lean_array_checks` (gateway/storage/pools.py): asyncpg's shape check
against concrete types instead of collections.abc. What the batched statements pass (columns as
lists of text, bigint, jsonb, timestamptz, date, with NULLs) reaches PostgreSQL unchanged; a
nested list is still a two-dimensional array and a tuple inside one still a record; what is no
array is refused as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest

from gateway.storage.pools import ARRAY_TYPES, init_connection, lean_array_checks


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url)
    await init_connection(c)
    yield c
    await c.close()


def test_this_asyncpg_takes_the_lean_check() -> None:
    """The asyncpg in use has the global the check reads: else the speed-up silently went."""
    from asyncpg.protocol import protocol

    assert lean_array_checks() is True
    assert protocol.IterableABC is ARRAY_TYPES


async def test_columns_as_arrays_arrive_unchanged(conn: asyncpg.Connection) -> None:
    at = datetime(2026, 12, 7, 21, 30, 15, 123456, tzinfo=UTC)
    ids, amounts = ["po_1", "po_2", None], [10**15 + 1, -7, None]
    payees = [{"account_no": "6222", "account_name": "张三"}, {"n": [1, 2]}, None]
    rows = await conn.fetch(
        """SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[], $4::timestamptz[],
                                $5::date[]) AS u (id, amount, payee, at, day)""",
        ids, tuple(amounts), payees, [at, at, None], [date(2026, 12, 7), None, None],
    )  # fmt: skip
    assert [r["id"] for r in rows] == ids
    assert [r["amount"] for r in rows] == amounts
    assert [r["payee"] for r in rows] == payees
    assert [r["at"] for r in rows] == [at, at, None]
    assert [r["day"] for r in rows] == [date(2026, 12, 7), None, None]
    assert sorted(await conn.fetchval("SELECT $1::text[]", {"b", "a"})) == ["a", "b"]
    assert sorted(await conn.fetchval("SELECT $1::int[]", frozenset({3, 1}))) == [1, 3]


async def test_nested_lists_are_two_dimensions_and_strings_are_elements(
    conn: asyncpg.Connection,
) -> None:
    assert await conn.fetchval("SELECT array_dims($1::int[])", [[1, 2], [3, 4]]) == "[1:2][1:2]"
    assert await conn.fetchval("SELECT $1::int[]", [[1, 2], [3, 4]]) == [[1, 2], [3, 4]]
    assert await conn.fetchval("SELECT array_dims($1::text[])", ["ab", "cd"]) == "[1:2]"
    with pytest.raises(asyncpg.DataError, match="non-homogeneous"):
        await conn.fetchval("SELECT $1::int[]", [[1, 2], 3])


async def test_what_is_no_array_is_refused(conn: asyncpg.Connection) -> None:
    for value in ("abc", 5, {"a": 1}):
        with pytest.raises((TypeError, asyncpg.DataError)):
            await conn.fetchval("SELECT $1::text[]", value)
