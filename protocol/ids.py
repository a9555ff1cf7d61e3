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


# The random parts come from os.urandom, 6,400 bytes at a time (one getrandom call per 400
# ids instead of one each: a request id per request, a few ids per payout; ids are on the hot
# path), each byte turned into one character by its low 5 bits (`bytes.translate`, in C).
# 256 is a multiple of 32, so every character is uniform over the alphabet and independent of
# the others: 16 characters are 80 random bits, as an 80-bit number drawn and encoded 5 bits a
# character was before (issue 25: 0.37 µs an id against 1.29).
_CHARS = bytes(ord(_ALPHABET[b & 31]) for b in range(256))
_RANDOM_IDS = 400
_random: list[str] = []  # random parts drawn and not handed out yet


def _forget_random() -> None:
    _random.clear()  # a forked child must not hand out its parent's next ids


os.register_at_fork(after_in_child=_forget_random)


def _refill() -> str:
    """Draw the next 400 random parts and hand out one of them."""
    chars = os.urandom(16 * _RANDOM_IDS).translate(_CHARS).decode("ascii")
    _random.extend([chars[i : i + 16] for i in range(16, 16 * _RANDOM_IDS, 16)])
    return chars[:16]


@lru_cache(maxsize=8)
def _millis_part(millis: int) -> str:
    return _b32(millis, 10)


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 chars of randomness (80 bits)."""
    try:
        part = _random.pop()  # atomic: two threads never get the same part
    except IndexError:
        part = _refill()
    return f"{prefix}_{_millis_part(time.time_ns() // 1_000_000)}{part}"


def floor_id(prefix: str, at_s: float) -> str:
    """The smallest id `new_id(prefix)` can give at or after unix time `at_s`: ids compare
    like their creation times, so a time range of ids is a primary-key range."""
    return f"{prefix}_{_b32(int(at_s * 1000), 10)}{'0' * 16}"


def new_secret() -> str:
    return os.urandom(24).hex()


def new_nonce() -> str:
    return os.urandom(12).hex()
