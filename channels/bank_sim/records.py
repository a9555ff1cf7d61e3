"""The bank's own record of one payout (or collection, a debit), and the only way its status
moves.

processing -> succeeded | failed;  succeeded -> returned (退票).  A final status never changes
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Literal

import msgspec

from channels.bank_sim.schemas import Direction, Payee

RecordStatus = Literal["processing", "succeeded", "failed", "returned"]
STATUSES: Final = ("processing", "succeeded", "failed", "returned")

TRANSITIONS: Final = MappingProxyType(
    {
        "processing": frozenset({"succeeded", "failed"}),
        "succeeded": frozenset({"returned"}),
        "failed": frozenset[str](),
        "returned": frozenset[str](),
    }
)


class IllegalTransition(Exception):
    pass


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return _iso_utc(at)


@lru_cache(maxsize=1024)
def _iso_utc(at: datetime) -> str:
    # Remembered: the items of one batch share their accepted_at and, completed together,
    # their completed_at, and each is rendered in the answer, the books and the callback.
    return at.astimezone(UTC).isoformat()


@dataclass(slots=True)
class BankRecord:
    ref: str
    bank_id: str
    bank_ref: str
    amount_fen: int
    currency: str
    payee: Payee
    purpose: str | None
    accepted_at: datetime
    business_date: date
    status: RecordStatus = "processing"
    failure_code: str | None = None
    failure_message: str | None = None
    completed_at: datetime | None = None
    returned_at: datetime | None = None
    submissions: int = 1
    direction: Direction = "credit"  # debit: a collection (代收) from the payee's card

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "bank_id": self.bank_id,
            "bank_ref": self.bank_ref,
            "amount": self.amount_fen,
            "currency": self.currency,
            "payee": msgspec.to_builtins(self.payee),
            "status": self.status,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "accepted_at": iso(self.accepted_at),
            "completed_at": iso(self.completed_at),
            "returned_at": iso(self.returned_at),
            "business_date": self.business_date.isoformat(),
            "submissions": self.submissions,
            "direction": self.direction,
        }


def move(
    record: BankRecord,
    to: RecordStatus,
    at: datetime,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> None:
    """Apply one transition; refuses an illegal one."""
    if to not in TRANSITIONS[record.status]:
        raise IllegalTransition(f"{record.ref}: {record.status} -> {to}")
    assert (to == "succeeded") == (failure_code is None), "failure code iff not succeeded"
    record.status = to
    record.failure_code = failure_code
    record.failure_message = failure_message
    if to == "returned":
        record.returned_at = at
    else:
        record.completed_at = at
