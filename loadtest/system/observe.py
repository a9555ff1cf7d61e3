"""What a load run did to the system, read from its database: samples each second while it
runs (backlog, notifications pending, advance exposure) and totals at the end (status mix,
per-bank outcomes, accept->final latency, notification lag)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

FINAL = ("succeeded", "failed", "rejected", "returned")


@dataclass
class Samples:
    rows: list[dict[str, Any]] = field(default_factory=list)


async def sample_once(conn: asyncpg.Connection, t_s: float) -> dict[str, Any]:
    # Open payouts and pending notifications from the work queues (a row each, deleted when
    # done), so a sample costs the backlog, not the whole table.
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM payout_queue) AS open_payouts,
             (SELECT count(*) FROM notification_queue) AS notifications_pending,
             (SELECT coalesce(sum(advance_used_fen), 0) FROM merchant_balances) AS advance_used,
             (SELECT coalesce(sum(pending_in_fen), 0) FROM merchant_balances) AS pending_in"""
    )
    assert row is not None
    return {"t": round(t_s, 2), **{k: int(v) for k, v in dict(row).items()}}


async def wal_reading(conn: asyncpg.Connection) -> dict[str, int]:
    """WAL written so far (bytes, by position), its full-page images and the checkpoints
    completed, as counters to subtract: what a load step cost the write-ahead log. The page
    images are counted by PostgreSQL's statistics, which lag by up to a second."""
    lsn = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    fpi = await conn.fetchval("SELECT wal_fpi FROM pg_stat_wal")
    checkpoints = await conn.fetchval(
        "SELECT num_done FROM pg_stat_checkpointer"  # PostgreSQL 17 on
        if conn.get_server_version().major >= 17
        else "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
    )
    return {"wal_bytes": int(lsn), "full_page_images": int(fpi), "checkpoints": int(checkpoints)}


async def sample_until(database_url: str, stop: asyncio.Event, out: Samples) -> None:
    conn = await asyncpg.connect(database_url)
    started = time.monotonic()
    try:
        while not stop.is_set():
            out.rows.append(await sample_once(conn, time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await conn.close()


async def totals(database_url: str, since: datetime) -> dict[str, Any]:
    """End-of-run figures for what was created from `since` on."""
    conn = await asyncpg.connect(database_url)
    try:
        status = {r["status"]: r["n"] for r in await conn.fetch(
            "SELECT status, count(*) AS n FROM payouts WHERE created_at >= $1 GROUP BY status",
            since)}  # fmt: skip
        banks: dict[str, dict[str, int]] = {}
        for r in await conn.fetch(
            """SELECT coalesce(bank_id, '-') AS bank, status, count(*) AS n FROM payouts
               WHERE created_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2""",
            since,
        ):
            banks.setdefault(r["bank"], {})[r["status"]] = r["n"]
        final_ms = await conn.fetchrow(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
                      count(*) AS n
               FROM (SELECT extract(epoch FROM updated_at - created_at) * 1000 AS ms
                     FROM payouts WHERE created_at >= $1 AND status = ANY($2::text[])) s""",
            since,
            list(FINAL),
        )
        lag = await conn.fetchrow(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
                      count(*) AS n
               FROM (SELECT extract(epoch FROM delivered_at - created_at) * 1000 AS ms
                     FROM outbox_events WHERE created_at >= $1 AND delivered_at IS NOT NULL) s""",
            since,
        )
        delivery = {r["delivery_status"]: r["n"] for r in await conn.fetch(
            "SELECT delivery_status, count(*) AS n FROM outbox_events WHERE created_at >= $1"
            " GROUP BY 1", since)}  # fmt: skip
        lag_series = [
            (float(r["t"]), float(r["ms"]))
            for r in await conn.fetch(
                """SELECT extract(epoch FROM date_trunc('second', created_at)) AS t,
                          percentile_cont(0.99) WITHIN GROUP (ORDER BY
                              extract(epoch FROM delivered_at - created_at) * 1000) AS ms
                   FROM outbox_events WHERE created_at >= $1 AND delivered_at IS NOT NULL
                   GROUP BY 1 ORDER BY 1""",
                since,
            )
        ]
        return {
            "status": status,
            "banks": banks,
            "accept_to_final_ms": _pct(final_ms),
            "notification_lag_ms": _pct(lag),
            "notification_lag_p99_by_second": lag_series,
            "notifications": delivery,
        }
    finally:
        await conn.close()


def slope(rows: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares growth per second of `key` over the second half of the samples."""
    half = rows[len(rows) // 2 :]
    if len(half) < 2:
        return None
    xs = [float(r["t"]) for r in half]
    ys = [float(r[key]) for r in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if not den:
        return None
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 2)


def _pct(row: Any) -> dict[str, float | int | None]:
    if row is None or not row["n"]:
        return {"p50": None, "p99": None, "n": 0}
    return {"p50": round(float(row["p50"]), 1), "p99": round(float(row["p99"]), 1),
            "n": int(row["n"])}  # fmt: skip


async def wait_quiet(database_url: str, timeout_s: float) -> int:
    """Wait (bounded) until no payout or collection (代收) is open and no notification
    pending; returns what is left (payouts + collections + notifications) at the end."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            row = await sample_once(conn, 0.0)
            collections = int(await conn.fetchval("SELECT count(*) FROM collection_queue"))
            left = int(row["open_payouts"]) + int(row["notifications_pending"]) + collections
            if left == 0 or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)  # polling the backlog, with a deadline
    finally:
        await conn.close()
