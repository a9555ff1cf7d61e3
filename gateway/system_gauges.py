"""What the database says at scrape time: open payouts by queue state, notifications
pending, each channel's circuit breaker, the advance pool's use and cap.

The whole system's truth, whichever process asks, in one statement over small tables (the
work queues hold only open work; channels and the pool are a few rows). A process reads it
at most once per `CACHE_S`, however often it is scraped, so a busy scraper cannot load the
database. Failed notifications are not here: counting them means scanning every event, so
they are the counter `paygate_notification_attempts_total{outcome="failed"}` instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Final

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from gateway.metrics import in_hop

log = logging.getLogger("paygate.metrics")

CACHE_S: Final = 2.0
READ_TIMEOUT_S: Final = 1.0
QUEUE_STATES: Final = ("review", "queued", "sending", "acked", "unknown")
BREAKER_VALUES: Final = {"closed": 0, "half_open": 1, "open": 2}

SNAPSHOT_SQL: Final = """
SELECT 'open' AS kind, state AS label, count(*) AS value FROM payout_queue GROUP BY state
UNION ALL SELECT 'pending', '', count(*) FROM notification_queue
UNION ALL SELECT 'breaker', id, CASE breaker_state WHEN 'closed' THEN 0
                                                   WHEN 'half_open' THEN 1 ELSE 2 END
          FROM channels
UNION ALL SELECT 'advance_used', '', used_fen FROM advance_pool
UNION ALL SELECT 'advance_cap', '', cap_fen FROM advance_pool
"""


class SystemGauges:
    """A prometheus_client collector over the last snapshot; `page` refreshes it when old."""

    def __init__(self, pool: asyncpg.Pool, cache_s: float = CACHE_S) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._rows: list[tuple[str, str, int]] | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._registry = CollectorRegistry()
        self._registry.register(self)

    async def refresh(self) -> None:
        if time.monotonic() - self._read_at < self._cache_s:
            return
        async with self._lock:  # concurrent scrapes share one read
            if time.monotonic() - self._read_at < self._cache_s:
                return
            in_hop("metrics")
            try:
                rows = await self._pool.fetch(SNAPSHOT_SQL, timeout=READ_TIMEOUT_S)
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                # The counters still answer; these families are left out until it reads.
                log.warning("metrics snapshot failed", extra={"error": repr(exc)})
                self._rows = None
            else:
                self._rows = [(r["kind"], r["label"], int(r["value"])) for r in rows]
            self._read_at = time.monotonic()

    async def page(self) -> bytes:
        await self.refresh()
        return generate_latest(self._registry)

    def collect(self) -> Iterator[Metric]:
        if self._rows is None:
            return
        open_payouts = GaugeMetricFamily(
            "paygate_payouts_open",
            "Open payouts by where they stand (payout_queue state): review, queued, sending, "
            "acked, unknown",
            labels=["state"],
        )
        breaker = GaugeMetricFamily(
            "paygate_channel_breaker_state",
            "Circuit breaker per bank channel: 0 closed, 1 half_open, 2 open",
            labels=["channel"],
        )
        by_kind: dict[str, dict[str, int]] = {}
        for kind, label, value in self._rows:
            by_kind.setdefault(kind, {})[label] = value
        states = by_kind.get("open", {})
        for state in QUEUE_STATES:
            open_payouts.add_metric([state], states.get(state, 0))
        for channel, value in sorted(by_kind.get("breaker", {}).items()):
            breaker.add_metric([channel], value)
        yield open_payouts
        yield GaugeMetricFamily(
            "paygate_notifications_pending", "Notifications waiting for delivery",
            value=by_kind.get("pending", {}).get("", 0),
        )  # fmt: skip
        yield breaker
        yield GaugeMetricFamily(
            "paygate_advance_used_fen", "Money fronted from the advance pool (垫资), fen",
            value=by_kind.get("advance_used", {}).get("", 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "paygate_advance_cap_fen", "The advance pool's cap, fen",
            value=by_kind.get("advance_cap", {}).get("", 0),
        )  # fmt: skip
