"""The freeze state machine (冻结 / 解冻, SPEC 16) as one transition table.

    active -unfreeze (part)-> active -unfreeze (the rest)-> released
      |
      +-transfer (part)-> active -transfer (the rest)-> transferred

An unfreeze gives frozen money back to the account's available; a claim transfer (债权转让,
a transfer naming `from_freeze`) sends it to another account. Either may take part of what
is left; the step that takes the last of it ends the freeze, and its kind names the final
state. A final freeze never changes.
"""

from __future__ import annotations

from enum import StrEnum


class FreezeStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    TRANSFERRED = "transferred"


class FreezeEvent(StrEnum):
    UNFREEZE = "unfreeze"
    TRANSFER = "transfer"


class LedgerEffect(StrEnum):
    UNFREEZE = "unfreeze"  # frozen -> the same account's available (moves.unfreeze)
    TRANSFER = "transfer"  # frozen -> another account's available (moves.transfer from_frozen)


# (from, event, money left after the step) -> (to, ledger effect). Anything absent is illegal.
TRANSITIONS: dict[tuple[FreezeStatus, FreezeEvent, bool], tuple[FreezeStatus, LedgerEffect]] = {
    (FreezeStatus.ACTIVE, FreezeEvent.UNFREEZE, True): (FreezeStatus.ACTIVE, LedgerEffect.UNFREEZE),
    (FreezeStatus.ACTIVE, FreezeEvent.UNFREEZE, False): (
        FreezeStatus.RELEASED,
        LedgerEffect.UNFREEZE,
    ),
    (FreezeStatus.ACTIVE, FreezeEvent.TRANSFER, True): (FreezeStatus.ACTIVE, LedgerEffect.TRANSFER),
    (FreezeStatus.ACTIVE, FreezeEvent.TRANSFER, False): (
        FreezeStatus.TRANSFERRED,
        LedgerEffect.TRANSFER,
    ),
}

FINAL = frozenset({FreezeStatus.RELEASED, FreezeStatus.TRANSFERRED})


class IllegalFreezeStep(Exception):
    def __init__(self, status: FreezeStatus, event: FreezeEvent, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.event = event


def step(
    status: FreezeStatus, event: FreezeEvent, amount_fen: int, remaining_fen: int
) -> tuple[FreezeStatus, LedgerEffect]:
    """The one function that applies the table: take `amount_fen` of the `remaining_fen` a
    freeze still holds. Raises IllegalFreezeStep for a final freeze or too large an amount."""
    if amount_fen <= 0 or amount_fen > remaining_fen:
        raise IllegalFreezeStep(
            status, event, f"the freeze holds {remaining_fen}, cannot take {amount_fen}"
        )
    found = TRANSITIONS.get((status, event, amount_fen < remaining_fen))
    if found is None:
        raise IllegalFreezeStep(status, event, f"cannot {event.value} a freeze that is {status}")
    return found
