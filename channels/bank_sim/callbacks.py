"""Sends a bank's callbacks to the gateway: signed POSTs of `{"items": [...]}`, retried with
backoff.

Each bank's items are gathered into batches of up to its `callback_batch_max`, waiting at most
`callback_batch_linger_ms` for more (callback_queue.py); with `callback_batch_max` 1 every item
is its own POST. A 2xx or 404 ends a batch's delivery; any other status or a connection error
retries the whole batch up to the bank's `callback_retries`, then it is given up and counted.
Backoff runs on simulated time. Counters count items, except `posts` (HTTP POSTs made).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp
import orjson
from yarl import URL

from channels.bank_sim.callback_queue import Batch, CallbackItem, CallbackQueue
from channels.bank_sim.profile import BankProfile, CallbackFault
from channels.bank_sim.timers import Timers
from protocol.clock import SimClock
from protocol.keys import bank_secret
from protocol.signing import sign_request

log = logging.getLogger("paygate.bank_sim.callbacks")

BACKOFF_BASE_MS: Final = 200.0  # simulated; doubles per retry
BACKOFF_CAP_MS: Final = 30_000.0
MAX_CONNECTIONS: Final = 256


def status_item(
    *,
    bank_ref: str,
    ref: str,
    status: str,
    amount_fen: int,
    failure_code: str | None,
    failure_message: str | None,
    occurred_at: str | None,
) -> CallbackItem:
    """One status word as the gateway reads it; its event id is stable across copies."""
    return {
        "event_id": f"evt_{bank_ref}_{status}",
        "ref": ref,
        "bank_ref": bank_ref,
        "status": status,
        "amount": amount_fen,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "occurred_at": occurred_at,
    }


@dataclass(slots=True)
class CallbackCounters:
    sent: int = 0  # items delivered (2xx or 404)
    failed: int = 0  # items given up after the retries
    attempts: int = 0  # items times the POSTs that carried them
    retried: int = 0  # items times the retries that carried them
    skipped: int = 0  # items not sent: no callback_url configured
    posts: int = 0  # HTTP POSTs made, retries included


def backoff_ms(retry: int) -> float:
    """Simulated wait before retry number `retry` (1-based)."""
    return min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2.0 ** (retry - 1))


class CallbackSender:
    def __init__(
        self,
        callback_url: str,
        master_secret: str,
        timeout_s: float,
        clock: SimClock,
        timers: Timers,
        profile_of: Callable[[str], BankProfile],
    ) -> None:
        self._base = URL(callback_url) if callback_url else None
        self._master_secret = master_secret
        self._timeout_s = timeout_s
        self._clock = clock
        self._timers = timers
        # Read when items are queued and posted, so a profile change applies from then on.
        self._profile_of = profile_of
        self._secrets: dict[str, str] = {}
        self._queues: dict[str, CallbackQueue] = {}
        self._session: aiohttp.ClientSession | None = None
        self.counters: defaultdict[str, CallbackCounters] = defaultdict(CallbackCounters)

    async def start(self) -> None:
        assert self._session is None, "started twice"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def send(self, bank_id: str, items: Sequence[CallbackItem], after_sim_ms: float = 0.0) -> None:
        """Queue `items` for delivery in this order, `after_sim_ms` from now."""
        batch = list(items)
        if after_sim_ms > 0:
            wall_s = self._clock.wall_delay_s(after_sim_ms / 1000)
            self._timers.call_later(wall_s, lambda: self._enqueue(bank_id, batch))
        else:
            self._enqueue(bank_id, batch)

    def send_with_fault(
        self,
        bank_id: str,
        item: CallbackItem,
        fault: CallbackFault | None,
        very_late_after_sim_ms: float,
        resend_after_sim_ms: float,
    ) -> None:
        """Send one callback as `fault` says: lost (never), duplicate (twice at once, so maybe in
        one batch), very_late (once, after very_late_after_sim_ms), out_of_order (now and again
        after resend_after_sim_ms, so the copy may overtake later news)."""
        match fault:
            case None:
                self.send(bank_id, [item])
            case "lost":
                pass
            case "duplicate":
                self.send(bank_id, [item])
                self.send(bank_id, [item])
            case "very_late":
                self.send(bank_id, [item], very_late_after_sim_ms)
            case "out_of_order":
                self.send(bank_id, [item])
                self.send(bank_id, [item], resend_after_sim_ms)

    def _enqueue(self, bank_id: str, items: Batch) -> None:
        if self._base is None:
            self.counters[bank_id].skipped += len(items)
            return
        queue = self._queues.get(bank_id)
        if queue is None:

            def post_in_order(batches: list[Batch]) -> None:
                self._timers.spawn(self._post_in_order(bank_id, batches))

            queue = self._queues[bank_id] = CallbackQueue(post_in_order, self._timers.call_later)
        profile = self._profile_of(bank_id)
        queue.add(items, profile.callback_batch_max, profile.callback_batch_linger_ms / 1000)

    async def _post_in_order(self, bank_id: str, batches: list[Batch]) -> None:
        for batch in batches:
            await self._post(bank_id, batch)

    async def _post(self, bank_id: str, items: Batch) -> bool:
        """POST one batch, retrying it whole; True once delivered."""
        assert self._base is not None and self._session is not None, "sender not started"
        counters = self.counters[bank_id]
        n = len(items)
        retries = self._profile_of(bank_id).callback_retries
        url = self._base / "callbacks" / bank_id
        body = orjson.dumps({"items": items})
        secret = self._secret(bank_id)
        where = {"bank_id": bank_id, "items": n, "first_event_id": items[0]["event_id"]}
        for attempt in range(retries + 1):
            if attempt > 0:
                counters.retried += n
                await asyncio.sleep(self._clock.wall_delay_s(backoff_ms(attempt) / 1000))
            counters.attempts += n
            counters.posts += 1
            headers = sign_request(bank_id, secret, "POST", url.raw_path_qs, body)
            headers["Content-Type"] = "application/json"
            try:
                async with self._session.post(url, data=body, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("callback attempt failed", extra=where | {"error": repr(exc)})
                continue
            if 200 <= status < 300 or status == 404:
                counters.sent += n
                return True
            log.info("callback refused", extra=where | {"status": status})
        counters.failed += n
        refs = [item["ref"] for item in items]
        log.warning("callback given up", extra=where | {"refs": refs})
        return False

    def _secret(self, bank_id: str) -> str:
        secret = self._secrets.get(bank_id)
        if secret is None:
            secret = self._secrets[bank_id] = bank_secret(self._master_secret, bank_id)
        return secret
