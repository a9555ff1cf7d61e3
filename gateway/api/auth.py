"""Authentication: merchant `paygate-hmac-v1` signatures, nonce replay guard, admin bearer."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from gateway.api.jsonio import read_body
from gateway.batching import GroupCommitter
from gateway.merchants.model import Merchant
from gateway.merchants.repo import MerchantCache
from protocol import signing
from protocol.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from risk import ratelimit
from risk.ratelimit import REDIS_UNAVAILABLE, Admission, AdmissionCheck

log = logging.getLogger("paygate.auth")

MERCHANT_KEY = web.RequestKey("merchant", Merchant)


def nonce_key(key: str, nonce: str) -> str:
    """A bank callback's nonce; the hash tag keeps one key id's nonces in one cluster slot."""
    return f"pg:{{{key}}}:nonce:{nonce}"


class NonceStore:
    """Remembers nonces for the signature window: a second use is a replay."""

    def __init__(
        self, redis: aioredis.Redis | RedisCluster, window_s: int, fail_open: bool
    ) -> None:
        self._redis = redis
        self._window_s = window_s
        self._fail_open = fail_open

    async def first_use(self, key: str, nonce: str) -> bool:
        try:
            stored = await self._redis.set(nonce_key(key, nonce), b"1", nx=True, ex=self._window_s)
        except REDIS_UNAVAILABLE as exc:
            if self._fail_open:
                log.warning("nonce store unavailable, failing open", extra={"error": str(exc)})
                return True
            log.error("nonce store unavailable, failing closed", extra={"error": repr(exc)})
            raise ServiceUnavailable(
                "rate limiter unavailable", code="rate_limiter_unavailable", retry_after_s=1
            ) from exc
        return bool(stored)


class SignedHeaders(NamedTuple):
    key: str
    timestamp: str
    nonce: str
    signature: str


def signed_headers(get: Callable[[str], str | None], window_s: int) -> SignedHeaders:
    """A signed request's four headers, each well formed, and its timestamp inside the window
    (`get` looks a header up by its name as the spec spells it)."""
    key = get(signing.H_KEY) or ""
    ts = get(signing.H_TIMESTAMP) or ""
    nonce = get(signing.H_NONCE) or ""
    signature = get(signing.H_SIGNATURE) or ""
    if not key or len(key) > 64:
        raise Unauthorized(f"missing or malformed {signing.H_KEY}")
    if not signing.TIMESTAMP_RE.match(ts):
        raise Unauthorized(f"missing or malformed {signing.H_TIMESTAMP}")
    if not signing.NONCE_RE.match(nonce):
        raise Unauthorized(f"missing or malformed {signing.H_NONCE}")
    if not signing.SIGNATURE_RE.match(signature):
        raise Unauthorized(f"missing or malformed {signing.H_SIGNATURE}")
    if abs(time.time() - int(ts)) > window_s:
        raise Unauthorized("timestamp outside the allowed window", code="stale_request")
    return SignedHeaders(key, ts, nonce, signature)


def check_signature(
    signed: SignedHeaders, secret: str | None, method: str, target: str, body: bytes
) -> None:
    """The signature over the request as sent (`target`: the path and query, not re-encoded);
    an unknown key (`secret` None) is checked against a dummy secret, so that timing does not
    reveal which keys exist."""
    expected = signing.sign(secret or "-", signed.timestamp, signed.nonce, method, target, body)
    if not signing.signature_matches(expected, signed.signature) or secret is None:
        raise Unauthorized("signature does not match")


async def verify_signature(
    request: web.Request,
    secret_for: Callable[[str], Awaitable[str | None]],
    window_s: int,
) -> tuple[str, str, int]:
    """Check a signed request's headers, window and signature; returns (key, nonce, timestamp).

    The nonce is not consumed here: the caller does that (with the rate limit, for merchants).
    """
    signed = signed_headers(request.headers.get, window_s)
    secret = await secret_for(signed.key)
    body = await read_body(request)
    check_signature(signed, secret, request.method, request.raw_path, body)
    return signed.key, signed.nonce, int(signed.timestamp)


async def verify_signed(
    request: web.Request,
    secret_for: Callable[[str], Awaitable[str | None]],
    nonces: NonceStore,
    window_s: int,
) -> str:
    """Signature, then the nonce (banks: no rate limit); returns the key it was signed with."""
    key, nonce, _ = await verify_signature(request, secret_for, window_s)
    if not await nonces.first_use(key, nonce):
        raise Unauthorized("nonce already used", code="replayed_request")
    return key


async def authenticate_merchant(
    request: web.Request,
    merchants: MerchantCache,
    admissions: GroupCommitter[AdmissionCheck, Admission],
    window_s: int,
    fail_open: bool,
    answer_headers: dict[str, str],
) -> Merchant:
    """`authenticate_signed` for an aiohttp request; the merchant is kept on the request."""
    merchant = await authenticate_signed(
        request.headers.get, request.method, request.raw_path, await read_body(request),
        merchants, admissions, window_s, fail_open, answer_headers,
    )  # fmt: skip
    request[MERCHANT_KEY] = merchant
    return merchant


async def authenticate_signed(
    header: Callable[[str], str | None],
    method: str,
    target: str,
    body: bytes,
    merchants: MerchantCache,
    admissions: GroupCommitter[AdmissionCheck, Admission],
    window_s: int,
    fail_open: bool,
    answer_headers: dict[str, str],
) -> Merchant:
    """Signature, then the nonce and the rate limit in one Redis script call (SPEC 8), sent
    in one pipeline with the concurrent requests' calls. The rate-limit headers go into
    `answer_headers`, for the answer whatever it is (a refusal here included). `header` looks
    a header up by its name as the spec spells it; `target` is the path and query as sent."""
    signed = signed_headers(header, window_s)
    merchant = await merchants.get(signed.key)
    check_signature(signed, None if merchant is None else merchant.secret, method, target, body)
    assert merchant is not None  # an unknown key fails its signature check
    try:
        verdict = await admissions.submit(AdmissionCheck(
            merchant.id, signed.nonce, merchant.rate_limit_rps, merchant.rate_limit_burst,
            int(signed.timestamp),
        ))  # fmt: skip
    except REDIS_UNAVAILABLE as exc:
        if not fail_open:
            log.error("rate limiter unavailable, failing closed", extra={"error": repr(exc)})
            raise ServiceUnavailable(
                "rate limiter unavailable", code="rate_limiter_unavailable", retry_after_s=1
            ) from exc
        log.warning("rate limiter unavailable, failing open", extra={"error": repr(exc)})
    else:
        answer_headers.update(ratelimit.headers(verdict))
        if verdict.stale:  # its nonce may have been used before Redis restarted
            raise Unauthorized(
                "signed before the nonce store last started; sign the request again",
                code="stale_request",
            )
        if verdict.in_boot_second:  # maybe signed before the restart, maybe after: not its fault
            raise ServiceUnavailable(
                "signed in the second the nonce store started; sign the request again",
                code="rate_limiter_unavailable",
                retry_after_s=1,
            )
        if verdict.replayed:
            raise Unauthorized("nonce already used", code="replayed_request")
        if verdict.rate_limited:
            raise RateLimited("rate limit exceeded", retry_after_s=verdict.retry_after_s)
    if not merchant.active:
        raise Forbidden("merchant is suspended", code="merchant_suspended")
    return merchant


def check_admin(request: web.Request, admin_token: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    ok = scheme.lower() == "bearer" and bool(admin_token)
    if not ok or not hmac.compare_digest(token.strip().encode(), admin_token.encode()):
        raise Unauthorized("missing or wrong admin token", code="unauthorized")


def current_merchant(request: web.Request) -> Merchant:
    merchant: Merchant = request[MERCHANT_KEY]
    return merchant
