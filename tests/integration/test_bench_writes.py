"""The bench's PostgreSQL writes per payout (loadtest/bench/writes.py) read real statistics:
rows a window inserted, updated (HOT or not) and deleted per table, and its WAL bytes."""

from __future__ import annotations

import asyncpg

from loadtest.bench.writes import read_writes, writes_lines, writes_per_payout


async def test_a_window_counts_its_rows_per_table_and_its_wal(
    database_url: str, db: asyncpg.Connection
) -> None:
    await db.execute("CREATE TABLE w (id int PRIMARY KEY, n int, tag text)")
    await db.execute("SELECT pg_stat_force_next_flush()")  # this backend's, once idle
    before = await read_writes(database_url, settle_s=1.0)
    await db.execute("INSERT INTO w SELECT g, 0, 'x' FROM generate_series(1, 40) g")
    await db.execute("UPDATE w SET n = 1 WHERE id <= 10")  # no indexed column: HOT
    await db.execute("UPDATE w SET id = id + 1000 WHERE id > 30")  # the key moves: not HOT
    await db.execute("DELETE FROM w WHERE id <= 4")
    # The bench waits out PostgreSQL's 10 s idle flush (SETTLE_S); here the one backend that
    # wrote is told to flush at once instead.
    await db.execute("SELECT pg_stat_force_next_flush()")
    after = await read_writes(database_url, settle_s=1.0)

    w = writes_per_payout(before, after, payouts=4)
    t = w["by_table"]["w"]
    assert (t["ins"], t["upd"], t["del"]) == (10.0, 5.0, 1.0), t
    assert 0 < t["hot"] <= 2.5, t  # the ten HOT candidates (page space permitting), not the moves
    assert t["rows"] == 16.0
    assert w["rows_per_payout"] >= 16.0  # other tables (none here, but the sum includes all)
    assert w["wal_bytes_per_payout"] > 0
    rows = dict(writes_lines(w))
    assert rows["  PostgreSQL rows written per payout"].startswith(f"{w['rows_per_payout']:g} ")
    assert "w 16" in rows["    by table"]
