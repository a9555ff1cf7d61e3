"""When notified B2B funds clear (SPEC 7), in simulated time.

`realtime`: a few simulated seconds after the bank's notification. `t+1`: at the clearing
cut-off (HH:MM, China time) of the next business day. Weekends and holidays are not modelled:
every day is a business day.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from protocol.clock import BUSINESS_TZ


def expected_clear_at(
    notified_at: datetime, clearing: str, cutoff_hhmm: str, realtime_delay_s: float
) -> datetime:
    if clearing == "realtime":
        return notified_at + timedelta(seconds=realtime_delay_s)
    if clearing != "t+1":
        raise ValueError(f"unknown clearing mode {clearing!r}")
    hours, minutes = (int(x) for x in cutoff_hhmm.split(":"))
    next_day = notified_at.astimezone(BUSINESS_TZ).date() + timedelta(days=1)
    return datetime.combine(next_day, time(hours, minutes), tzinfo=BUSINESS_TZ)
