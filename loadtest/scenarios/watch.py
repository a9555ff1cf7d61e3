"""What a scenario run did to the system, over time: a sample each wall second while it runs
(backlog, 垫资 exposure, the simulated clock's anchor from the database; each bank channel's
breaker and result totals from GET /admin/channels) and, at the end, per-payout timings and
outcomes read from the database. Times are wall unix seconds; `simtime.ClockMap` puts
them on the simulated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg

from gateway.client import AdminClient
from loadtest.scenarios.simtime import Anchor

SAMPLE_EVERY_S = 1.0
# The first final event of a payout: when the merchant could first be told it is done.
FINAL_EVENTS = ["payout.succeeded", "payout.failed", "payout.rejected"]


@dataclass
class Watch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    anchors: set[Anchor] = field(default_factory=set)


async def _sample(conn: asyncpg.Connection) -> dict[str, Any]:
    # The work queues hold a row per open payout / pending notification, so a sample costs
    # the backlog, not the whole table.
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM payout_queue) AS open_payouts,
             (SELECT count(*) FROM notification_queue) AS notifications_pending,
             coalesce(sum(advance_used_fen), 0) AS advance_used,
             coalesce(sum(pending_in_fen), 0) AS pending_in,
             coalesce(sum(greatest(advance_used_fen - pending_in_fen, 0)), 0) AS uncovered,
             (SELECT coalesce(sum(outstanding_fen), 0) FROM collection_advances)
                 AS collections_fronted,
             (SELECT wall_s FROM sim_clock WHERE id = 1) AS anchor_wall_s,
             (SELECT sim_s FROM sim_clock WHERE id = 1) AS anchor_sim_s,
             (SELECT scale FROM sim_clock WHERE id = 1) AS anchor_scale
           FROM merchant_balances"""
    )
    assert row is not None
    return dict(row)


async def channels(admin: AdminClient) -> dict[str, dict[str, Any]] | None:
    """Each channel's breaker state and result totals; None when the gateway does not answer
    (it may be the process a scenario killed)."""
    try:
        resp = await admin.get("/admin/channels")
    except (aiohttp.ClientError, TimeoutError):
        return None
    if resp.status != 200:
        return None
    return {c["id"]: {"state": c["breaker"]["state"], "successes": c["totals"]["successes"],
                      "failures": c["totals"]["failures"]}
            for c in resp.json()["data"]}  # fmt: skip


async def watch_until(
    database_url: str, admin: AdminClient, stop: asyncio.Event, out: Watch
) -> None:
    """Sample every second until `stop` is set. A sample that fails (a store restarting in a
    fault scenario) is skipped; the watch goes on."""
    conn: asyncpg.Connection | None = None
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(database_url)
                row = await _sample(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn = None
            else:
                out.anchors.add(Anchor(row.pop("anchor_wall_s"), row.pop("anchor_sim_s"),
                                       row.pop("anchor_scale")))  # fmt: skip
                wall = time.time()
                out.rows.append({"wall": wall, **{k: int(v) for k, v in row.items()},
                                 "channels": await channels(admin)})  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SAMPLE_EVERY_S)
    finally:
        if conn is not None and not conn.is_closed():
            await conn.close()


async def anchor_now(database_url: str) -> Anchor:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT wall_s, sim_s, scale FROM sim_clock WHERE id = 1")
    finally:
        await conn.close()
    assert row is not None, "no simulated clock anchor"
    return Anchor(row["wall_s"], row["sim_s"], row["scale"])


async def payout_times(database_url: str, since: datetime) -> list[tuple[float, float | None, str]]:
    """Each payout made from `since` on: accepted (wall s), first final (wall s, None while
    open) and its status now."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT extract(epoch FROM p.created_at)::float8 AS accepted,
                      (SELECT extract(epoch FROM min(o.created_at))::float8 FROM outbox_events o
                       WHERE o.object_id = p.id AND o.type = ANY($2::text[])) AS final,
                      p.status
               FROM payouts p WHERE p.created_at >= $1""",
            since,
            FINAL_EVENTS,
        )
    finally:
        await conn.close()
    return [(r["accepted"], r["final"], r["status"]) for r in rows]


def lag_points(totals: dict[str, Any]) -> list[tuple[float, float]]:
    """Notification lag p99 by the wall second the event was created (from observe.totals)."""
    return [(float(t), float(ms)) for t, ms in totals.get("notification_lag_p99_by_second", [])]
