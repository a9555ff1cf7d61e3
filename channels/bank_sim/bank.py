"""One simulated bank: its profile, its seeded rng, its capacity and its record of payouts.

`admit` then `submit` is one payout's way in, alone or as one item of a batch (batch_desk.py).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from channels.bank_sim.bucket import TokenBucket
from channels.bank_sim.distributions import delay_ms
from channels.bank_sim.fate import Fate, draw_fate, draw_sync_fault
from channels.bank_sim.profile import BankProfile, SyncFault
from channels.bank_sim.records import BankRecord
from channels.bank_sim.schemas import PayoutSubmission
from protocol.clock import BUSINESS_TZ


class InMaintenance(Exception):
    pass


class Busy(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"over capacity, retry after {retry_after_s:.3f}s")
        self.retry_after_s = retry_after_s


class RefConflict(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Submission:
    record: BankRecord
    fate: Fate | None  # drawn for a new record; None for a replay
    replayed: bool
    sync_fault: SyncFault | None
    ack_ms: float  # wall-clock latency before answering


@dataclass(slots=True)
class BankCounters:
    submissions: int = 0
    refused_busy: int = 0
    refused_maintenance: int = 0


def bank_rng(seed: int | None, bank_id: str, stream: str = "") -> random.Random:
    """Seeded from (seed, bank_id, stream): each bank draws its own reproducible sequence, and a
    named stream (e.g. "b2b") one more that does not disturb the payouts' sequence."""
    if seed is None:
        return random.Random()
    suffix = f":{stream}" if stream else ""
    return random.Random(f"paygate-bank-sim:{seed}:{bank_id}{suffix}")


class Bank:
    def __init__(self, profile: BankProfile, rng: random.Random) -> None:
        self._profile = profile
        self._rng = rng
        self._bucket = TokenBucket(profile.tps)
        self._records: dict[str, BankRecord] = {}
        self._sequence = 0
        self.counters = BankCounters()

    @property
    def bank_id(self) -> str:
        return self._profile.bank_id

    @property
    def profile(self) -> BankProfile:
        return self._profile

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def sequence(self) -> int:
        """The number in the newest bank_ref this bank issued."""
        return self._sequence

    def restore(self, records: Iterable[BankRecord], sequence: int) -> None:
        """Take back the records the books kept (at start-up, before any traffic)."""
        self._records = {r.ref: r for r in records}
        self._sequence = max(sequence, len(self._records))

    def set_profile(self, profile: BankProfile) -> None:
        assert profile.bank_id == self.bank_id, "a bank keeps its id"
        self._profile = profile
        self._bucket.set_rate(profile.tps)

    def in_maintenance(self, now: datetime) -> bool:
        local = now.astimezone(BUSINESS_TZ)
        return self._profile.in_maintenance(local.hour * 60 + local.minute)

    def admit(self, now: datetime) -> None:
        """Refuse a submission during maintenance or over `tps`; neither records anything."""
        admitted, wait_s = self.admit_many(now, 1)
        if not admitted:
            raise Busy(wait_s)

    def admit_many(self, now: datetime, n: int) -> tuple[int, float]:
        """Admit the first of `n` submissions that fit in `tps`: (how many, seconds until the next
        would fit when not all did). Maintenance refuses all `n` (raises InMaintenance)."""
        if self.in_maintenance(now):
            self.counters.refused_maintenance += n
            raise InMaintenance(f"bank {self.bank_id} is in maintenance")
        admitted, wait_s = self._bucket.take_up_to(n)
        self.counters.refused_busy += n - admitted
        return admitted, wait_s

    def submit(self, request: PayoutSubmission, now: datetime) -> Submission:
        """Record a new payout, or recognise a replay of one (idempotent on `ref`)."""
        profile = self._profile
        existing = self._records.get(request.ref)
        if existing is not None:
            same = (
                existing.amount_fen == request.amount
                and existing.currency == request.currency
                and existing.payee == request.payee
                and existing.direction == request.direction
            )
            if not same:
                raise RefConflict(f"ref {request.ref} was submitted with different fields")
            existing.submissions += 1
            self.counters.submissions += 1
            return Submission(
                record=existing,
                fate=None,
                replayed=True,
                sync_fault=draw_sync_fault(profile, self._rng, request.payee, False),
                ack_ms=delay_ms(profile.ack_latency, self._rng),
            )
        business_date = now.astimezone(BUSINESS_TZ).date()
        self._sequence += 1
        record = BankRecord(
            ref=request.ref,
            bank_id=self.bank_id,
            bank_ref=f"{_ref_head(profile.name, business_date)}{self._sequence:08d}",
            amount_fen=request.amount,
            currency=request.currency,
            payee=request.payee,
            purpose=request.purpose,
            accepted_at=now,
            business_date=business_date,
            direction=request.direction,
        )
        self._records[record.ref] = record
        self.counters.submissions += 1
        return Submission(
            record=record,
            fate=draw_fate(
                profile, self._rng, request.payee, now.timestamp() * 1000, request.direction
            ),
            replayed=False,
            sync_fault=draw_sync_fault(profile, self._rng, request.payee, True),
            ack_ms=delay_ms(profile.ack_latency, self._rng),
        )

    def get(self, ref: str) -> BankRecord | None:
        return self._records.get(ref)

    def records(self) -> Iterator[BankRecord]:
        return iter(self._records.values())


def ref_prefix(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())[:8] or "BANK"


@lru_cache(maxsize=64)
def _ref_head(name: str, business_date: date) -> str:
    """What a bank_ref starts with: the bank's prefix and the business date (the same for
    every payout of a day, so made once)."""
    return f"{ref_prefix(name)}{business_date:%Y%m%d}"
