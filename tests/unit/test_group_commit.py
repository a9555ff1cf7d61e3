"""GroupCommitter: an item that finds nothing in flight is handled at once, in its own task;
the rest are gathered into batches behind it, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.batching import GroupCommitter
from protocol.errors import ServiceUnavailable
from tests.harness import wait_until


async def test_an_idle_committer_handles_an_item_alone_and_gathers_the_ones_behind_it() -> None:
    release = asyncio.Event()
    batches: list[list[int]] = []

    async def handler(items: Sequence[int]) -> list[int | Exception]:
        batches.append(list(items))
        await release.wait()  # the first batch holds its slot until the others are queued
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(
        "t", handler, max_items=8, max_concurrent=1, direct_when_idle=True
    )
    await committer.start()
    try:
        tasks = [asyncio.create_task(committer.submit(i)) for i in range(6)]

        async def state() -> tuple[list[list[int]], int]:
            return [list(b) for b in batches], committer._queue.qsize()

        # Every submit has run: the first is in flight, alone; of the five behind it the
        # gathering loop holds one (waiting for the slot) and four are queued.
        await wait_until(state, lambda s: s == ([[0]], 4))
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await committer.stop()
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert results[0::2] == [0, 20, 40]
    assert [str(e) for e in results[1::2]] == ["odd 1", "odd 3", "odd 5"]
    assert (committer.batches, committer.items) == (2, 6)


async def test_without_direct_the_first_item_waits_for_the_gathering_loop() -> None:
    batches: list[list[int]] = []

    async def handler(items: Sequence[int]) -> list[int | Exception]:
        batches.append(list(items))
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter("t", handler, max_items=8)
    await committer.start()
    try:
        assert await asyncio.gather(*(committer.submit(i) for i in range(3))) == [0, 1, 2]
    finally:
        await committer.stop()
    assert batches == [[0, 1, 2]]


async def test_a_wait_gathers_what_comes_during_it_and_a_full_queue_does_not_wait() -> None:
    batches: list[list[int]] = []

    async def handler(items: Sequence[int]) -> list[int | Exception]:
        batches.append(list(items))
        return list(items)

    # A wait long enough to tell a batch that waited from one that did not.
    committer: GroupCommitter[int, int] = GroupCommitter("t", handler, max_items=3,
                                                         max_wait_s=0.5)  # fmt: skip
    await committer.start()
    try:
        first = asyncio.create_task(committer.submit(0))

        async def gathering() -> tuple[int, int]:
            return committer._busy, committer._queue.qsize()

        await wait_until(gathering, lambda s: s == (1, 0))  # the loop took 0 and waits
        second = asyncio.create_task(committer.submit(1))  # comes during the wait
        assert await asyncio.gather(first, second) == [0, 1]
        assert batches == [[0, 1]]
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Enough queued to fill a batch: flushed at once, the rest in the next batch.
        assert await asyncio.gather(*(committer.submit(i) for i in range(2, 6))) == [2, 3, 4, 5]
        assert batches == [[0, 1], [2, 3, 4], [5]]
        assert loop.time() - started < 0.5 + 0.4  # the first of the two did not wait
    finally:
        await committer.stop()


async def test_with_direct_an_idle_item_does_not_wait_and_the_ones_behind_it_gather() -> None:
    """Admission's shape: a wait, and direct when idle. Nothing in flight: the item goes at once
    (no wait at low load); items that find one in flight wait for company and go together."""
    release = asyncio.Event()
    batches: list[list[int]] = []

    async def handler(items: Sequence[int]) -> list[int | Exception]:
        batches.append(list(items))
        if items == [0]:
            await release.wait()  # the lone batch stays in flight while the others come
        return list(items)

    # A wait long enough to tell a batch that waited from one that did not.
    committer: GroupCommitter[int, int] = GroupCommitter(
        "t", handler, max_items=8, max_wait_s=0.5, direct_when_idle=True
    )
    await committer.start()
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        first = asyncio.create_task(committer.submit(0))

        async def state() -> tuple[list[list[int]], int]:
            return [list(b) for b in batches], committer._busy

        await wait_until(state, lambda s: s == ([[0]], 1))  # alone, at once, still in flight
        assert loop.time() - started < 0.4
        behind = [asyncio.create_task(committer.submit(i)) for i in (1, 2)]
        await wait_until(state, lambda s: s == ([[0]], 2))  # taken by the loop, waiting
        third = asyncio.create_task(committer.submit(3))  # comes during the wait
        release.set()
        assert await first == 0
        assert await asyncio.gather(*behind, third) == [1, 2, 3]
        assert batches == [[0], [1, 2, 3]]
        assert loop.time() - started >= 0.5  # the second batch waited
        again = loop.time()
        assert await committer.submit(4) == 4  # idle again: at once
        assert loop.time() - again < 0.4
        assert batches == [[0], [1, 2, 3], [4]]
    finally:
        await committer.stop()


async def test_stopping_during_the_wait_refuses_the_item_it_holds() -> None:
    async def handler(items: Sequence[int]) -> list[int | Exception]:
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter("t", handler, max_items=8,
                                                         max_wait_s=30.0)  # fmt: skip
    await committer.start()
    held = asyncio.create_task(committer.submit(0))

    async def gathering() -> tuple[int, int]:
        return committer._busy, committer._queue.qsize()

    await wait_until(gathering, lambda s: s == (1, 0))  # taken, waiting for company
    await committer.stop()
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(held, 5)  # refused, not left waiting forever
