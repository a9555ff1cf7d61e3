"""Per-channel TPS quotas (SPEC 8), shared by every dispatcher through one Redis token bucket.

Excess waits in the queue: the merchant is never refused for a bank's capacity. The bucket's
key carries the channel's hash tag (one Redis Cluster slot). If Redis is unreachable the
dispatcher sends nothing (fail closed): a bank over its TPS answers busy, and
nothing is lost by waiting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

log = logging.getLogger("paygate.quota")

_SCRIPT = (Path(__file__).parent / "quota.lua").read_text()
NO_REDIS_WAIT_MS = 500


def quota_key(channel_id: str) -> str:
    """The channel's bucket: its own hash tag, so each channel's bucket is one slot."""
    return f"pg:{{chan:{channel_id}}}:quota"


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    wait_ms: int  # until the next token, when fewer than wanted were granted


class ChannelQuota:
    def __init__(self, redis: aioredis.Redis | RedisCluster) -> None:
        self._script = redis.register_script(_SCRIPT)

    @staticmethod
    def burst_for(tps: int) -> int:
        """A fifth of a second's worth: smooth enough that the bank's own bucket never trips."""
        return max(1, tps // 5)

    async def take(self, channel_id: str, tps: int, wanted: int) -> Grant:
        if wanted <= 0:
            return Grant(0, 0)
        try:
            granted, wait_ms = await self._script(
                keys=[quota_key(channel_id)],
                args=[tps, self.burst_for(tps), wanted],
            )
        except (RedisError, OSError, RedisClusterException) as exc:
            log.warning("channel quota unavailable, holding submissions",
                        extra={"channel": channel_id, "error": str(exc)})  # fmt: skip
            return Grant(0, NO_REDIS_WAIT_MS)
        return Grant(int(granted), int(wait_ms))
