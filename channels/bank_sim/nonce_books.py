"""The nonces of the gateway's signed requests, in memory and in the bank's books, so a request
replayed after the simulator restarted is refused like one replayed before (issue 22).

Why every nonce and not a boot mark (refusing what was signed before the start, as the
gateway's Redis does): timestamps have one-second granularity and come from the caller's
clock, so a boot mark either lets through what was signed in the start's own second (or by a
caller whose clock runs ahead) or refuses honest requests after every restart. The bank gets
one signed request per batch, query or statement, not per merchant request; the nonces of
the requests verified in one loop iteration share one commit, which each awaits before going on
(books.py `written`), and a submission's goes in the commit of what it records; a commit is a
WAL append without an fsync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from channels.bank_sim.auth import SIGNATURE_WINDOW_S
from channels.bank_sim.books import Books
from channels.bank_sim.nonces import NonceCache

# A timestamp may be up to the window in the future, so a nonce must be kept twice as long.
NONCE_WINDOW_S: Final = 2 * SIGNATURE_WINDOW_S
MAX_NONCES: Final = 1_000_000
FORGET_EVERY_S: Final = 60.0  # how often the books drop nonces that left the window


class KeptNonces:
    def __init__(self, books: Books, wall_s: Callable[[], float] = time.time) -> None:
        self._books = books
        self._wall_s = wall_s
        self._cache = NonceCache(NONCE_WINDOW_S, MAX_NONCES)
        self._forgot_at_s = wall_s()

    def __len__(self) -> int:
        return len(self._cache)

    def restore(self) -> int:
        """Take back the nonces still inside the window (at start-up, before any request)."""
        now_s = self._wall_s()
        kept = self._books.nonces_since(int(now_s) - SIGNATURE_WINDOW_S)
        for key, nonce, timestamp_s in kept:  # oldest first: the cache's expiry order
            self._cache.remember(key, nonce, timestamp_s + SIGNATURE_WINDOW_S - now_s)
        return len(kept)

    def first_use(self, key: str, nonce: str, timestamp_s: int) -> bool:
        """True the first time `nonce` is seen; it is then marked for the books (the caller
        awaits `Books.written` before answering)."""
        if not self._cache.first_use(key, nonce):
            return False
        self._books.mark_nonce(key, nonce, timestamp_s)
        now_s = self._wall_s()
        if now_s - self._forgot_at_s >= FORGET_EVERY_S:
            self._forgot_at_s = now_s
            # A request signed before this is refused as stale whatever its nonce.
            self._books.forget_nonces(int(now_s) - SIGNATURE_WINDOW_S)
        return True
