"""A token bucket on the wall clock: a bank's `tps` capacity (capacity and refill rate = tps).

One token is one payout, whether it came alone or inside a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate_per_s: float, now_s: Callable[[], float] = time.monotonic) -> None:
        assert rate_per_s > 0
        self._now_s = now_s
        self._rate_per_s = rate_per_s
        self._tokens = rate_per_s
        self._at_s = now_s()

    @property
    def rate_per_s(self) -> float:
        return self._rate_per_s

    def set_rate(self, rate_per_s: float) -> None:
        assert rate_per_s > 0
        self._refill()
        self._rate_per_s = rate_per_s
        self._tokens = min(self._tokens, rate_per_s)

    def take(self) -> float:
        """Take one token: 0.0 when taken, else the seconds until one is available."""
        return self.take_up_to(1)[1]

    def take_up_to(self, n: int) -> tuple[int, float]:
        """Take as many of `n` tokens as there are, at once: (taken, seconds until the next token
        when fewer than `n` were taken, else 0.0)."""
        assert n >= 0
        self._refill()
        taken = min(n, int(self._tokens))
        self._tokens -= taken
        if taken == n:
            return taken, 0.0
        return taken, (1.0 - self._tokens) / self._rate_per_s

    def _refill(self) -> None:
        now = self._now_s()
        elapsed = max(0.0, now - self._at_s)
        self._tokens = min(self._rate_per_s, self._tokens + elapsed * self._rate_per_s)
        self._at_s = now
