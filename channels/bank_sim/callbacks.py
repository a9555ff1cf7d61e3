"""Sends a bank's callbacks to the gateway: signed POSTs, one item each, retried with backoff.

A 2xx or 404 ends delivery; any other status or a connection error is retried up to the bank's
`callback_retries`, then given up and counted. Backoff runs on simulated time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from yarl import URL

from channels.bank_sim.profile import CallbackFault
from channels.bank_sim.timers import Timers
from channels.keys import bank_secret
from gateway.clock import SimClock
from gateway.signing import sign_request

log = logging.getLogger("paygate.bank_sim.callbacks")

BACKOFF_BASE_MS: Final = 200.0  # simulated; doubles per retry
BACKOFF_CAP_MS: Final = 30_000.0
MAX_CONNECTIONS: Final = 256

CallbackItem = dict[str, Any]


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
    sent: int = 0  # delivered (2xx or 404)
    failed: int = 0  # given up after the retries
    attempts: int = 0
    retried: int = 0
    skipped: int = 0  # no callback_url configured


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
    ) -> None:
        self._base = URL(callback_url) if callback_url else None
        self._master_secret = master_secret
        self._timeout_s = timeout_s
        self._clock = clock
        self._timers = timers
        self._secrets: dict[str, str] = {}
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

    def send(
        self,
        bank_id: str,
        items: Sequence[CallbackItem],
        retries: int,
        after_sim_ms: float = 0.0,
    ) -> None:
        """Deliver `items` in order, one POST each, starting `after_sim_ms` from now."""
        batch = list(items)

        def start() -> None:
            self._timers.spawn(self._deliver_in_order(bank_id, batch, retries))

        if after_sim_ms > 0:
            self._timers.call_later(self._clock.wall_delay_s(after_sim_ms / 1000), start)
        else:
            start()

    def send_with_fault(
        self,
        bank_id: str,
        item: CallbackItem,
        retries: int,
        fault: CallbackFault | None,
        very_late_after_sim_ms: float,
        resend_after_sim_ms: float,
    ) -> None:
        """Send one callback as `fault` says: lost (never), duplicate (twice at once),
        very_late (once, after very_late_after_sim_ms), out_of_order (now and again after
        resend_after_sim_ms, so the copy may overtake later news)."""
        match fault:
            case None:
                self.send(bank_id, [item], retries)
            case "lost":
                pass
            case "duplicate":
                self.send(bank_id, [item], retries)
                self.send(bank_id, [item], retries)
            case "very_late":
                self.send(bank_id, [item], retries, very_late_after_sim_ms)
            case "out_of_order":
                self.send(bank_id, [item], retries)
                self.send(bank_id, [item], retries, resend_after_sim_ms)

    async def _deliver_in_order(
        self, bank_id: str, items: list[CallbackItem], retries: int
    ) -> None:
        for item in items:
            await self._deliver(bank_id, item, retries)

    async def _deliver(self, bank_id: str, item: CallbackItem, retries: int) -> bool:
        counters = self.counters[bank_id]
        if self._base is None:
            counters.skipped += 1
            return False
        assert self._session is not None, "CallbackSender.start() was not called"
        url = self._base / "callbacks" / bank_id
        body = orjson.dumps({"items": [item]})
        secret = self._secret(bank_id)
        for attempt in range(retries + 1):
            if attempt > 0:
                counters.retried += 1
                await asyncio.sleep(self._clock.wall_delay_s(backoff_ms(attempt) / 1000))
            counters.attempts += 1
            headers = sign_request(bank_id, secret, "POST", url.raw_path_qs, body)
            headers["Content-Type"] = "application/json"
            try:
                async with self._session.post(url, data=body, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info(
                    "callback attempt failed",
                    extra={"bank_id": bank_id, "event_id": item["event_id"], "error": repr(exc)},
                )
                continue
            if 200 <= status < 300 or status == 404:
                counters.sent += 1
                return True
            log.info(
                "callback refused",
                extra={"bank_id": bank_id, "event_id": item["event_id"], "status": status},
            )
        counters.failed += 1
        log.warning(
            "callback given up",
            extra={"bank_id": bank_id, "event_id": item["event_id"], "ref": item["ref"]},
        )
        return False

    def _secret(self, bank_id: str) -> str:
        secret = self._secrets.get(bank_id)
        if secret is None:
            secret = self._secrets[bank_id] = bank_secret(self._master_secret, bank_id)
        return secret
