"""Per-merchant admission: replay-nonce check and GCRA rate limit in one Redis round trip.

Redis keeps nonces in memory only, so the script also refuses a request signed before this
Redis started (`stale`) or in the second it started (`in_boot_second`: whole seconds cannot
tell before from after): a restart cannot reopen the replay window (SPEC 14).

`admit_many` sends many requests' checks as one pipeline of script calls (risk/resp_pipe.py):
each call is still atomic on its own (the meaning of one check does not change), but a burst
of concurrent requests costs one round trip instead of one each. The gateway gathers them
with its GroupCommitter (gateway/api/services.py).

On Redis Cluster (a `RedisCluster` client) each call names only one merchant's keys, all
with the merchant's hash tag, so it runs on that merchant's slot: `admit_each` sends each
master its calls as one pipeline (risk/cluster_pipe.py), the masters side by side, and a
master that is down fails only its own merchants' checks. The script also refuses requests
signed before a replica took over (admission.lua): a failover can lose the last nonces its
master wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from risk.cluster_pipe import ClusterPipe
from risk.resp_pipe import RespPipe, pack

# One request is a million micro-requests (see admission.lua): integer math at µs resolution.
UREQ_PER_REQUEST = 1_000_000
# Keeps burst * 1e6 and the script's elapsed_us * rps well inside a double's 2^53.
MAX_RPS = 1_000_000_000
MAX_BURST = 1_000_000_000
# What an admission check raises when Redis cannot answer: the gateway fails closed (503).
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError, RedisClusterException)


@dataclass(frozen=True, slots=True)
class Admission:
    replayed: bool
    allowed: bool
    limit: int  # burst (X-RateLimit-Limit)
    remaining: int  # whole requests still admissible now (X-RateLimit-Remaining)
    reset_s: int  # seconds until the bucket is full again (X-RateLimit-Reset), ceil
    retry_after_s: int  # refused by the limit: seconds until one request fits, ceil, >= 1; else 0
    stale: bool = False  # signed before this Redis started: its nonce may have been used before
    in_boot_second: bool = False  # signed in the second it started: maybe before, maybe after

    @property
    def rate_limited(self) -> bool:
        return not (self.allowed or self.replayed or self.stale or self.in_boot_second)


def admission_outcome(a: Admission) -> str:
    """The verdict in one word (the `outcome` label of `paygate_admissions_total`), in the
    order the gateway answers them (gateway/api/auth.py)."""
    if a.stale:
        return "stale"
    if a.in_boot_second:
        return "boot_second"
    if a.replayed:
        return "replayed"
    return "rate_limited" if a.rate_limited else "admitted"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def admission_from_backlog(
    replayed: bool,
    allowed: bool,
    backlog_ureq: int,
    rps: int,
    burst: int,
    stale: bool = False,
    in_boot_second: bool = False,
) -> Admission:
    """The caller-facing figures for the limiter state the script left (after its decision)."""
    capacity_ureq = burst * UREQ_PER_REQUEST
    drain_ureq_per_s = rps * UREQ_PER_REQUEST
    assert 0 <= backlog_ureq <= capacity_ureq, (backlog_ureq, capacity_ureq)
    retry_after_s = 0
    if not (allowed or replayed or stale or in_boot_second):
        short_ureq = backlog_ureq + UREQ_PER_REQUEST - capacity_ureq
        retry_after_s = max(1, _ceil_div(short_ureq, drain_ureq_per_s))
    return Admission(
        replayed=replayed,
        allowed=allowed,
        limit=burst,
        remaining=(capacity_ureq - backlog_ureq) // UREQ_PER_REQUEST,
        reset_s=_ceil_div(backlog_ureq, drain_ureq_per_s),
        retry_after_s=retry_after_s,
        stale=stale,
        in_boot_second=in_boot_second,
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


@dataclass(frozen=True, slots=True)
class AdmissionCheck:
    merchant_id: str
    nonce: str
    rps: int
    burst: int
    signed_at_s: int  # the signature's timestamp (unix s)


class MerchantAdmission:
    """Admits merchant requests; Redis errors (RedisError, OSError) reach the caller, which
    chooses between failing closed (503) and open."""

    def __init__(self, redis: aioredis.Redis | RedisCluster, window_s: int) -> None:
        if window_s < 1:
            raise ValueError(f"nonce window must be at least 1 s, got {window_s}")
        self._window_s = window_s
        self._redis = redis
        self._source = resources.files("risk").joinpath("admission.lua").read_text(encoding="utf-8")
        # EVALSHA on every call; redis-py loads the script again on NOSCRIPT.
        self._script = redis.register_script(self._source)
        self._sha = self._script.sha.encode()
        self._cluster = isinstance(redis, RedisCluster)
        self._pipe: RespPipe | None = None
        self._cluster_pipe: ClusterPipe | None = None
        if isinstance(redis, RedisCluster):
            kw = redis.get_connection_kwargs()
            auth = {k: kw[k] for k in ("username", "password") if kw.get(k)}
            nodes = [*redis.startup_nodes, *redis.get_nodes()]  # the URL's, the known ones
            seeds = list(dict.fromkeys((node.host, int(node.port)) for node in nodes))
            self._cluster_pipe = ClusterPipe(seeds, auth, float(kw.get("socket_timeout") or 1.0))
        else:
            kwargs = dict(redis.connection_pool.connection_kwargs)
            self._pipe = RespPipe(kwargs, timeout_s=float(kwargs.get("socket_timeout") or 1.0))

    async def aclose(self) -> None:
        if self._pipe is not None:
            await self._pipe.aclose()
        if self._cluster_pipe is not None:
            await self._cluster_pipe.aclose()

    def _packed(self, c: AdmissionCheck, with_source: bool = False) -> bytes:
        """EVALSHA, or EVAL with the source (which also caches it on that server)."""
        keys, args = self._keys_args(c)
        head = (b"EVAL", self._source.encode()) if with_source else (b"EVALSHA", self._sha)
        return pack(*head, b"3", *[k.encode() for k in keys],
                    *[b"%d" % a for a in args])  # fmt: skip

    def _keys_args(self, c: AdmissionCheck) -> tuple[list[str], list[int]]:
        if not c.merchant_id or "{" in c.merchant_id or "}" in c.merchant_id:
            raise ValueError(f"merchant id unusable in a hash tag: {c.merchant_id!r}")
        if not 1 <= c.rps <= MAX_RPS or not 1 <= c.burst <= MAX_BURST:
            raise ValueError(f"rate limit out of range: rps={c.rps} burst={c.burst}")
        keys = admission_keys(c.merchant_id, c.nonce)
        args = [self._window_s, c.rps, c.burst, c.signed_at_s]
        return keys, [*args, 1] if self._cluster else args

    async def admit(
        self, merchant_id: str, nonce: str, rps: int, burst: int, signed_at_s: int
    ) -> Admission:
        check = AdmissionCheck(merchant_id, nonce, rps, burst, signed_at_s)
        keys, args = self._keys_args(check)
        return _admission(check, await self._script(keys=keys, args=args))

    async def admit_many(self, checks: Sequence[AdmissionCheck]) -> list[Admission]:
        """Every check in one pipeline (one round trip), each still one atomic script call.
        A Redis error fails them all (the caller chooses between closed and open)."""
        if self._pipe is None:
            out: list[Admission] = []
            for r in await self.admit_each(checks):
                if isinstance(r, Exception):
                    raise r
                out.append(r)
            return out
        packed = b"".join(self._packed(c) for c in checks)
        replies = await self._pipe.run(packed, len(checks))
        missing = [i for i, r in enumerate(replies) if _no_script(r)]
        if missing:  # Redis restarted or flushed its scripts: run again only what did not run
            await self._redis.script_load(self._source)
            again = b"".join(self._packed(checks[i]) for i in missing)
            for i, r in zip(missing, await self._pipe.run(again, len(missing)), strict=True):
                replies[i] = r
        for r in replies:
            if isinstance(r, hiredis.ReplyError):
                raise ResponseError(str(r))
        return [_admission(c, r) for c, r in zip(checks, replies, strict=True)]

    async def admit_each(self, checks: Sequence[AdmissionCheck]) -> list[Admission | Exception]:
        """Each check's verdict, or the error that stopped it. One server: `admit_many` (one
        pipeline, which fails as a whole). A cluster: the calls go side by side, each to its
        merchant's slot, and a slot that cannot answer fails only its own checks."""
        if self._cluster_pipe is None:
            return list(await self.admit_many(checks))
        # The slot of every key of a check is its merchant's (the hash tag).
        commands = [(key_slot(c.merchant_id.encode()), self._packed(c)) for c in checks]
        replies = await self._cluster_pipe.run(commands)
        missing = [i for i, r in enumerate(replies) if _no_script(r)]
        if missing:  # a master that has not run it yet (new, promoted, flushed): EVAL loads it
            again = [(commands[i][0], self._packed(checks[i], with_source=True)) for i in missing]
            for i, r in zip(missing, await self._cluster_pipe.run(again), strict=True):
                replies[i] = r
        out: list[Admission | Exception] = []
        for c, r in zip(checks, replies, strict=True):
            if isinstance(r, hiredis.ReplyError):
                out.append(ResponseError(str(r)))  # e.g. MOVED, CLUSTERDOWN: fails closed
            elif isinstance(r, Exception):
                out.append(r)
            else:
                out.append(_admission(c, r))
        return out


def admission_keys(merchant_id: str, nonce: str) -> list[str]:
    """KEYS of one admission.lua call: the limiter state, the nonce, the boot second. The hash
    tag keeps one merchant's keys in one Redis Cluster slot."""
    return [
        f"pg:{{{merchant_id}}}:rl",
        f"pg:{{{merchant_id}}}:nonce:{nonce}",
        boot_key(merchant_id),
    ]


def boot_key(merchant_id: str) -> str:
    """The unix second from which Redis holds every nonce of this merchant (admission.lua)."""
    return f"pg:{{{merchant_id}}}:boot"


def _no_script(reply: object) -> bool:
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")


def _admission(check: AdmissionCheck, reply: object) -> Admission:
    replayed, allowed, backlog_ureq, signed = map(int, reply)  # type: ignore[call-overload]
    return admission_from_backlog(bool(replayed), bool(allowed), backlog_ureq, check.rps,
                                  check.burst, stale=signed == 1,
                                  in_boot_second=signed == 2)  # fmt: skip
