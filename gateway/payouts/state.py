"""The payout state machine (SPEC 6) as one transition table; nothing else decides a move.

    review_pending -approve-> accepted -submit-> processing -succeed-> succeeded -return-> returned
        |                       |                    |
        +-reject-> rejected     +-fail-> failed <----+-fail

Each transition names the ledger move it makes. A final state never changes, except
succeeded -> returned (退票).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    REVIEW_PENDING = "review_pending"
    ACCEPTED = "accepted"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    RETURNED = "returned"


class Event(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SUBMIT = "submit"
    SUCCEED = "succeed"
    FAIL = "fail"
    RETURN = "return"


class LedgerEffect(StrEnum):
    NONE = "none"
    SETTLE = "settle"  # held -> bank reserve + fee income
    RELEASE = "release"  # held -> back to available / credit line, exactly as taken
    RETURN = "return"  # bank reserve -> available (fee kept)


# (from, event) -> (to, ledger effect). Anything absent is illegal.
TRANSITIONS: dict[tuple[Status, Event], tuple[Status, LedgerEffect]] = {
    (Status.REVIEW_PENDING, Event.APPROVE): (Status.ACCEPTED, LedgerEffect.NONE),
    (Status.REVIEW_PENDING, Event.REJECT): (Status.REJECTED, LedgerEffect.RELEASE),
    (Status.ACCEPTED, Event.SUBMIT): (Status.PROCESSING, LedgerEffect.NONE),
    (Status.ACCEPTED, Event.FAIL): (Status.FAILED, LedgerEffect.RELEASE),
    (Status.PROCESSING, Event.SUCCEED): (Status.SUCCEEDED, LedgerEffect.SETTLE),
    (Status.PROCESSING, Event.FAIL): (Status.FAILED, LedgerEffect.RELEASE),
    (Status.SUCCEEDED, Event.RETURN): (Status.RETURNED, LedgerEffect.RETURN),
}

# Events that may move money (so their transaction locks the merchants' balance rows).
LEDGER_EVENTS = frozenset(
    event for (_, event), (_, effect) in TRANSITIONS.items() if effect is not LedgerEffect.NONE
)

FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.REJECTED, Status.RETURNED})
OPEN = frozenset({Status.REVIEW_PENDING, Status.ACCEPTED, Status.PROCESSING})


class IllegalTransition(Exception):
    def __init__(self, status: Status, event: Event) -> None:
        super().__init__(f"cannot {event.value} a payout that is {status.value}")
        self.status = status
        self.event = event


def transition(status: Status, event: Event) -> tuple[Status, LedgerEffect]:
    """The one function that applies the table; an illegal step raises."""
    step = TRANSITIONS.get((status, event))
    if step is None:
        raise IllegalTransition(status, event)
    return step
