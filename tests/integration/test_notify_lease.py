"""The notifier's lease (migration 0019): it writes `leased_until`, a column no index names, so
leasing an event rewrites its queue row in place (a HOT update); a leased event is not due
again until its lease runs out, a failed attempt's retry waits for its own time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.merchants import model as mmodel
from gateway.merchants import repo as merchants_repo
from gateway.notifications import repo
from gateway.notifications.repo import AttemptResult
from gateway.outbox import OutboxEvent, insert_events
from protocol.ids import new_id, new_secret

LEASE = timedelta(seconds=30)


@pytest.fixture
def pool(one_connection_pool: asyncpg.Pool) -> asyncpg.Pool:
    return one_connection_pool


async def _queued_event(pool: asyncpg.Pool, events: int = 1) -> str:
    """A merchant with `events` queued events (of as many payouts); the first one's id."""
    m = mmodel.Merchant(
        id=new_id("m"), name="lease", secret=new_secret(), status="active",
        funding_mode="prefunded", currency="CNY", advance_limit_fen=0, fee_fixed_fen=0,
        fee_bps=0, max_amount_fen=10**9, daily_amount_fen=10**12, daily_count=10**6,
        rate_limit_rps=1, rate_limit_burst=1, review_threshold_fen=None,
        notify_url="http://127.0.0.1:9/notify",
    )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await merchants_repo.insert(conn, m)
        await insert_events(conn, [OutboxEvent(m.id, "payout.succeeded", new_id("po"), 3,
                                               {"status": "succeeded"})
                                   for _ in range(events)])  # fmt: skip
    event_id: str = await pool.fetchval("SELECT min(event_id) FROM notification_queue")
    return event_id


async def _hot_updates(pool: asyncpg.Pool) -> tuple[int, int]:
    """(updates, HOT updates) of notification_queue, once this backend has flushed them."""
    await pool.execute("SELECT pg_stat_force_next_flush()")
    row = await pool.fetchrow(
        """SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
           WHERE relname = 'notification_queue'"""
    )
    assert row is not None
    return row["n_tup_upd"], row["n_tup_hot_upd"]


async def test_a_lease_is_a_hot_update_and_holds_until_it_runs_out(pool: asyncpg.Pool) -> None:
    event_id = await _queued_event(pool)
    now = datetime.now(UTC)
    leased = await repo.lease_due(pool, now, now + LEASE, 10, {}, 5)
    assert [d.id for d in leased] == [event_id]
    row = await pool.fetchrow("SELECT next_attempt_at, leased_until FROM notification_queue")
    assert row is not None and row["leased_until"] == now + LEASE
    assert row["next_attempt_at"] <= now  # the due time itself is not moved by a lease

    # Leased: not due for anyone (this notifier or another) until the lease runs out.
    assert await repo.lease_due(pool, now + LEASE / 2, now + LEASE, 10, {}, 5) == []
    # A notifier that died holding it: once the lease has run out, the event is due again.
    later = now + LEASE + timedelta(seconds=1)
    again = await repo.lease_due(pool, later, later + LEASE, 10, {}, 5)
    assert [d.id for d in again] == [event_id]

    # Both leases were updates in place: no index entry written (statistics: poll, bounded).
    deadline = time.monotonic() + 15
    upd, hot = await _hot_updates(pool)
    while (upd, hot) != (2, 2) and time.monotonic() < deadline:
        upd, hot = await _hot_updates(pool)
    assert (upd, hot) == (2, 2)


async def test_a_failed_attempt_waits_for_its_retry_and_a_delivery_leaves_the_queue(
    pool: asyncpg.Pool,
) -> None:
    event_id = await _queued_event(pool)
    now = datetime.now(UTC)
    assert len(await repo.lease_due(pool, now, now + LEASE, 10, {}, 5)) == 1
    retry_at = now + timedelta(seconds=5)
    await repo.record_attempts(pool, [AttemptResult(
        event_id, 1, now, now, 500, 3, "HTTP 500", delivered=False, next_attempt_at=retry_at,
    )])  # fmt: skip
    row = await pool.fetchrow("SELECT next_attempt_at, leased_until FROM notification_queue")
    assert row is not None and (row["next_attempt_at"], row["leased_until"]) == (retry_at, None)
    # The retry is due at its time, not before (the lease is gone, the schedule holds).
    assert await repo.lease_due(pool, now + timedelta(seconds=4), now + LEASE, 10, {}, 5) == []
    at = retry_at + timedelta(milliseconds=1)
    due = await repo.lease_due(pool, at, at + LEASE, 10, {}, 5)
    assert [(d.id, d.attempts) for d in due] == [(event_id, 1)]
    await repo.record_attempts(pool, [AttemptResult(
        event_id, 2, at, at, 200, 3, None, delivered=True, next_attempt_at=None,
    )])  # fmt: skip
    assert await pool.fetchval("SELECT count(*) FROM notification_queue") == 0
    status = await pool.fetchval("SELECT delivery_status FROM outbox_events WHERE id = $1",
                                 event_id)  # fmt: skip
    assert status == "delivered"


async def test_a_batch_leases_exactly_the_rows_it_locked(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    """The lease writes the rows its statement locked (by tuple id), no others: of 30 due
    events, a batch of 20 leases 20 and leaves the other ten as they were; of those ten, one
    held by another transaction is skipped and stays unleased, and is due once let go."""
    await _queued_event(pool, events=30)
    ids = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM notification_queue")}
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def leased_now() -> set[str]:
        rows = await pool.fetch(
            "SELECT event_id, leased_until FROM notification_queue WHERE leased_until IS NOT NULL"
        )
        assert all(r["leased_until"] == now + LEASE for r in rows)
        return {r["event_id"] for r in rows}

    first = {d.id for d in await repo.lease_due(pool, now, now + LEASE, 20, {}, 100)}
    assert len(first) == 20 and first <= ids and await leased_now() == first
    held = min(ids - first)
    async with db.transaction():
        await db.execute("SELECT 1 FROM notification_queue WHERE event_id = $1 FOR UPDATE", held)
        second = {d.id for d in await repo.lease_due(pool, now, now + LEASE, 20, {}, 100)}
    assert second == ids - first - {held} and await leased_now() == ids - {held}
    last = await repo.lease_due(pool, now, now + LEASE, 20, {}, 100)
    assert [d.id for d in last] == [held]
