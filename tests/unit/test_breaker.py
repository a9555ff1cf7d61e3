"""The circuit breaker and routing are pure: every transition is checked here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from channels.breaker import Availability, Breaker, BreakerState, after_results, availability
from channels.routing import RouteOption, candidates, choose

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLOSED = Breaker(BreakerState.CLOSED)


def test_failures_below_threshold_keep_it_closed() -> None:
    b = after_results(CLOSED, 0, 2, NOW, threshold=3, open_ms=1000)
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 2
    assert availability(b, NOW) is Availability.USABLE


def test_threshold_opens_until_retry_then_one_probe() -> None:
    b = after_results(Breaker(BreakerState.CLOSED, 2), 0, 1, NOW, threshold=3, open_ms=1000)
    assert b.state is BreakerState.OPEN
    assert availability(b, NOW) is Availability.UNAVAILABLE
    assert availability(b, NOW + timedelta(milliseconds=999)) is Availability.UNAVAILABLE
    assert availability(b, NOW + timedelta(seconds=1)) is Availability.PROBE


def test_a_success_resets_the_failure_run() -> None:
    b = after_results(Breaker(BreakerState.CLOSED, 2), 1, 0, NOW, threshold=3, open_ms=1000)
    assert b == CLOSED


def test_half_open_probe_decides() -> None:
    probing = Breaker(BreakerState.HALF_OPEN, 3, None, NOW + timedelta(seconds=5))
    assert availability(probing, NOW) is Availability.UNAVAILABLE  # the probe is out
    assert after_results(probing, 1, 0, NOW, 3, 1000).state is BreakerState.CLOSED
    again = after_results(probing, 0, 1, NOW, 3, 1000)
    assert again.state is BreakerState.OPEN and again.retry_at == NOW + timedelta(seconds=1)
    expired = Breaker(BreakerState.HALF_OPEN, 3, None, NOW - timedelta(seconds=1))
    assert availability(expired, NOW) is Availability.PROBE  # the prober died: probe again


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=30))
def test_breaker_opens_only_after_a_failure(rounds: list[tuple[int, int]]) -> None:
    b = CLOSED
    for ok, bad in rounds:
        nxt = after_results(b, ok, bad, NOW, threshold=3, open_ms=100)
        if nxt.state is BreakerState.OPEN and b.state is not BreakerState.OPEN:
            assert bad > 0
        if bad == 0 and ok > 0:
            assert nxt.state is BreakerState.CLOSED
        b = nxt


def opt(cid: str, kind: str = "bank", cost: int = 100,
        avail: Availability = Availability.USABLE) -> RouteOption:  # fmt: skip
    return RouteOption(cid, kind, cost, avail)


def test_same_bank_first_then_interbank_by_cost() -> None:
    options = [opt("ibps", "interbank", 300), opt("103"), opt("102"), opt("cips", "interbank", 200)]
    assert [o.channel_id for o in candidates("102100099996", options)] == ["102", "cips", "ibps"]
    assert [o.channel_id for o in candidates("313100000013", options)] == ["cips", "ibps"]


def test_choose_skips_unhealthy_and_limits_probes() -> None:
    options = [opt("102", avail=Availability.PROBE), opt("ibps", "interbank", 300)]
    probes = {"102": 1}
    assert choose("102100099996", options, probes) == "102"
    assert choose("102100099996", options, probes) == "ibps"  # the one probe is taken
    down = [opt("102", avail=Availability.UNAVAILABLE),
            opt("ibps", "interbank", avail=Availability.UNAVAILABLE)]  # fmt: skip
    assert choose("102100099996", down, {}) is None
