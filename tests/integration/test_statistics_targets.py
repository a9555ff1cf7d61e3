"""The tables every payout appends to are analyzed from small samples (migration 0023): every
column's statistics target is 10, none for a jsonb document, on each month's partition too,
the months ensure_partitions makes later included; and an ANALYZE keeps that small. And
autovacuum analyzes them when they have doubled (migration 0024), each month too."""

from __future__ import annotations

import asyncpg

from gateway.storage.partitions import ensure_partitions
from protocol.ids import new_id

APPENDED = ("payouts", "outbox_events", "journal_entries", "postings", "notification_attempts",
            "transfers", "collections", "order_keys", "payee_velocity")  # fmt: skip


async def _targets(db: asyncpg.Connection, table: str) -> dict[str, tuple[bool, int | None]]:
    rows = await db.fetch(
        """SELECT attname, atttypid = 'jsonb'::regtype AS doc, attstattarget AS target
           FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0
             AND NOT attisdropped""",
        table,
    )
    return {r["attname"]: (r["doc"], r["target"]) for r in rows}


async def _months(db: asyncpg.Connection, table: str) -> list[str]:
    return [r["relname"] for r in await db.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = $1::regclass""", table)]  # fmt: skip


async def test_every_column_of_every_month_has_the_small_target(db: asyncpg.Connection) -> None:
    made = await ensure_partitions(db, 3)  # months the migration did not make
    assert made > 0
    for table in APPENDED:
        for name in [table, *await _months(db, table)]:
            targets = await _targets(db, name)
            assert targets, name
            for column, (doc, target) in targets.items():
                assert target == (0 if doc else 10), (name, column, target)


async def test_an_analyze_keeps_ten_buckets_and_skips_the_documents(
    db: asyncpg.Connection,
) -> None:
    await db.execute(
        """INSERT INTO outbox_events (id, merchant_id, type, object_id, sequence, data,
               created_at, delivery_status)
           SELECT id, 'm_' || (g % 7), 'payout.created', 'po_' || g, 1,
                  jsonb_build_object('n', g), now(), 'pending'
           FROM unnest($1::text[]) WITH ORDINALITY AS u (id, g)""",
        [new_id("evt") for _ in range(2000)],
    )
    month = await db.fetchval("SELECT DISTINCT tableoid::regclass::text FROM outbox_events")
    await db.execute(f"ANALYZE {month}")
    stats = {r["attname"]: r for r in await db.fetch(
        """SELECT attname, histogram_bounds::text::text[] AS bounds, n_distinct
           FROM pg_stats WHERE tablename = $1""", month)}  # fmt: skip
    assert "data" not in stats  # the jsonb document is not analyzed
    assert len(stats["id"]["bounds"]) == 11  # ten buckets (the default target makes 100)
    assert stats["id"]["n_distinct"] == -1  # still known unique
    assert stats["merchant_id"]["n_distinct"] == 7


async def test_each_month_is_analyzed_once_doubled(db: asyncpg.Connection) -> None:
    assert await ensure_partitions(db, 3) > 0
    tables = [t for t in APPENDED if await _months(db, t)]
    assert len(tables) == 7
    leaves = ["order_keys", "payee_velocity"]
    for table in tables:
        leaves += await _months(db, table)
    rows = await db.fetch(
        "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])", leaves
    )
    options = {r["relname"]: r["reloptions"] or [] for r in rows}
    assert set(options) == set(leaves)
    for leaf, opts in options.items():
        assert "autovacuum_analyze_scale_factor=1" in opts, (leaf, opts)
    # The months keep their own storage options beside it.
    assert "fillfactor=60" in options[next(m for m in leaves if m.startswith("payouts_p"))]
