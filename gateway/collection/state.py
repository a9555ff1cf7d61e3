"""The collection state machine (代收, SPEC 16) as one transition table.

    pending -succeed-> succeeded     (credit: the payer's money arrives; repays advances first)
       |
       +-fail-> failed               (front: with advance_on_failure, 公司垫付)

Submission to the bank does not change the status (the queue, collection_queue, tracks it).
A final collection never changes: a duplicate or late bank word is refused and moves nothing.
"""

from __future__ import annotations

from enum import StrEnum


class CollectionStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CollectionEvent(StrEnum):
    SUCCEED = "succeed"
    FAIL = "fail"


class LedgerEffect(StrEnum):
    CREDIT = "credit"  # bank reserve -> the merchant's advance (what the payer owes) + account
    FRONT = "front"  # with advance_on_failure: the merchant's advance line -> the account


# (from, event) -> (to, ledger effect). Anything absent is illegal.
TRANSITIONS: dict[
    tuple[CollectionStatus, CollectionEvent], tuple[CollectionStatus, LedgerEffect]
] = {
    (CollectionStatus.PENDING, CollectionEvent.SUCCEED): (
        CollectionStatus.SUCCEEDED,
        LedgerEffect.CREDIT,
    ),
    (CollectionStatus.PENDING, CollectionEvent.FAIL): (CollectionStatus.FAILED, LedgerEffect.FRONT),
}

FINAL = frozenset({CollectionStatus.SUCCEEDED, CollectionStatus.FAILED})


class IllegalCollectionStep(Exception):
    def __init__(self, status: CollectionStatus, event: CollectionEvent) -> None:
        super().__init__(f"cannot {event.value} a collection that is {status.value}")
        self.status = status
        self.event = event


def transition(
    status: CollectionStatus, event: CollectionEvent
) -> tuple[CollectionStatus, LedgerEffect]:
    """The one function that applies the table; an illegal step raises."""
    found = TRANSITIONS.get((status, event))
    if found is None:
        raise IllegalCollectionStep(status, event)
    return found


def event_for(bank_status: str) -> CollectionEvent | None:
    """A bank's word about a debit: `processing` says nothing yet."""
    if bank_status == "succeeded":
        return CollectionEvent.SUCCEED
    if bank_status == "failed":
        return CollectionEvent.FAIL
    if bank_status == "processing":
        return None
    raise ValueError(f"a debit cannot be {bank_status!r}")
