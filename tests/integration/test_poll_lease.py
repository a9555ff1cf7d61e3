"""The poller's lease (migration 0020): it writes `leased_until` and counts the poll, columns
no index names, so leasing an order waiting for its bank rewrites its queue row in place (a
HOT update); a leased order is not due again until its lease runs out; the answer's
bookkeeping sets the next poll and ends the lease, one that leaves the state keeps it."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from gateway.merchants import model as mmodel
from gateway.merchants import repo as merchants_repo
from gateway.payouts import queue
from gateway.payouts.queue import DispatchChange
from gateway.storage.batch_write import BatchWrite
from protocol.ids import new_id, new_secret

LEASE = timedelta(seconds=7)


@pytest.fixture
def pool(one_connection_pool: asyncpg.Pool) -> asyncpg.Pool:
    return one_connection_pool


async def _waiting_for_bank(pool: asyncpg.Pool, poll_at: datetime) -> str:
    """A payout sent to bank 102 and acked, its next query due at `poll_at`."""
    m = mmodel.Merchant(
        id=new_id("m"), name="poll", secret=new_secret(), status="active",
        funding_mode="prefunded", currency="CNY", advance_limit_fen=0, fee_fixed_fen=0,
        fee_bps=0, max_amount_fen=10**9, daily_amount_fen=10**12, daily_count=10**6,
        rate_limit_rps=1, rate_limit_burst=1, review_threshold_fen=None, notify_url=None,
    )  # fmt: skip
    pid = new_id("po")
    async with pool.acquire() as conn, conn.transaction():
        await merchants_repo.insert(conn, m)
        await conn.execute(
            """INSERT INTO payouts (id, merchant_id, merchant_order_id, request_hash, amount_fen,
                   fee_fen, currency, status, payee, funding_balance_fen, funding_advance_fen,
                   business_date, bank_id, bank_ref)
               VALUES ($1, $2, 'o-1', 'h', 5000, 0, 'CNY', 'processing', '{}', 5000, 0, $3,
                       '102', 'ref-1')""",
            pid, m.id, date(2026, 12, 7),
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO payout_queue (payout_id, state, attempts, poll_at)
               VALUES ($1, 'acked', 1, $2)""",
            pid, poll_at,
        )  # fmt: skip
    return pid


async def _stats(pool: asyncpg.Pool) -> tuple[int, int]:
    """(updates, HOT updates) of payout_queue, once this backend has flushed them."""
    await pool.execute("SELECT pg_stat_force_next_flush()")
    row = await pool.fetchrow(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'payout_queue'"
    )
    assert row is not None
    return row["n_tup_upd"], row["n_tup_hot_upd"]


async def _record(pool: asyncpg.Pool, pid: str, change: DispatchChange) -> None:
    w = BatchWrite()
    queue.add_dispatch(w, {pid: change})
    async with pool.acquire() as conn, conn.transaction():
        await w.run(conn)


async def test_a_poll_lease_is_a_hot_update_and_holds_until_it_runs_out(
    pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    pid = await _waiting_for_bank(pool, now)
    leased = await queue.lease_polls(pool, now, 10, now + LEASE)
    assert [(r["id"], r["poll_count"], r["bank_ref"]) for r in leased] == [(pid, 1, "ref-1")]
    # Leased: no other poller takes it while its query is out.
    assert await queue.lease_polls(pool, now + LEASE / 2, 10, now + LEASE) == []
    # A poller that died holding it: once the lease has run out it is asked again.
    later = now + LEASE + timedelta(seconds=1)
    again = await queue.lease_polls(pool, later, 10, later + LEASE)
    assert [(r["id"], r["poll_count"]) for r in again] == [(pid, 2)]

    deadline = time.monotonic() + 15
    stats = await _stats(pool)
    while stats != (2, 2) and time.monotonic() < deadline:  # statistics: polled, bounded
        stats = await _stats(pool)
    assert stats == (2, 2)  # both leases in place: no index entry written


async def test_the_answer_sets_the_next_poll_and_a_kept_state_keeps_the_lease(
    pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    pid = await _waiting_for_bank(pool, now)
    assert len(await queue.lease_polls(pool, now, 10, now + LEASE)) == 1
    # The bank still processing: asked again at `next_poll`, the lease over.
    next_poll = now + timedelta(seconds=3)
    await _record(pool, pid, DispatchChange(state="acked", poll_at=next_poll))
    row = await pool.fetchrow("SELECT poll_at, leased_until FROM payout_queue")
    assert row is not None and (row["poll_at"], row["leased_until"]) == (next_poll, None)
    assert await queue.lease_polls(pool, next_poll - timedelta(seconds=1), 10, now + LEASE) == []
    at = next_poll + timedelta(milliseconds=1)
    assert len(await queue.lease_polls(pool, at, 10, at + LEASE)) == 1
    # Bookkeeping that keeps the state (a streak reset) keeps the lease: asked at its end.
    await _record(pool, pid, DispatchChange(no_record_streak=0))
    assert await queue.lease_polls(pool, at + LEASE / 2, 10, at + 2 * LEASE) == []
    end = at + LEASE + timedelta(milliseconds=1)
    assert [r["poll_count"] for r in await queue.lease_polls(pool, end, 10, end + LEASE)] == [3]
