"""The B2B payment state machine (SPEC 7) as one transition table.

    pending -notify-> notified -clear-> cleared
       |                  |
       +-fail-> failed    +-reverse-> reversed

notify puts the amount in pending_in; clear repays the advance first, the rest to available;
reverse takes pending_in away and leaves any advance outstanding (the advance risk).
"""

from __future__ import annotations

from enum import StrEnum


class B2BStatus(StrEnum):
    PENDING = "pending"
    NOTIFIED = "notified"
    CLEARED = "cleared"
    FAILED = "failed"
    REVERSED = "reversed"


class B2BEvent(StrEnum):
    NOTIFY = "notify"
    FAIL = "fail"
    CLEAR = "clear"
    REVERSE = "reverse"


TRANSITIONS: dict[tuple[B2BStatus, B2BEvent], B2BStatus] = {
    (B2BStatus.PENDING, B2BEvent.NOTIFY): B2BStatus.NOTIFIED,
    (B2BStatus.PENDING, B2BEvent.FAIL): B2BStatus.FAILED,
    (B2BStatus.NOTIFIED, B2BEvent.CLEAR): B2BStatus.CLEARED,
    (B2BStatus.NOTIFIED, B2BEvent.REVERSE): B2BStatus.REVERSED,
}

FINAL = frozenset({B2BStatus.CLEARED, B2BStatus.FAILED, B2BStatus.REVERSED})


def b2b_transition(status: B2BStatus, event: B2BEvent) -> B2BStatus | None:
    """The next status, or None when the table refuses (a duplicate or out-of-order word)."""
    return TRANSITIONS.get((status, event))
