"""The bank's own record of one B2B payment (a corporate payer paying the platform), and the
only way its status moves.

pending -> succeeded | failed.  A final status never changes. A succeeded payment carries its
clearing fate (`cleared` or `reversed`); when clearing is due is the gateway's to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

from channels.bank_sim.profile import ClearingFate
from channels.bank_sim.records import IllegalTransition, iso

B2BStatus = Literal["pending", "succeeded", "failed"]
B2B_STATUSES: Final = ("pending", "succeeded", "failed")

B2B_TRANSITIONS: Final = MappingProxyType(
    {
        "pending": frozenset({"succeeded", "failed"}),
        "succeeded": frozenset[str](),
        "failed": frozenset[str](),
    }
)


@dataclass(slots=True)
class B2BRecord:
    ref: str
    bank_id: str
    bank_ref: str
    amount_fen: int
    currency: str
    payer_account_name: str | None
    # The bank's clearing terms when the payment was registered; a later profile change does
    # not rewrite them.
    clearing: str
    clearing_cutoff: str
    bank_page_url: str
    created_at: datetime
    business_date: date
    status: B2BStatus = "pending"
    clearing_status: ClearingFate | None = None  # set iff succeeded
    failure_code: str | None = None
    failure_message: str | None = None
    completed_at: datetime | None = None
    requests: int = 1

    @property
    def paid_at(self) -> datetime | None:
        return self.completed_at if self.status == "succeeded" else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "bank_id": self.bank_id,
            "bank_ref": self.bank_ref,
            "amount": self.amount_fen,
            "currency": self.currency,
            "payer_account_name": self.payer_account_name,
            "status": self.status,
            "clearing_status": self.clearing_status,
            "clearing": self.clearing,
            "clearing_cutoff": self.clearing_cutoff,
            "bank_page_url": self.bank_page_url,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "created_at": iso(self.created_at),
            "paid_at": iso(self.paid_at),
            "completed_at": iso(self.completed_at),
            "business_date": self.business_date.isoformat(),
            "requests": self.requests,
        }


def move_b2b(
    record: B2BRecord,
    to: B2BStatus,
    at: datetime,
    *,
    clearing_status: ClearingFate | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> None:
    """Apply one transition; refuses an illegal one."""
    if to not in B2B_TRANSITIONS[record.status]:
        raise IllegalTransition(f"{record.ref}: {record.status} -> {to}")
    succeeded = to == "succeeded"
    assert succeeded == (clearing_status is not None), "a clearing fate iff succeeded"
    assert succeeded == (failure_code is None), "a failure code iff failed"
    record.status = to
    record.clearing_status = clearing_status
    record.failure_code = failure_code
    record.failure_message = failure_message
    record.completed_at = at
