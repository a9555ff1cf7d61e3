"""One bank's B2B desk: registers B2B payments (idempotent on `ref`), draws each one's fate and
keeps the records. The bank's live profile decides maintenance, clearing terms and the draws.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.bank_sim.b2b_fate import B2BFate, draw_b2b_fate
from channels.bank_sim.b2b_records import B2B_STATUSES, B2BRecord
from channels.bank_sim.bank import Bank, InMaintenance, RefConflict, ref_prefix
from channels.bank_sim.profile import CLEARING_FATES
from channels.bank_sim.schemas import B2BRequest
from protocol.clock import BUSINESS_TZ


class B2BNotSupported(Exception):
    pass


@dataclass(frozen=True, slots=True)
class B2BRegistration:
    record: B2BRecord
    fate: B2BFate | None  # drawn for a new record; None for a replay
    replayed: bool


@dataclass(slots=True)
class B2BCounters:
    requests: int = 0
    refused_maintenance: int = 0


class B2BDesk:
    def __init__(self, bank: Bank, rng: random.Random) -> None:
        self._bank = bank
        self._rng = rng
        self._records: dict[str, B2BRecord] = {}
        self._sequence = 0
        self.counters = B2BCounters()

    @property
    def bank(self) -> Bank:
        return self._bank

    @property
    def sequence(self) -> int:
        return self._sequence

    def restore(self, records: Iterable[B2BRecord], sequence: int) -> None:
        """Take back the records the books kept (at start-up, before any traffic)."""
        self._records = {r.ref: r for r in records}
        self._sequence = max(sequence, len(self._records))

    def check_supported(self) -> None:
        # Only a single bank runs a B2B gateway; the interbank clearing channel has none.
        if self._bank.profile.kind != "bank":
            raise B2BNotSupported(f"bank {self._bank.bank_id} takes no B2B payments")

    def register(self, request: B2BRequest, now: datetime, page_base_url: str) -> B2BRegistration:
        """Record a new B2B payment, or recognise a replay of one; maintenance records nothing."""
        bank = self._bank
        profile = bank.profile
        self.check_supported()
        if bank.in_maintenance(now):
            self.counters.refused_maintenance += 1
            raise InMaintenance(f"bank {bank.bank_id} is in maintenance")
        self.counters.requests += 1
        existing = self._records.get(request.ref)
        if existing is not None:
            same = (
                existing.amount_fen == request.amount
                and existing.currency == request.currency
                and existing.payer_account_name == request.payer_account_name
            )
            if not same:
                raise RefConflict(f"ref {request.ref} was registered with different fields")
            existing.requests += 1
            return B2BRegistration(record=existing, fate=None, replayed=True)
        business_date = now.astimezone(BUSINESS_TZ).date()
        self._sequence += 1
        record = B2BRecord(
            ref=request.ref,
            bank_id=bank.bank_id,
            bank_ref=f"{ref_prefix(profile.name)}B2B{business_date:%Y%m%d}{self._sequence:08d}",
            amount_fen=request.amount,
            currency=request.currency,
            payer_account_name=request.payer_account_name,
            clearing=profile.clearing,
            clearing_cutoff=profile.clearing_cutoff,
            bank_page_url=f"{page_base_url}/banks/{bank.bank_id}/b2b/{request.ref}/page",
            created_at=now,
            business_date=business_date,
        )
        self._records[record.ref] = record
        fate = draw_b2b_fate(profile, self._rng, request.payer_account_name)
        return B2BRegistration(record=record, fate=fate, replayed=False)

    def get(self, ref: str) -> B2BRecord | None:
        return self._records.get(ref)

    def records(self) -> Iterator[B2BRecord]:
        return iter(self._records.values())

    def stats(self) -> dict[str, Any]:
        by_status = dict.fromkeys(B2B_STATUSES, 0)
        clearing = dict.fromkeys(CLEARING_FATES, 0)
        for record in self._records.values():
            by_status[record.status] += 1
            if record.clearing_status is not None:
                clearing[record.clearing_status] += 1
        return {
            "records": by_status,
            "clearing": clearing,
            "requests": self.counters.requests,
            "refused": {"maintenance": self.counters.refused_maintenance},
        }
