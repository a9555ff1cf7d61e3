"""Time-ordered prefixed ids (`po_…`, `evt_…`): sortable, so keyset pages follow creation."""

from __future__ import annotations

import os
import time
from functools import lru_cache

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


# Two characters for every 10 bits: 80 random bits are 8 lookups (ids are made per payout,
# entry and event, so this is on the hot path).
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def _b32_80(value: int) -> str:
    """`_b32(value, 16)` for an 80-bit value."""
    p = _PAIRS
    return (p[value >> 70 & 1023] + p[value >> 60 & 1023] + p[value >> 50 & 1023]
            + p[value >> 40 & 1023] + p[value >> 30 & 1023] + p[value >> 20 & 1023]
            + p[value >> 10 & 1023] + p[value & 1023])  # fmt: skip


@lru_cache(maxsize=8)
def _millis_part(millis: int) -> str:
    return _b32(millis, 10)


# The random parts come from os.urandom read 4,000 bytes at a time: one getrandom call per 400
# ids instead of one each (a request id per request, a few ids per payout), same randomness.
_RANDOM_CHUNK = 4000
_random = bytearray()


def _forget_random() -> None:
    _random.clear()  # a forked child must not hand out its parent's next ids


os.register_at_fork(after_in_child=_forget_random)


def _random80() -> int:
    if not _random:
        _random.extend(os.urandom(_RANDOM_CHUNK))
    value = int.from_bytes(_random[-10:], "big")
    del _random[-10:]
    return value


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 chars of randomness (80 bits)."""
    return f"{prefix}_{_millis_part(time.time_ns() // 1_000_000)}{_b32_80(_random80())}"


def floor_id(prefix: str, at_s: float) -> str:
    """The smallest id `new_id(prefix)` can give at or after unix time `at_s`: ids compare
    like their creation times, so a time range of ids is a primary-key range."""
    return f"{prefix}_{_b32(int(at_s * 1000), 10)}{'0' * 16}"


def new_secret() -> str:
    return os.urandom(24).hex()


def new_nonce() -> str:
    return os.urandom(12).hex()
