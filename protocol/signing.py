"""The `paygate-hmac-v1` scheme (SPEC 11): one scheme for merchants, notifications and banks.

canonical = timestamp \\n nonce \\n METHOD \\n path_with_query \\n hex(sha256(body))
signature = "v1=" + hex(HMAC-SHA256(secret, canonical))
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from protocol.ids import new_nonce

SCHEME = "paygate-hmac-v1"
H_KEY = "X-Paygate-Key"
H_TIMESTAMP = "X-Paygate-Timestamp"
H_NONCE = "X-Paygate-Nonce"
H_SIGNATURE = "X-Paygate-Signature"
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
SIGNATURE_RE = re.compile(r"^v1=[0-9a-f]{64}$")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(timestamp: str, nonce: str, method: str, path_with_query: str, body: bytes) -> bytes:
    return "\n".join(
        (timestamp, nonce, method.upper(), path_with_query, body_digest(body))
    ).encode()


def sign(
    secret: str, timestamp: str, nonce: str, method: str, path_with_query: str, body: bytes
) -> str:
    # hmac.digest: OpenSSL's one-shot HMAC, without the Python HMAC object of hmac.new.
    message = canonical(timestamp, nonce, method, path_with_query, body)
    return "v1=" + hmac.digest(secret.encode(), message, "sha256").hex()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    key: str
    timestamp: str
    nonce: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            H_KEY: self.key,
            H_TIMESTAMP: self.timestamp,
            H_NONCE: self.nonce,
            H_SIGNATURE: self.signature,
        }


def sign_request(
    key: str,
    secret: str,
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers for one signed request (what every sender in Paygate calls)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    n = nonce or new_nonce()
    sig = sign(secret, ts, n, method, path_with_query, body)
    return SignedHeaders(key, ts, n, sig).as_dict()
