"""The demo's clock jump lands past the next day's T+1 cut-off (China time), wherever today is."""

from __future__ import annotations

from datetime import datetime, timedelta

from loadtest.demo import seconds_past_next_cutoff
from protocol.clock import BUSINESS_TZ


def test_the_jump_passes_the_next_days_cutoff() -> None:
    # A T+1 payment notified at 06:55 clears at 17:00 the next day: a plain day is not enough.
    morning = datetime(2026, 11, 26, 6, 55, tzinfo=BUSINESS_TZ)
    assert morning + timedelta(seconds=seconds_past_next_cutoff(morning)) == datetime(
        2026, 11, 27, 17, 1, tzinfo=BUSINESS_TZ
    )
    evening = datetime(2026, 11, 26, 20, 0, tzinfo=BUSINESS_TZ)
    landed = evening + timedelta(seconds=seconds_past_next_cutoff(evening))
    assert landed == datetime(2026, 11, 27, 17, 1, tzinfo=BUSINESS_TZ)
    assert seconds_past_next_cutoff(morning) > 86_400
