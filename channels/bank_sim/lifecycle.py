"""The life of an accepted payout at the bank: completion, callback (with its fault), return.

accepted --complete_after_ms--> succeeded|failed (query shows it) + callback
succeeded --return_after_ms--> returned + `returned` callback (when the fate says so)
A record restored from the books after a restart carries on from where its fate says it is
now (`resume`): a completion or return that fell due while the bank was down happens at once.
Callback faults: lost (no callback of the payout is ever sent, its return's neither),
duplicate (sent twice at once), very_late (sent after very_late_after_ms instead),
out_of_order (with a return: `returned` is sent before `succeeded`; otherwise sent now and
again after resend_after_ms).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from channels.bank_sim.bank import Bank
from channels.bank_sim.books import Books
from channels.bank_sim.callback_queue import CallbackItem
from channels.bank_sim.callbacks import CallbackSender, status_item
from channels.bank_sim.fate import Fate
from channels.bank_sim.profile import (
    COLLECTION_FAILURE_MESSAGES,
    FAILURE_MESSAGES,
    INVALID_BANK_CODE,
    INVALID_BANK_CODE_MESSAGE,
    RETURN_CODE,
    SUCCEEDED,
)
from channels.bank_sim.records import BankRecord, iso, move
from channels.bank_sim.timers import Timers
from protocol.clock import SimClock

log = logging.getLogger("paygate.bank_sim")


def callback_item(record: BankRecord) -> CallbackItem:
    """The callback for the record's current status."""
    occurred_at = record.returned_at if record.status == "returned" else record.completed_at
    kind = "collection" if record.direction == "debit" else "payout"
    head = {"kind": kind, "business_date": record.business_date.isoformat()}
    return head | status_item(
        bank_ref=record.bank_ref,
        ref=record.ref,
        status=record.status,
        amount_fen=record.amount_fen,
        failure_code=record.failure_code,
        failure_message=record.failure_message,
        occurred_at=iso(occurred_at),
    )


def failure_message(code: str) -> str:
    if code == INVALID_BANK_CODE:
        return INVALID_BANK_CODE_MESSAGE
    return FAILURE_MESSAGES.get(code) or COLLECTION_FAILURE_MESSAGES[code]


class Lifecycle:
    def __init__(
        self, clock: SimClock, timers: Timers, sender: CallbackSender, books: Books
    ) -> None:
        self._clock = clock
        self._timers = timers
        self._sender = sender
        self._books = books

    def start(self, bank: Bank, started: Iterable[tuple[BankRecord, Fate]]) -> None:
        """Schedule what happens to records the bank just accepted. Those due after the same
        delay (all of them, at an instant bank) complete in one timer, at one instant, in the
        order they came: a timer and a clock reading per record cost the simulator more than
        the completion itself."""
        due: dict[float, list[tuple[BankRecord, Fate]]] = {}
        for record, fate in started:
            due.setdefault(fate.complete_after_ms, []).append((record, fate))
        for after_ms, group in due.items():
            self._after(after_ms, partial(self._complete_all, bank, group))

    def resume(self, bank: Bank, record: BankRecord, fate: Fate) -> None:
        """Schedule what is still to happen to a record restored from the books."""
        now_ms = self._clock.now_s() * 1000
        if record.status == "processing":
            due_ms = record.accepted_at.timestamp() * 1000 + fate.complete_after_ms
            self._after(due_ms - now_ms, lambda: self._complete(bank, record, fate, None))
        elif record.status == "succeeded" and fate.returned and record.completed_at:
            due_ms = record.completed_at.timestamp() * 1000 + fate.return_after_ms
            self._after(due_ms - now_ms, lambda: self._return(bank, record, fate, None))

    def _after(self, sim_ms: float, fn: Callable[[], None]) -> None:
        self._timers.call_later(self._clock.wall_delay_s(sim_ms / 1000), fn)

    def _complete_all(self, bank: Bank, group: list[tuple[BankRecord, Fate]]) -> None:
        now = self._clock.now()
        for record, fate in group:
            try:
                self._complete(bank, record, fate, now)
            except Exception:  # one record's bug must not hold the others back
                log.exception("bank simulator completion failed", extra={"ref": record.ref})

    def _complete(self, bank: Bank, record: BankRecord, fate: Fate, now: datetime | None) -> None:
        now = now or self._clock.now()
        if fate.outcome == SUCCEEDED:
            move(record, "succeeded", now)
        else:
            move(record, "failed", now, fate.outcome, failure_message(fate.outcome))
        self._books.mark_payout(record)
        item = callback_item(record)
        held: CallbackItem | None = None
        if fate.callback_fault == "out_of_order" and fate.returned:
            held = item  # sent after the `returned` callback
        else:
            self._sender.send_with_fault(
                bank.bank_id,
                item,
                fate.callback_fault,
                fate.very_late_after_ms,
                fate.resend_after_ms,
            )
        if fate.returned:
            self._after(fate.return_after_ms, lambda: self._return(bank, record, fate, held))

    def _return(
        self, bank: Bank, record: BankRecord, fate: Fate, held: CallbackItem | None
    ) -> None:
        move(record, "returned", self._clock.now(), RETURN_CODE, FAILURE_MESSAGES[RETURN_CODE])
        self._books.mark_payout(record)
        if fate.callback_fault == "lost":
            return  # `lost` loses every callback of the payout: its 退票 notice never arrives
        items = [callback_item(record)]
        if held is not None:
            items.append(held)
        self._sender.send(bank.bank_id, items)
