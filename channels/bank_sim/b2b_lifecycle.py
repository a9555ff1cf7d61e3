"""The life of a registered B2B payment at the bank: the payer pays (or does not), then the
bank notifies the gateway (报文通知) with a `b2b` callback, subject to the callback faults.

pending --pay_after_ms--> succeeded (with its clearing fate) | failed  + callback
Clearing itself has no timer here: the gateway decides by its own clock when clearing is due
and then queries the record, which shows the clearing fate.
"""

from __future__ import annotations

from channels.bank_sim.b2b_fate import B2BFate
from channels.bank_sim.b2b_records import B2BRecord, move_b2b
from channels.bank_sim.bank import Bank
from channels.bank_sim.books import Books
from channels.bank_sim.callback_queue import CallbackItem
from channels.bank_sim.callbacks import CallbackSender, status_item
from channels.bank_sim.profile import B2B_FAILURE_MESSAGES
from channels.bank_sim.records import iso
from channels.bank_sim.timers import Timers
from protocol.clock import SimClock


def b2b_callback_item(record: B2BRecord) -> CallbackItem:
    """The 报文通知 for the record's final status."""
    return {"kind": "b2b"} | status_item(
        bank_ref=record.bank_ref,
        ref=record.ref,
        status=record.status,
        amount_fen=record.amount_fen,
        failure_code=record.failure_code,
        failure_message=record.failure_message,
        occurred_at=iso(record.completed_at),
    )


class B2BLifecycle:
    def __init__(
        self, clock: SimClock, timers: Timers, sender: CallbackSender, books: Books
    ) -> None:
        self._clock = clock
        self._timers = timers
        self._sender = sender
        self._books = books

    def start(self, bank: Bank, record: B2BRecord, fate: B2BFate) -> None:
        """Schedule the payer's payment for a newly registered record."""
        wall_s = self._clock.wall_delay_s(fate.pay_after_ms / 1000)
        self._timers.call_later(wall_s, lambda: self._pay(bank, record, fate))

    def resume(self, bank: Bank, record: B2BRecord, fate: B2BFate) -> None:
        """Schedule the payment of a pending record restored from the books."""
        if record.status != "pending":
            return
        due_s = record.created_at.timestamp() + fate.pay_after_ms / 1000
        wall_s = self._clock.wall_delay_s(due_s - self._clock.now_s())
        self._timers.call_later(wall_s, lambda: self._pay(bank, record, fate))

    def _pay(self, bank: Bank, record: B2BRecord, fate: B2BFate) -> None:
        now = self._clock.now()
        if fate.failure_code is None:
            move_b2b(record, "succeeded", now, clearing_status=fate.clearing)
        else:
            code = fate.failure_code
            move_b2b(
                record, "failed", now, failure_code=code, failure_message=B2B_FAILURE_MESSAGES[code]
            )
        self._books.mark_b2b(record)
        self._sender.send_with_fault(
            bank.bank_id,
            b2b_callback_item(record),
            fate.callback_fault,
            fate.very_late_after_ms,
            fate.resend_after_ms,
        )
