"""Which events exist and which a merchant is sent (SPEC 11 `notify_events`): the event types
the outbox writes, the default choice (the final ones), and the check of a merchant's choice."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.b2b.state import TRANSITIONS as B2B_TRANSITIONS
from gateway.collection.state import TRANSITIONS as COLLECTION_TRANSITIONS
from gateway.contract.requests import MAX_NOTIFY_EVENTS
from gateway.payouts.state import TRANSITIONS as PAYOUT_TRANSITIONS
from gateway.payouts.state import Status

ALL = "*"

# payout.<status>: accept writes accepted / review_pending, the transition table the rest;
# b2b.<status>: each status a B2B transition reaches (a payment is created without an event);
# accounts (SPEC 16): a transfer is final when written, a freeze is created then released
# (each unfreeze, whole or part; a claim transfer that consumes it reports the transfer).
# collection.<status>: each final status a collection reaches (its bank's word, async).
ACCOUNT_EVENT_TYPES = ("transfer.completed", "freeze.created", "freeze.released")
EVENT_TYPES: frozenset[str] = frozenset(
    [f"payout.{s.value}" for s in (Status.ACCEPTED, Status.REVIEW_PENDING)]
    + [f"payout.{to.value}" for to, _ in PAYOUT_TRANSITIONS.values()]
    + [f"b2b.{to.value}" for to in B2B_TRANSITIONS.values()]
    + list(ACCOUNT_EVENT_TYPES)
    + [f"collection.{to.value}" for to, _ in COLLECTION_TRANSITIONS.values()]
)

# What a merchant is sent unless it chooses: the events it must act on or book, as SPEC 11
# lists them (a collection's outcome arrives later, like a payout's). Account events are
# answered synchronously to the merchant's own request (a transfer or freeze is final in its
# answer), so they are recorded, listed by /v1/events and sent only to a merchant that asks
# for them (or "*"). The column default in migrations/0014 is the same list.
DEFAULT_NOTIFY_EVENTS: tuple[str, ...] = (
    "payout.succeeded",
    "payout.failed",
    "payout.returned",
    "payout.rejected",
    "payout.review_pending",
    "b2b.cleared",
    "b2b.failed",
    "b2b.reversed",
    "collection.succeeded",
    "collection.failed",
)
assert set(DEFAULT_NOTIFY_EVENTS) <= EVENT_TYPES


def check_notify_events(types: Sequence[str]) -> tuple[str, ...]:
    """A merchant's choice as stored: exactly ("*",), or known types, each once, in the given
    order. Raises ValueError naming what is wrong."""
    if not 1 <= len(types) <= MAX_NOTIFY_EVENTS:
        raise ValueError(f"notify_events takes 1 to {MAX_NOTIFY_EVENTS} event types")
    if ALL in types:
        if len(types) != 1:
            raise ValueError('"*" (every event) stands alone: ["*"]')
        return (ALL,)
    unknown = [t[:64] for t in types if t not in EVENT_TYPES][:3]  # echo a bounded sample
    if unknown:
        raise ValueError(
            f'unknown event types {unknown}; known: {sorted(EVENT_TYPES)}, or ["*"] for all'
        )
    return tuple(dict.fromkeys(types))
