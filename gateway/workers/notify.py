"""The notification dispatcher (SPEC 10): outbox events POSTed, signed, to notify_url.

Each round leases due events (SKIP LOCKED; per object in sequence; per merchant at most
`notify_per_merchant` in flight) and starts their deliveries as owned tasks, so a slow
merchant holds only its own slots and never the round. Any 2xx is delivery; anything else
(status, timeout, refused connection) is an attempt that failed: the next one follows the
schedule in simulated time, and after the last the event is `failed`. Finished attempts are
group-committed (one transaction per batch) with their history rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import orjson

from gateway.batching import GroupCommitter
from gateway.metrics import HTTP_CLIENT_REQUESTS, NOTIFICATIONS, Metrics, in_hop
from gateway.notifications import repo
from gateway.notifications.repo import AttemptResult, Due
from gateway.notifications.schedule import next_delay_s
from gateway.settings import Settings
from gateway.workers.notify_http import DeliveryError, NotifyHttp
from gateway.workers.rounds import run_rounds
from protocol.clock import SimClock
from protocol.signing import sign_request

log = logging.getLogger("paygate.notify")

ERROR_TEXT_MAX = 300


class Notifier:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        session: aiohttp.ClientSession,
        clock: SimClock,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._s = settings
        self._pool = pool
        self._http = NotifyHttp(session, per_origin=settings.notify_connections_per_origin,
                                timeout_s=settings.notify_timeout_s)  # fmt: skip
        self._clock = clock
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: GroupCommitter[AttemptResult, None] = GroupCommitter(
            "notify-results", self._commit, max_items=500, max_concurrent=2
        )
        self.delivered = 0
        self.failed_attempts = 0

    async def _commit(self, results: Sequence[AttemptResult]) -> list[None]:
        await repo.record_attempts(self._pool, results)
        return [None] * len(results)

    async def run(self, stop: asyncio.Event) -> None:
        in_hop("notify")  # the results committer started here inherits the hop
        await self._results.start()
        try:
            await run_rounds("notify", self.run_once, self._s.notify_batch_max,
                             self._s.notify_idle_ms / 1000, stop, self._pool)  # fmt: skip
        finally:
            # Let deliveries in flight finish (each is bounded by the timeout).
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._results.stop()
            await self._http.aclose()

    async def run_once(self) -> int:
        cap = self._s.notify_per_merchant
        room = {m: cap - n for m, n in self._in_flight.items() if n}
        if len(self._tasks) >= self._s.notify_max_in_flight:
            return 0
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=self._s.notify_timeout_s + 30)
        due = await repo.lease_due(self._pool, now, lease, self._s.notify_batch_max, room, cap)
        for d in due:
            self._in_flight[d.merchant_id] += 1
            task = asyncio.create_task(self._deliver(d), name=f"notify-{d.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _deliver(self, d: Due) -> None:
        try:
            status, error, latency_ms = await self._post(d)
            delivered = status is not None and 200 <= status < 300
            attempt = d.attempts + 1
            next_at = None
            if not delivered:
                self.failed_attempts += 1
                # Nowhere to deliver: retrying cannot help.
                delay_s = next_delay_s(attempt) if d.notify_url else None
                if delay_s is not None:
                    next_at = datetime.now(UTC) + timedelta(
                        seconds=self._clock.wall_delay_s(delay_s)
                    )
                else:
                    log.warning("notification failed for good",
                                extra={"event_id": d.id, "attempts": attempt})  # fmt: skip
            else:
                self.delivered += 1
            if self._metrics is not None:
                outcome = "delivered" if delivered else "retry" if next_at else "failed"
                self._metrics.inc(NOTIFICATIONS, outcome)
            await self._results.submit(AttemptResult(
                event_id=d.id, attempt=attempt, attempted_at=datetime.now(UTC),
                sim_at=self._clock.now(), http_status=status, latency_ms=latency_ms,
                error=error, delivered=delivered, next_attempt_at=next_at,
            ))  # fmt: skip
        except Exception:
            log.exception("notification delivery crashed", extra={"event_id": d.id})
        finally:
            self._in_flight[d.merchant_id] -= 1
            if self._in_flight[d.merchant_id] <= 0:
                del self._in_flight[d.merchant_id]

    async def _post(self, d: Due) -> tuple[int | None, str | None, int]:
        """(http status or None, error text, latency ms) of one attempt."""
        if not d.notify_url:
            return None, "merchant has no notify_url", 0
        body = orjson.dumps(d.body)
        parts = urlsplit(d.notify_url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = sign_request(d.merchant_id, d.secret, "POST", path, body)
        headers["Content-Type"] = "application/json"
        if self._metrics is not None:
            self._metrics.inc(HTTP_CLIENT_REQUESTS, "notify")
        started = time.monotonic()
        try:
            status = await self._http.post(d.notify_url, headers, body)
        except DeliveryError as exc:
            latency_ms = int((time.monotonic() - started) * 1000)
            return None, str(exc)[:ERROR_TEXT_MAX], latency_ms
        latency_ms = int((time.monotonic() - started) * 1000)
        return status, None if 200 <= status < 300 else f"HTTP {status}", latency_ms
