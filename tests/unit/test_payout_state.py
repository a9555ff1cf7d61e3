"""The payout transition table: legal steps, and final states that never change."""

import pytest

from gateway.payouts.funding import Funding, FundsState, Refusal, decide
from gateway.payouts.state import (
    FINAL,
    TRANSITIONS,
    Event,
    IllegalTransition,
    LedgerEffect,
    Status,
    transition,
)


def test_final_states_refuse_every_event_except_return_after_success() -> None:
    for status in FINAL:
        for event in Event:
            if (status, event) == (Status.SUCCEEDED, Event.RETURN):
                assert transition(status, event) == (Status.RETURNED, LedgerEffect.RETURN)
                continue
            with pytest.raises(IllegalTransition):
                transition(status, event)


def test_every_path_into_a_failure_releases_the_hold() -> None:
    for (_, _), (to, effect) in TRANSITIONS.items():
        if to in (Status.FAILED, Status.REJECTED):
            assert effect is LedgerEffect.RELEASE
        if to is Status.SUCCEEDED:
            assert effect is LedgerEffect.SETTLE


def test_a_payout_cannot_succeed_before_it_is_submitted() -> None:
    for status in (Status.REVIEW_PENDING, Status.ACCEPTED):
        with pytest.raises(IllegalTransition):
            transition(status, Event.SUCCEED)


@pytest.mark.parametrize(
    ("mode", "available", "limit", "used", "total", "pool", "expected"),
    [
        ("prefunded", 100, 0, 0, 100, 0, Funding(100, 0)),
        ("prefunded", 100, 0, 0, 101, 10**9, Refusal("insufficient_funds", "")),
        ("advance", 100, 50, 0, 150, 10**9, Funding(100, 50)),
        ("advance", 100, 50, 0, 151, 10**9, Refusal("advance_limit_exceeded", "")),
        ("advance", 100, 50, 10, 141, 10**9, Refusal("advance_limit_exceeded", "")),
        ("advance", 0, 50, 0, 50, 49, Refusal("advance_limit_exceeded", "")),
        ("advance", 200, 50, 50, 150, 0, Funding(150, 0)),
    ],
)
def test_funding_decision_boundaries(
    mode: str, available: int, limit: int, used: int, total: int, pool: int, expected: object
) -> None:
    got = decide(FundsState(mode, available, limit, used), total, pool)
    if isinstance(expected, Refusal):
        assert isinstance(got, Refusal)
        assert got.code == expected.code
    else:
        assert got == expected
