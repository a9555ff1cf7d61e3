"""What a bank's word about a payout means for it: bank status -> payout events.

Used alike for callbacks, status queries and synchronous answers, so all three agree. A bank
saying `returned` (退票) implies it had paid: on a payout still processing that is
succeed-then-return, in one transaction; when the `succeeded` word arrives later it is a
duplicate and changes nothing.
"""

from __future__ import annotations

from datetime import date

from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent

BANK_STATUSES = ("processing", "succeeded", "failed", "returned")


def events_for(
    payout_id: str,
    bank_status: str,
    *,
    bank_id: str | None,
    bank_ref: str | None,
    failure_code: str | None = None,
    failure_message: str | None = None,
    expect_bank_id: str | None = None,
    expect_amount_fen: int | None = None,
    bank_date: date | None = None,
) -> list[PayoutEvent]:
    """`bank_date`: the bank's business date for the payout, when the word tells it (kept on
    the row for reconciliation; a date already there stays)."""

    def ev(event: Event, code: str | None = None, message: str | None = None) -> PayoutEvent:
        return PayoutEvent(payout_id, event, bank_id=bank_id, bank_ref=bank_ref,
                           failure_code=code, failure_message=message,
                           expect_bank_id=expect_bank_id,
                           expect_amount_fen=expect_amount_fen,
                           bank_date=bank_date)  # fmt: skip

    if bank_status == "succeeded":
        return [ev(Event.SUCCEED)]
    if bank_status == "failed":
        return [ev(Event.FAIL, failure_code or "bank_failed", failure_message)]
    if bank_status == "returned":
        return [ev(Event.SUCCEED), ev(Event.RETURN, failure_code or "returned", failure_message)]
    if bank_status == "processing":
        return []
    raise ValueError(f"unknown bank status {bank_status!r}")
