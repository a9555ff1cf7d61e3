"""One bank's batch desk (批量代付): takes many payout submissions in one request and answers
each item on its own, with one sync fault and one ack latency for the whole answer.

Every item goes through the bank's own `admit_many` and `submit`, so an item means what the
same submission sent alone means: capacity counts items, refs stay idempotent, and a seeded
bank draws each payout the same fate whether it came alone or inside a batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from channels.bank_sim.bank import Bank, Busy, RefConflict, Submission
from channels.bank_sim.distributions import delay_ms
from channels.bank_sim.fate import draw_batch_sync_fault
from channels.bank_sim.profile import SyncFault
from channels.bank_sim.schemas import PayoutSubmission, Ref

_ITEM_DECODER = msgspec.json.Decoder(PayoutSubmission)


class _RefOnly(msgspec.Struct):
    ref: Ref


_REF_DECODER = msgspec.json.Decoder(_RefOnly)


class BatchNotSupported(Exception):
    pass


class BatchTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ItemRefusal:
    ref: str | None  # None when the item carries no readable ref
    code: str  # invalid_request | ref_conflict | bank_busy
    message: str


ItemAnswer = Submission | ItemRefusal


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    items: list[ItemAnswer]  # one per submitted item, in order
    sync_fault: SyncFault | None
    ack_ms: float  # wall-clock latency before answering
    retry_after_s: float | None  # set when any item was refused bank_busy


def decode_item(index: int, raw: msgspec.Raw) -> PayoutSubmission | ItemRefusal:
    try:
        return _ITEM_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        return ItemRefusal(_readable_ref(raw), "invalid_request", f"items[{index}]: {exc}")


def _readable_ref(raw: msgspec.Raw) -> str | None:
    """The item's ref when it is a valid one, so the gateway can match the refusal to it."""
    try:
        return _REF_DECODER.decode(raw).ref
    except msgspec.ValidationError:
        return None


class BatchDesk:
    def __init__(self, bank: Bank, rng: random.Random) -> None:
        self._bank = bank
        # The batch's own draws (sync fault, ack) come from a separate stream so that they do
        # not shift the payouts' sequence in the bank's rng.
        self._rng = rng

    @property
    def bank(self) -> Bank:
        return self._bank

    def check_supported(self) -> None:
        if self._bank.profile.submit_batch_max == 1:
            raise BatchNotSupported(f"bank {self._bank.bank_id} takes single submissions only")

    def submit(self, raw_items: Sequence[msgspec.Raw], now: datetime) -> BatchAnswer:
        """Answer every item; raises BatchNotSupported, BatchTooLarge or InMaintenance (then
        nothing is recorded)."""
        bank = self._bank
        profile = bank.profile
        self.check_supported()
        if len(raw_items) > profile.submit_batch_max:
            raise BatchTooLarge(
                f"{len(raw_items)} items; bank {bank.bank_id} takes at most "
                f"{profile.submit_batch_max} per batch"
            )
        decoded = [decode_item(i, raw) for i, raw in enumerate(raw_items)]
        # A malformed item never reaches the bank's books, so it takes no capacity (as alone).
        valid = sum(1 for d in decoded if not isinstance(d, ItemRefusal))
        admitted, wait_s = bank.admit_many(now, valid)
        busy_message = str(Busy(wait_s)) if admitted < valid else ""
        answers: list[ItemAnswer] = []
        for item in decoded:
            if isinstance(item, ItemRefusal):
                answers.append(item)
            elif admitted == 0:
                answers.append(ItemRefusal(item.ref, "bank_busy", busy_message))
            else:
                admitted -= 1
                try:
                    # bank.submit also draws a sync fault and an ack for the item; they go
                    # unused here but keep the bank's draws the same as for single submits.
                    answers.append(bank.submit(item, now))
                except RefConflict as exc:
                    answers.append(ItemRefusal(item.ref, "ref_conflict", str(exc)))
        new_payees = (
            a.record.payee for a in answers if isinstance(a, Submission) and not a.replayed
        )
        sync_fault = draw_batch_sync_fault(profile, self._rng, new_payees)
        return BatchAnswer(
            items=answers,
            sync_fault=sync_fault,
            ack_ms=delay_ms(profile.ack_latency, self._rng),
            retry_after_s=wait_s if busy_message else None,
        )
