"""Checks `paygate-hmac-v1` signatures on requests from the gateway (SPEC 11)."""

from __future__ import annotations

import time
from typing import Final, Protocol

from aiohttp import web

from channels.bank_sim.errors import SimError
from protocol import signing
from protocol.keys import GATEWAY_KEY_ID

SIGNATURE_WINDOW_S: Final = 300


class SeenNonces(Protocol):
    def first_use(self, key: str, nonce: str, timestamp_s: int) -> bool: ...


def _refuse(code: str, message: str) -> SimError:
    return SimError(401, code, message)


def verify_gateway_request(
    request: web.Request, body: bytes, secret: str, nonces: SeenNonces
) -> None:
    """Raise a 401 SimError unless the gateway signed this exact request with `secret`."""
    h = request.headers
    key = h.get(signing.H_KEY, "")
    ts = h.get(signing.H_TIMESTAMP, "")
    nonce = h.get(signing.H_NONCE, "")
    signature = h.get(signing.H_SIGNATURE, "")
    if key != GATEWAY_KEY_ID:
        raise _refuse("invalid_signature", f"{signing.H_KEY} must be {GATEWAY_KEY_ID!r}")
    if not signing.TIMESTAMP_RE.match(ts):
        raise _refuse("invalid_signature", f"missing or malformed {signing.H_TIMESTAMP}")
    if not signing.NONCE_RE.match(nonce):
        raise _refuse("invalid_signature", f"missing or malformed {signing.H_NONCE}")
    if not signing.SIGNATURE_RE.match(signature):
        raise _refuse("invalid_signature", f"missing or malformed {signing.H_SIGNATURE}")
    if abs(time.time() - int(ts)) > SIGNATURE_WINDOW_S:
        raise _refuse("stale_request", "timestamp outside the allowed window")
    # The path and query exactly as sent (not re-encoded), like the body.
    expected = signing.sign(secret, ts, nonce, request.method, request.raw_path, body)
    if not signing.signature_matches(expected, signature):
        raise _refuse("invalid_signature", "signature does not match")
    if not nonces.first_use(key, nonce, int(ts)):
        raise _refuse("replayed_request", "nonce already used")
