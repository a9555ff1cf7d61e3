"""Admission's pipelines on Redis Cluster: every command goes to the master of its key's slot,
the commands for one master as one batch on that master's RespPipe (risk/resp_pipe.py), the
masters side by side.

The slot map comes from CLUSTER SLOTS and is read again (at most every REFRESH_MIN_S) after
any sign that it is stale: a master that cannot be reached, or a reply that says the slot is
elsewhere or has no master (MOVED, ASK, CLUSTERDOWN, TRYAGAIN). Those commands are not sent
again (a master that went away may have run them): each gets its error, so only that master's
callers fail (the gateway answers 503) and the next batch goes where the cluster now says.
A master that could not be reached is not tried again for DOWN_S: its commands fail at once,
so a master whose host is gone (connect timeouts) does not hold up the batches that also
carry other masters' commands. Never to a replica.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError

from risk.resp_pipe import RespPipe, pack

SLOTS = 16384
Node = tuple[str, int]
# Replies that say the slot map is stale (or the slot has no master now): read it again.
_MAP_STALE = ("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
REFRESH_MIN_S = 0.1
DOWN_S = 0.25


class ClusterPipe:
    def __init__(
        self, seeds: Sequence[Node], auth: dict[str, Any], timeout_s: float, down_s: float = DOWN_S
    ) -> None:
        if not seeds:
            raise ValueError("a Redis Cluster needs at least one node to start from")
        self._seeds = list(seeds)
        self._auth = auth  # username / password for every node
        self._timeout_s = timeout_s
        self._down_s = down_s
        self._slots: list[Node | None] = [None] * SLOTS
        self._pipes: dict[Node, RespPipe] = {}
        self._stale = True
        self._refreshed_at = float("-inf")
        self._failed: set[Node] = set()  # not reached at the last try: asked for the map last
        self._down_until: dict[Node, float] = {}  # monotonic time: fail at once until then
        self._refreshing = asyncio.Lock()

    def _pipe(self, node: Node) -> RespPipe:
        pipe = self._pipes.get(node)
        if pipe is None:
            kwargs = {**self._auth, "host": node[0], "port": node[1]}
            pipe = self._pipes[node] = RespPipe(kwargs, self._timeout_s)
        return pipe

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers (the known masters and the
        seeds, those that failed lately last)."""
        async with self._refreshing:
            if not self._stale:
                return  # another batch read it while this one waited
            self._refreshed_at = time.monotonic()
            known = dict.fromkeys([n for n in self._slots if n is not None] + self._seeds)
            order = sorted(known, key=lambda n: n in self._failed)
            for node in order:
                try:
                    (reply,) = await self._pipe(node).run(pack(b"CLUSTER", b"SLOTS"), 1)
                except (OSError, TimeoutError):
                    self._failed.add(node)
                    continue
                if isinstance(reply, hiredis.ReplyError) or not reply:
                    continue  # not in cluster mode, or it knows no slots yet
                table: list[Node | None] = [None] * SLOTS
                for start, end, master, *_ in reply:
                    host = master[0].decode() or node[0]  # an empty host: the one we asked
                    table[int(start) : int(end) + 1] = [(host, int(master[1]))] * (
                        int(end) - int(start) + 1
                    )
                self._failed.discard(node)
                self._slots, self._stale = table, False
                return
            raise RedisConnectionError("no Redis Cluster node answered CLUSTER SLOTS")

    async def run(self, commands: Sequence[tuple[int, bytes]]) -> list[Any]:
        """Send each (slot, packed command) to its slot's master; the replies in order. A
        command whose master could not answer gets a `ConnectionError` in its place; error
        replies come back as `hiredis.ReplyError`, as from RespPipe."""
        now = time.monotonic()
        if self._stale and now - self._refreshed_at >= REFRESH_MIN_S:
            await self.refresh()
        out: list[Any] = [None] * len(commands)
        by_node: dict[Node, list[int]] = {}
        for i, (slot, _) in enumerate(commands):
            node = self._slots[slot]
            if node is None:
                out[i] = RedisConnectionError(f"no master serves slot {slot}")
                self._stale = True
            elif self._down_until.get(node, 0.0) > now:
                out[i] = RedisConnectionError(f"redis {node[0]}:{node[1]} is down")
                self._stale = True
            else:
                by_node.setdefault(node, []).append(i)

        async def on(node: Node, indexes: list[int]) -> None:
            packed = b"".join(commands[i][1] for i in indexes)
            try:
                replies = await self._pipe(node).run(packed, len(indexes))
            except (OSError, TimeoutError) as exc:
                self._stale = True
                self._failed.add(node)
                self._down_until[node] = time.monotonic() + self._down_s
                for i in indexes:
                    out[i] = RedisConnectionError(f"redis {node[0]}:{node[1]}: {exc!r}")
                return
            self._failed.discard(node)
            for i, reply in zip(indexes, replies, strict=True):
                if isinstance(reply, hiredis.ReplyError) and str(reply).startswith(_MAP_STALE):
                    self._stale = True
                out[i] = reply

        await asyncio.gather(*(on(node, indexes) for node, indexes in by_node.items()))
        return out

    async def aclose(self) -> None:
        pipes, self._pipes = self._pipes, {}
        for pipe in pipes.values():
            await pipe.aclose()
