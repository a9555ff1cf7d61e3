"""The whole simulator's state: the banks (with their B2B and batch desks), their books on
disk, the clock, the nonce cache, timers, callbacks and the counters `/sim/stats` reports.

Built once from BankSimConfig by the app; `start` (which takes back what the books kept and
carries on every record's life) and `close` bracket its life.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from channels.bank_sim.answer_lies import AnswerLies
from channels.bank_sim.b2b_desk import B2BDesk
from channels.bank_sim.b2b_lifecycle import B2BLifecycle
from channels.bank_sim.b2b_records import B2BRecord
from channels.bank_sim.bank import Bank, Submission, bank_rng
from channels.bank_sim.batch_desk import BatchDesk
from channels.bank_sim.books import Books
from channels.bank_sim.callbacks import CallbackSender
from channels.bank_sim.config import BankSimConfig
from channels.bank_sim.lifecycle import Lifecycle
from channels.bank_sim.nonce_books import KeptNonces
from channels.bank_sim.presets import DEFAULT_BANKS, identity_of, preset_profile
from channels.bank_sim.profile import BankProfile, profile_from_json
from channels.bank_sim.records import STATUSES, BankRecord
from channels.bank_sim.timers import Timers
from protocol.clock import SimClock
from protocol.keys import bank_secret

log = logging.getLogger("paygate.bank_sim")

# The signed routes a bank counts requests by.
RouteKind = Literal["submit", "submit_batch", "query", "statement", "b2b"]
ROUTE_KINDS: Final[tuple[RouteKind, ...]] = ("submit", "submit_batch", "query", "statement", "b2b")


def _no_requests() -> dict[RouteKind, int]:
    return dict.fromkeys(ROUTE_KINDS, 0)


@dataclass(slots=True)
class HttpCounters:
    """Requests one bank received (signed or not yet), and the payouts inside its batches: the
    benchmark divides these by the number of payouts."""

    requests: dict[RouteKind, int] = field(default_factory=_no_requests)
    batch_items: int = 0


class BankSim:
    def __init__(self, config: BankSimConfig, clock: SimClock | None = None) -> None:
        self.config = config
        self.clock = clock or SimClock(scale=config.time_scale)
        self.banks: dict[str, Bank] = {
            who.bank_id: Bank(
                preset_profile(config.preset, who), bank_rng(config.seed, who.bank_id)
            )
            for who in DEFAULT_BANKS
        }
        self.b2b_desks = {
            bank_id: B2BDesk(bank, bank_rng(config.seed, bank_id, "b2b"))
            for bank_id, bank in self.banks.items()
        }
        self.batch_desks = {
            bank_id: BatchDesk(bank, bank_rng(config.seed, bank_id, "batch"))
            for bank_id, bank in self.banks.items()
        }
        self.answer_lies = {
            bank_id: AnswerLies(bank_rng(config.seed, bank_id, "answers")) for bank_id in self.banks
        }
        self.http = {bank_id: HttpCounters() for bank_id in self.banks}
        self.secrets = {
            bank_id: bank_secret(config.master_secret, bank_id) for bank_id in self.banks
        }
        self.books = Books(config.books_path)
        self.nonces = KeptNonces(self.books)
        self.timers = Timers()
        self.sender = CallbackSender(
            config.callback_url,
            config.master_secret,
            config.callback_timeout_s,
            self.clock,
            self.timers,
            lambda bank_id: self.banks[bank_id].profile,
        )
        self.lifecycle = Lifecycle(self.clock, self.timers, self.sender, self.books)
        self.b2b_lifecycle = B2BLifecycle(self.clock, self.timers, self.sender, self.books)
        # Set when the app shuts down: ends artificial hangs so the server can stop promptly.
        self.closing = asyncio.Event()

    async def start(self) -> None:
        await self.sender.start()
        # Simulated time goes on across a restart: a bank that ran before keeps its anchor
        # (at the same scale), so its business dates and due completions do not jump back.
        kept = self.books.clock_anchor()
        if kept is not None and kept.scale == self.clock.scale:
            self.clock.set_anchor(kept)
        else:
            self.books.save_clock_anchor(self.clock.anchor)
        self._restore_profiles()
        nonces = self.nonces.restore()
        restored = 0
        for bank_id, bank in self.banks.items():
            books = self.books.restore(bank_id)
            bank.restore((r for r, _ in books.payouts), books.payout_sequence)
            desk = self.b2b_desks[bank_id]
            desk.restore((r for r, _ in books.b2b), books.b2b_sequence)
            for record, fate in books.payouts:
                if fate is not None:
                    self.lifecycle.resume(bank, record, fate)
            for b2b_record, b2b_fate in books.b2b:
                if b2b_fate is not None:
                    self.b2b_lifecycle.resume(bank, b2b_record, b2b_fate)
            restored += len(books.payouts) + len(books.b2b)
        if restored or nonces:
            log.info("bank books restored", extra={"records": restored, "nonces": nonces})

    def _restore_profiles(self) -> None:
        """Profiles changed at run time come back (an outage a scenario set stays on)."""
        for bank_id, data in self.books.profiles(self.config.preset).items():
            bank = self.banks.get(bank_id)
            try:
                profile = profile_from_json(data)
            except msgspec.ValidationError as exc:  # kept by an older version of the profile
                log.warning("kept profile ignored", extra={"bank_id": bank_id, "error": str(exc)})
                continue
            if bank is not None and profile.bank_id == bank_id:
                bank.set_profile(profile)

    async def close(self) -> None:
        self.closing.set()
        await self.timers.close()
        await self.sender.close()
        self.books.close()

    def accepted(self, bank: Bank, submissions: Iterable[Submission]) -> None:
        """Write what the bank just took to its books, then start each new record's life.
        Called before the bank answers: an acknowledged payout is on disk."""
        started = []
        for sub in submissions:
            self.books.mark_payout(sub.record, sub.fate, bank.sequence)
            if sub.fate is not None:
                started.append((sub.record, sub.fate))
        self.books.write_now()
        self.lifecycle.start(bank, started)

    def set_profile(self, bank: Bank, profile: BankProfile) -> None:
        """Change a bank's profile, in its books first: a restart keeps the change."""
        self.books.save_profile(bank.bank_id, self.config.preset, profile.to_json())
        bank.set_profile(profile)

    def apply_preset(self, preset: str) -> None:
        """Reset every bank to `preset` (raises UnknownPreset before changing any)."""
        profiles = [preset_profile(preset, identity_of(b.profile)) for b in self.banks.values()]
        for bank, profile in zip(self.banks.values(), profiles, strict=True):
            self.set_profile(bank, profile)

    def records(self, bank_id: str | None = None, status: str | None = None) -> list[BankRecord]:
        out: list[BankRecord] = []
        for bank in self.banks.values():
            if bank_id and bank.bank_id != bank_id:
                continue
            out.extend(r for r in bank.records() if not status or r.status == status)
        out.sort(key=lambda r: (r.accepted_at, r.bank_id, r.bank_ref))
        return out

    def b2b_records(self, bank_id: str | None = None, status: str | None = None) -> list[B2BRecord]:
        out: list[B2BRecord] = []
        for desk_bank_id, desk in self.b2b_desks.items():
            if bank_id and desk_bank_id != bank_id:
                continue
            out.extend(r for r in desk.records() if not status or r.status == status)
        out.sort(key=lambda r: (r.created_at, r.bank_id, r.bank_ref))
        return out

    def stats(self) -> dict[str, Any]:
        banks: dict[str, Any] = {}
        for bank_id, bank in self.banks.items():
            by_status = dict.fromkeys(STATUSES, 0)
            for record in bank.records():
                by_status[record.status] += 1
            callbacks = self.sender.counters[bank_id]
            http = self.http[bank_id]
            banks[bank_id] = {
                "records": by_status,
                "submissions": bank.counters.submissions,
                "refused": {
                    "busy": bank.counters.refused_busy,
                    "maintenance": bank.counters.refused_maintenance,
                },
                "b2b": self.b2b_desks[bank_id].stats(),
                "http": {**http.requests, "batch_items": http.batch_items},
                "callbacks": {
                    "posts": callbacks.posts,
                    "sent": callbacks.sent,
                    "failed": callbacks.failed,
                    "attempts": callbacks.attempts,
                    "retried": callbacks.retried,
                    "skipped": callbacks.skipped,
                },
            }
        return {
            "banks": banks,
            "pending_timers": self.timers.pending,
            "books_writes": self.books.writes,
        }
