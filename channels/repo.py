"""The `channels` table: load channels with their breaker, record round results, probes, PATCH."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from channels.breaker import Availability, Breaker, BreakerState, after_results, availability
from channels.routing import RouteOption

COLUMNS = (
    "id, name, kind, enabled, tps, cost_fen, expected_ms, failure_threshold, open_ms,"
    " breaker_state, consecutive_failures, opened_at, retry_at, probe_until, successes,"
    " failures, submit_batch_max, updated_at"
)
PATCHABLE = ("enabled", "tps", "cost_fen", "expected_ms", "failure_threshold", "open_ms",
             "submit_batch_max")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    kind: str
    enabled: bool
    tps: int
    cost_fen: int
    expected_ms: int
    failure_threshold: int
    open_ms: int
    submit_batch_max: int  # payouts per submission request; 1 = one at a time
    breaker: Breaker

    def route_option(self, now: datetime) -> RouteOption:
        avail = availability(self.breaker, now) if self.enabled else Availability.UNAVAILABLE
        return RouteOption(self.id, self.kind, self.cost_fen, avail)


def _channel(row: Mapping[str, Any]) -> Channel:
    return Channel(
        id=row["id"], name=row["name"], kind=row["kind"], enabled=row["enabled"],
        tps=row["tps"], cost_fen=row["cost_fen"], expected_ms=row["expected_ms"],
        failure_threshold=row["failure_threshold"], open_ms=row["open_ms"],
        submit_batch_max=row["submit_batch_max"],
        breaker=Breaker(BreakerState(row["breaker_state"]), row["consecutive_failures"],
                        row["retry_at"], row["probe_until"]),
    )  # fmt: skip


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "enabled": row["enabled"],
        "tps": row["tps"],
        "cost_fen": row["cost_fen"],
        "expected_ms": row["expected_ms"],
        "submit_batch_max": row["submit_batch_max"],
        "breaker": {
            "state": row["breaker_state"],
            "consecutive_failures": row["consecutive_failures"],
            "failure_threshold": row["failure_threshold"],
            "open_ms": row["open_ms"],
            "opened_at": row["opened_at"],
            "retry_at": row["retry_at"],
        },
        "totals": {"successes": row["successes"], "failures": row["failures"]},
        "updated_at": row["updated_at"],
    }


async def load(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Channel]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM channels ORDER BY id")
    return {r["id"]: _channel(r) for r in rows}


async def list_public(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    return [public(r) for r in await conn.fetch(f"SELECT {COLUMNS} FROM channels ORDER BY id")]


async def claim_probe(pool: asyncpg.Pool, channel_id: str, now: datetime, lease_s: float) -> bool:
    """Half-open the breaker for one probe; True for the one worker that wins it."""
    won = await pool.fetchval(
        """UPDATE channels SET breaker_state = 'half_open', probe_until = $2, updated_at = $3
           WHERE id = $1 AND enabled AND (
               (breaker_state = 'open' AND (retry_at IS NULL OR retry_at <= $3))
               OR (breaker_state = 'half_open' AND (probe_until IS NULL OR probe_until < $3)))
           RETURNING id""",
        channel_id,
        now + timedelta(seconds=lease_s),
        now,
    )
    return won is not None


async def record_results(
    pool: asyncpg.Pool, channel_id: str, successes: int, failures: int, now: datetime
) -> Breaker:
    """Fold one round's transport results into the channel's breaker (one short transaction)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {COLUMNS} FROM channels WHERE id = $1 FOR UPDATE",
                                  channel_id)  # fmt: skip
        assert row is not None, channel_id
        ch = _channel(row)
        new = after_results(ch.breaker, successes, failures, now, ch.failure_threshold,
                            ch.open_ms)  # fmt: skip
        opened = new.state is BreakerState.OPEN and ch.breaker.state is not BreakerState.OPEN
        await conn.execute(
            """UPDATE channels SET breaker_state = $2, consecutive_failures = $3,
                   retry_at = $4, probe_until = NULL,
                   opened_at = CASE WHEN $5 THEN $6 ELSE opened_at END,
                   successes = successes + $7, failures = failures + $8, updated_at = $6
               WHERE id = $1""",
            channel_id, new.state.value, new.consecutive_failures, new.retry_at, opened, now,
            successes, failures,
        )  # fmt: skip
        return new


class HealthRecorder:
    """Folds rounds' transport results into the channels' breakers. A round of successes on
    a healthy channel (closed, no failures in a row) changes nothing but its success total:
    those are added up here and written at most every FLUSH_S, not once per round."""

    FLUSH_S = 2.0

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._successes: Counter[str] = Counter()
        self._flushed_at = time.monotonic()

    async def record(
        self, results: Mapping[str, Counter[str]], channels: Mapping[str, Channel], now: datetime
    ) -> None:
        for channel_id, counts in results.items():
            b = channels[channel_id].breaker
            healthy = b.state is BreakerState.CLOSED and b.consecutive_failures == 0
            if healthy and not counts["fail"]:
                self._successes[channel_id] += counts["ok"]
            else:
                ok = counts["ok"] + self._successes.pop(channel_id, 0)
                await record_results(self._pool, channel_id, ok, counts["fail"], now)
        if self._successes and time.monotonic() - self._flushed_at >= self.FLUSH_S:
            await self.flush()

    async def flush(self) -> None:
        if not self._successes:
            return
        ids = sorted(self._successes)
        await self._pool.execute(
            """UPDATE channels c SET successes = c.successes + u.n
               FROM unnest($1::text[], $2::bigint[]) AS u (id, n) WHERE c.id = u.id""",
            ids,
            [self._successes[i] for i in ids],
        )
        self._successes.clear()
        self._flushed_at = time.monotonic()


async def patch(
    pool: asyncpg.Pool | asyncpg.Connection,
    channel_id: str,
    fields: Mapping[str, Any],
    breaker: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """Operator change: settings, and optionally force the breaker open or closed."""
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
    if breaker == "closed":
        sets += ["breaker_state = 'closed'", "consecutive_failures = 0", "retry_at = NULL",
                 "probe_until = NULL"]  # fmt: skip
    elif breaker == "open":
        sets += ["breaker_state = 'open'", "opened_at = $2", "probe_until = NULL",
                 "retry_at = $2 + make_interval(secs => open_ms / 1000.0)"]  # fmt: skip
    sets.append("updated_at = $2")
    row = await pool.fetchrow(
        f"UPDATE channels SET {', '.join(sets)} WHERE id = $1 RETURNING {COLUMNS}",
        channel_id, now, *fields.values(),
    )  # fmt: skip
    return public(row) if row is not None else None
