"""What a capacity step cost the write-ahead log (loadtest/system/observe.py `wal_reading`):
WAL bytes by position, full-page images and checkpoints done, read from the real server."""

from __future__ import annotations

import asyncpg

from loadtest.system.observe import wal_reading


async def test_a_checkpoint_and_the_full_page_images_after_it_are_counted(
    db: asyncpg.Connection,
) -> None:
    await db.execute("CREATE TABLE w (id int PRIMARY KEY, pad text)")
    await db.execute("INSERT INTO w SELECT g, repeat('x', 100) FROM generate_series(1, 500) g")
    before = await wal_reading(db)
    await db.execute("CHECKPOINT")
    # The first change to each page after the checkpoint logs the whole page.
    await db.execute("UPDATE w SET pad = repeat('y', 100)")
    await db.execute("SELECT pg_stat_force_next_flush()")  # this backend's WAL statistics
    await db.execute("SELECT 1")  # flushed when that transaction ends
    after = await wal_reading(db)

    assert after["checkpoints"] - before["checkpoints"] >= 1
    assert after["full_page_images"] - before["full_page_images"] >= 2  # the table's pages
    assert after["wal_bytes"] - before["wal_bytes"] > 2 * 8192  # at least those images
