"""The notify_events rule (SPEC 11): known types or exactly ["*"]; default the final ones."""

import pytest

from gateway.notifications.event_types import (
    DEFAULT_NOTIFY_EVENTS,
    EVENT_TYPES,
    MAX_NOTIFY_EVENTS,
    check_notify_events,
)


def test_event_types_are_every_payout_status_and_each_b2b_status_a_transition_reaches() -> None:
    written = {
        "payout.review_pending",
        "payout.accepted",
        "payout.processing",
        "payout.succeeded",
        "payout.failed",
        "payout.rejected",
        "payout.returned",
        "b2b.notified",
        "b2b.cleared",
        "b2b.failed",
        "b2b.reversed",
        "transfer.completed",
        "freeze.created",
        "freeze.released",
        "collection.succeeded",
        "collection.failed",
    }
    assert written == EVENT_TYPES


def test_default_is_the_final_events_and_review() -> None:
    assert check_notify_events(DEFAULT_NOTIFY_EVENTS) == DEFAULT_NOTIFY_EVENTS
    assert "payout.accepted" not in DEFAULT_NOTIFY_EVENTS
    assert "payout.processing" not in DEFAULT_NOTIFY_EVENTS
    assert "b2b.notified" not in DEFAULT_NOTIFY_EVENTS


def test_known_types_are_kept_in_order_each_once() -> None:
    chosen = ["payout.processing", "b2b.notified", "payout.processing"]
    assert check_notify_events(chosen) == ("payout.processing", "b2b.notified")


def test_star_means_every_event_and_stands_alone() -> None:
    assert check_notify_events(["*"]) == ("*",)
    with pytest.raises(ValueError, match="stands alone"):
        check_notify_events(["*", "payout.failed"])
    with pytest.raises(ValueError, match="stands alone"):
        check_notify_events(["*", "*"])


@pytest.mark.parametrize(
    "types",
    [
        [],
        ["payout.failed"] * (MAX_NOTIFY_EVENTS + 1),
        ["payout.nope"],
        ["b2b.pending"],  # a B2B payment is created without an event
        ["x" * 999],
    ],
)
def test_empty_too_many_or_unknown_types_are_refused(types: list[str]) -> None:
    with pytest.raises(ValueError):
        check_notify_events(types)


def test_refusal_echoes_a_bounded_sample_of_what_is_unknown() -> None:
    with pytest.raises(ValueError) as exc:
        check_notify_events(["y" * 10_000] * MAX_NOTIFY_EVENTS)
    assert len(str(exc.value)) < 1_000
