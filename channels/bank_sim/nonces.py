"""Nonces seen within the signature window (in memory, bounded): a second use is a replay."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class NonceCache:
    """Entries expire after `window_s`; past `max_entries` the oldest is forgotten.

    Forgetting early could let a very old nonce through again, but every signed bank call is
    idempotent (payouts on `ref`, the rest are reads), so memory stays bounded at no risk.
    """

    def __init__(
        self, window_s: float, max_entries: int, now_s: Callable[[], float] = time.monotonic
    ) -> None:
        assert window_s > 0 and max_entries > 0
        self._window_s = window_s
        self._max_entries = max_entries
        self._now_s = now_s
        self._expiry_s: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry_s)

    def first_use(self, key: str, nonce: str) -> bool:
        now = self._now_s()
        self._expire(now)
        entry = (key, nonce)
        if entry in self._expiry_s:
            return False
        self._add(entry, now + self._window_s)
        return True

    def remember(self, key: str, nonce: str, keep_s: float) -> None:
        """Take back a nonce seen before a restart, to be kept `keep_s` more (at most the
        window). Call at start-up only, soonest to expire first: insertion is expiry order."""
        self._add((key, nonce), self._now_s() + min(keep_s, self._window_s))

    def _add(self, entry: tuple[str, str], expiry_s: float) -> None:
        while len(self._expiry_s) >= self._max_entries:
            self._expiry_s.popitem(last=False)
        self._expiry_s[entry] = expiry_s

    def _expire(self, now: float) -> None:
        # Insertion order is expiry order: the window is the same for every entry.
        while self._expiry_s:
            entry, expiry = next(iter(self._expiry_s.items()))
            if expiry > now:
                break
            del self._expiry_s[entry]
