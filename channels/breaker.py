"""A channel's circuit breaker as a pure state machine (SPEC 9).

closed --failures reach the threshold--> open --retry_at passes--> half_open (one probe)
half_open --probe succeeds--> closed;  half_open --probe fails--> open again.

Failures are errors and timeouts talking to the bank (maintenance, resets, no answer), not a
payee's business outcome. The state lives in the `channels` table so every worker shares it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Availability(StrEnum):
    USABLE = "usable"
    PROBE = "probe"  # one payout may go, to test whether the bank is back
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Breaker:
    state: BreakerState
    consecutive_failures: int = 0
    retry_at: datetime | None = None
    probe_until: datetime | None = None


def availability(b: Breaker, now: datetime) -> Availability:
    if b.state is BreakerState.CLOSED:
        return Availability.USABLE
    if b.state is BreakerState.OPEN:
        ready = b.retry_at is None or b.retry_at <= now
        return Availability.PROBE if ready else Availability.UNAVAILABLE
    # half-open: a probe is out; another may go only if that probe's lease ran out
    expired = b.probe_until is None or b.probe_until < now
    return Availability.PROBE if expired else Availability.UNAVAILABLE


def after_results(
    b: Breaker, successes: int, failures: int, now: datetime, threshold: int, open_ms: int
) -> Breaker:
    """The breaker after a round of submissions to the channel finished."""
    assert successes >= 0 and failures >= 0 and threshold >= 1
    if successes == 0 and failures == 0:
        return b
    reopened = Breaker(
        BreakerState.OPEN,
        consecutive_failures=b.consecutive_failures + failures,
        retry_at=now + timedelta(milliseconds=open_ms),
    )
    if b.state is not BreakerState.CLOSED:
        # The probe's round decides: any failure re-opens, success closes.
        return reopened if failures else Breaker(BreakerState.CLOSED)
    # Within one concurrent round the order is unknown: a success resets the run.
    run = failures if successes else b.consecutive_failures + failures
    if run >= threshold:
        return replace(reopened, consecutive_failures=run)
    return Breaker(BreakerState.CLOSED, consecutive_failures=run)
