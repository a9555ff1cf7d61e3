"""Time-ordered prefixed ids (`po_…`, `evt_…`): sortable, so keyset pages follow creation."""

from __future__ import annotations

import base64
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


# Python's base32hex alphabet is in the same order as ours, so translating its output gives
# exactly `_b32` of the same bits, at C speed.
_FROM_BASE32HEX = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUV", _ALPHABET)


@lru_cache(maxsize=8)
def _millis_part(millis: int) -> str:
    return _b32(millis, 10)


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 chars of randomness (80 bits)."""
    rand = base64.b32hexencode(os.urandom(10)).decode().translate(_FROM_BASE32HEX)
    return f"{prefix}_{_millis_part(time.time_ns() // 1_000_000)}{rand}"


def floor_id(prefix: str, at_s: float) -> str:
    """The smallest id `new_id(prefix)` can give at or after unix time `at_s`: ids compare
    like their creation times, so a time range of ids is a primary-key range."""
    return f"{prefix}_{_b32(int(at_s * 1000), 10)}{'0' * 16}"


def new_secret() -> str:
    return os.urandom(24).hex()


def new_nonce() -> str:
    return os.urandom(12).hex()
