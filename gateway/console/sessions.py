"""Console sessions and login throttling, in Redis: a session expires after its idle time
(every request pushes the expiry on), and 5 failed logins for one name in a minute lock that
name for a minute. Only a hash of the session token is stored; the token lives in the cookie."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from gateway.operators.repo import Operator

FAILURES_ALLOWED: Final = 5
FAILURE_WINDOW_S: Final = 60
LOCK_S: Final = 60


@dataclass(frozen=True, slots=True)
class Session:
    operator_id: str
    name: str
    role: str
    csrf: str


def key_prefix(database_url: str) -> str:
    """The console's Redis keys, per database: systems sharing one Redis stay apart. One
    hash tag for them all: on Redis Cluster they share a slot, so the transactions below (a
    failure count and its lock, the sampler's list) run on one node."""
    return f"pg:{{console:{hashlib.sha256(database_url.encode()).hexdigest()[:12]}}}:"


class SessionStore:
    def __init__(self, redis: aioredis.Redis | RedisCluster, prefix: str, idle_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._idle_ms = int(idle_s * 1000)

    def _key(self, token: str) -> str:
        return f"{self._prefix}session:{hashlib.sha256(token.encode()).hexdigest()}"

    async def open(self, operator: Operator) -> tuple[str, Session]:
        """A new session: (the cookie's token, the session with its CSRF token)."""
        token = secrets.token_urlsafe(32)
        session = Session(operator.id, operator.name, operator.role, secrets.token_urlsafe(32))
        key = self._key(token)
        fields = ["operator_id", session.operator_id, "name", session.name,
                  "role", session.role, "csrf", session.csrf]  # fmt: skip
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, items=fields)
            pipe.pexpire(key, self._idle_ms)
            await pipe.execute()
        return token, session

    async def find(self, token: str) -> Session | None:
        """The live session for this token (its idle expiry pushed on), or None."""
        key = self._key(token)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.pexpire(key, self._idle_ms)
            fields, _ = await pipe.execute()
        if not fields:
            return None
        f = {k.decode(): v.decode() for k, v in fields.items()}
        return Session(f["operator_id"], f["name"], f["role"], f["csrf"])

    async def close(self, token: str) -> None:
        await self._redis.delete(self._key(token))


class LoginThrottle:
    def __init__(self, redis: aioredis.Redis | RedisCluster, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def locked_for_s(self, name: str) -> int:
        """Seconds this name stays locked (0: not locked)."""
        ttl = await self._redis.ttl(f"{self._prefix}lock:{name}")
        return max(int(ttl), 0)

    async def failed(self, name: str) -> bool:
        """Count a failure; True when it locks the name."""
        key = f"{self._prefix}fails:{name}"
        # The window starts at the first failure: SET NX EX makes the key with its expiry only
        # when missing, INCR keeps the expiry (EXPIRE's NX flag needs Redis 7; the embedded
        # server is older).
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=FAILURE_WINDOW_S, nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        if int(count) < FAILURES_ALLOWED:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._prefix}lock:{name}", b"1", ex=LOCK_S)
            pipe.delete(key)
            await pipe.execute()
        return True

    async def succeeded(self, name: str) -> None:
        await self._redis.delete(f"{self._prefix}fails:{name}")
