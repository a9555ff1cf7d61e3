"""Per-merchant admission: replay-nonce check and GCRA rate limit in one Redis round trip."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis

# One request is a million micro-requests (see admission.lua): integer math at µs resolution.
UREQ_PER_REQUEST = 1_000_000
# Keeps burst * 1e6 and the script's elapsed_us * rps well inside a double's 2^53.
MAX_RPS = 1_000_000_000
MAX_BURST = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Admission:
    replayed: bool
    allowed: bool
    limit: int  # burst (X-RateLimit-Limit)
    remaining: int  # whole requests still admissible now (X-RateLimit-Remaining)
    reset_s: int  # seconds until the bucket is full again (X-RateLimit-Reset), ceil
    retry_after_s: int  # refused by the limit: seconds until one request fits, ceil, >= 1; else 0

    @property
    def rate_limited(self) -> bool:
        return not self.allowed and not self.replayed


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def admission_from_backlog(
    replayed: bool, allowed: bool, backlog_ureq: int, rps: int, burst: int
) -> Admission:
    """The caller-facing figures for the limiter state the script left (after its decision)."""
    capacity_ureq = burst * UREQ_PER_REQUEST
    drain_ureq_per_s = rps * UREQ_PER_REQUEST
    assert 0 <= backlog_ureq <= capacity_ureq, (backlog_ureq, capacity_ureq)
    retry_after_s = 0
    if not allowed and not replayed:
        short_ureq = backlog_ureq + UREQ_PER_REQUEST - capacity_ureq
        retry_after_s = max(1, _ceil_div(short_ureq, drain_ureq_per_s))
    return Admission(
        replayed=replayed,
        allowed=allowed,
        limit=burst,
        remaining=(capacity_ureq - backlog_ureq) // UREQ_PER_REQUEST,
        reset_s=_ceil_div(backlog_ureq, drain_ureq_per_s),
        retry_after_s=retry_after_s,
    )


def headers(a: Admission) -> dict[str, str]:
    """Rate-limit headers for a merchant response; `Retry-After` only on a rate refusal."""
    out = {
        "X-RateLimit-Limit": str(a.limit),
        "X-RateLimit-Remaining": str(a.remaining),
        "X-RateLimit-Reset": str(a.reset_s),
    }
    if a.rate_limited:
        out["Retry-After"] = str(a.retry_after_s)
    return out


class MerchantAdmission:
    """Admits merchant requests; Redis errors (RedisError, OSError) reach the caller, which
    chooses between failing closed (503) and open."""

    def __init__(self, redis: aioredis.Redis, window_s: int) -> None:
        if window_s < 1:
            raise ValueError(f"nonce window must be at least 1 s, got {window_s}")
        self._window_s = window_s
        self.fail_open_admits = 0  # requests let through while Redis was down (fail-open mode)
        source = resources.files("risk").joinpath("admission.lua").read_text(encoding="utf-8")
        # EVALSHA on every call; redis-py loads the script again on NOSCRIPT.
        self._script = redis.register_script(source)

    async def admit(self, merchant_id: str, nonce: str, rps: int, burst: int) -> Admission:
        if not merchant_id or "{" in merchant_id or "}" in merchant_id:
            raise ValueError(f"merchant id unusable in a hash tag: {merchant_id!r}")
        if not 1 <= rps <= MAX_RPS or not 1 <= burst <= MAX_BURST:
            raise ValueError(f"rate limit out of range: rps={rps} burst={burst}")
        # The hash tag keeps one merchant's keys in one Redis Cluster slot.
        keys = [f"pg:{{{merchant_id}}}:rl", f"pg:{{{merchant_id}}}:nonce:{nonce}"]
        reply = await self._script(keys=keys, args=[self._window_s, rps, burst])
        replayed, allowed, backlog_ureq = (int(x) for x in reply)
        return admission_from_backlog(bool(replayed), bool(allowed), backlog_ureq, rps, burst)
