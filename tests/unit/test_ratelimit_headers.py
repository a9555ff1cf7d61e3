"""Rate-limit figures and headers from the limiter's backlog: pure integer math."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from risk.ratelimit import (
    UREQ_PER_REQUEST,
    Admission,
    admission_from_backlog,
    admission_outcome,
    headers,
)

ONE = UREQ_PER_REQUEST


def test_first_request_of_a_full_bucket_leaves_burst_minus_one() -> None:
    a = admission_from_backlog(False, True, ONE, rps=10, burst=5)
    assert (a.limit, a.remaining, a.reset_s, a.retry_after_s) == (5, 4, 1, 0)


def test_reset_is_the_drain_time_rounded_up() -> None:
    # 3 requests owed at 2 rps: full again after 1.5 s, announced as 2.
    a = admission_from_backlog(False, True, 3 * ONE, rps=2, burst=10)
    assert a.reset_s == 2 and a.remaining == 7


def test_partly_drained_request_is_not_counted_as_remaining() -> None:
    a = admission_from_backlog(False, True, 4 * ONE + 1, rps=1, burst=5)
    assert a.remaining == 0
    a = admission_from_backlog(False, True, 4 * ONE, rps=1, burst=5)
    assert a.remaining == 1


def test_refusal_waits_for_one_request_to_drain() -> None:
    # Full bucket of 5 at 1 rps, 0.3 s drained: the next one fits in 0.3 s, said as 1 s.
    backlog = 5 * ONE - 300_000
    a = admission_from_backlog(False, False, backlog, rps=1, burst=5)
    assert (a.remaining, a.retry_after_s, a.reset_s) == (0, 1, 5)
    assert a.rate_limited


def test_retry_after_is_at_least_one_second_even_at_high_rates() -> None:
    a = admission_from_backlog(False, False, 100 * ONE, rps=10_000, burst=100)
    assert a.retry_after_s == 1


def test_headers_of_an_admitted_request_have_no_retry_after() -> None:
    a = Admission(False, True, limit=20, remaining=19, reset_s=1, retry_after_s=0)
    assert headers(a) == {
        "X-RateLimit-Limit": "20",
        "X-RateLimit-Remaining": "19",
        "X-RateLimit-Reset": "1",
    }


def test_headers_of_a_rate_refusal_carry_retry_after() -> None:
    a = Admission(False, False, limit=20, remaining=0, reset_s=2, retry_after_s=1)
    assert headers(a)["Retry-After"] == "1"
    assert headers(a)["X-RateLimit-Remaining"] == "0"


def test_replay_is_not_a_rate_refusal() -> None:
    a = admission_from_backlog(True, False, 2 * ONE, rps=1, burst=5)
    assert not a.rate_limited and a.retry_after_s == 0
    assert "Retry-After" not in headers(a)
    assert a.remaining == 3


def test_stale_or_boot_second_signature_is_not_a_rate_refusal() -> None:
    a = admission_from_backlog(False, False, 5 * ONE, rps=1, burst=5, stale=True)
    assert a.stale and not a.rate_limited and a.retry_after_s == 0
    assert "Retry-After" not in headers(a)
    assert admission_outcome(a) == "stale"
    b = admission_from_backlog(False, False, 5 * ONE, rps=1, burst=5, in_boot_second=True)
    assert b.in_boot_second and not b.rate_limited and b.retry_after_s == 0
    assert admission_outcome(b) == "boot_second"


@given(rps=st.integers(1, 100_000), burst=st.integers(1, 100_000), data=st.data())
def test_figures_follow_the_backlog(rps: int, burst: int, data: st.DataObject) -> None:
    backlog = data.draw(st.integers(0, burst * ONE))
    refused = backlog + ONE > burst * ONE
    a = admission_from_backlog(False, not refused, backlog, rps, burst)
    assert 0 <= a.remaining <= a.limit == burst
    assert (a.remaining == 0) == refused
    # Full again once the backlog has drained, announced in whole seconds rounded up.
    assert (a.reset_s - 1) * rps * ONE < backlog <= a.reset_s * rps * ONE
    # At most one request is missing and it drains in 1/rps <= 1 s.
    assert a.retry_after_s == (1 if refused else 0)
