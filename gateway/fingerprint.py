"""The idempotency fingerprint of a request: same fields (any key order, null or omitted
optionals alike) -> same hash. A replay with another fingerprint is a 409."""

from __future__ import annotations

import hashlib

import msgspec


def request_fingerprint(request: msgspec.Struct) -> str:
    return hashlib.sha256(msgspec.json.encode(request, order="sorted")).hexdigest()
