"""Group commit (SPEC 13): gather concurrent requests and handle them in one transaction.

Natural batching: a flush starts as soon as one of `max_concurrent` slots is free and takes
whatever is queued, up to `max_items`; optionally it first waits `max_wait_s` for more (one
timer; not when enough are queued already).
At low load a request is handled alone with no added delay; under load batches grow by
themselves. Each item still gets its own result. If a whole batch fails (a bug, a lost
connection), its items are retried one by one so one bad item cannot sink the others — or,
with `retry_singly=False` (a batch that fails only as a whole, like a Redis pipeline), every
item gets the batch's exception. A handler may also answer an item with an exception (calls
that fail one by one, like Redis Cluster slots): that item's submitter gets it raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from gateway.metrics import Metrics
from protocol.errors import ServiceUnavailable

log = logging.getLogger("paygate.batching")

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


class GroupCommitter(Generic[I, R]):
    def __init__(
        self,
        name: str,
        handler: Callable[[Sequence[I]], Awaitable[Sequence[R | Exception]]],
        *,
        max_items: int,
        max_wait_s: float = 0.0,
        max_concurrent: int = 2,
        max_queue: int = 50_000,
        retry_singly: bool = True,
        direct_when_idle: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        assert max_items >= 1 and max_concurrent >= 1
        self.name = name
        self._handler = handler
        self._max_items = max_items
        self._max_wait_s = max_wait_s
        self._retry_singly = retry_singly
        self._direct_when_idle = direct_when_idle
        self._metrics = metrics
        self._busy = 0  # batches in flight
        self._slots = asyncio.Semaphore(max_concurrent)
        self._queue: asyncio.Queue[tuple[I, asyncio.Future[R]]] = asyncio.Queue(max_queue)
        self._loop_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.items = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()  # kept: get_running_loop costs a getpid call
        self._loop_task = asyncio.create_task(self._run(), name=f"group-commit-{self.name}")

    async def stop(self) -> None:
        """Finish the batches in flight; refuse what is still queued."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(ServiceUnavailable("gateway is shutting down"))

    async def submit(self, item: I) -> R:
        if self._loop_task is None or self._loop is None:
            raise ServiceUnavailable("gateway is not accepting work")
        if self._direct_when_idle and not self._busy and self._queue.empty():
            return await self._alone(item)
        fut: asyncio.Future[R] = self._loop.create_future()
        try:
            self._queue.put_nowait((item, fut))  # the common case: no await, no task switch
        except asyncio.QueueFull:
            await self._queue.put((item, fut))
        return await fut

    async def _alone(self, item: I) -> R:
        """Nothing in flight, nothing queued: the item is a batch of its own, handled in the
        submitter's task (no queue, no flush task: what a batch at low load costs)."""
        await self._slots.acquire()  # free: nothing is in flight
        self._busy += 1
        try:
            self.batches += 1
            self.items += 1
            if self._metrics is not None:
                self._metrics.batch(self.name, 1)
            (result,) = await self._handler([item])
        finally:
            self._busy -= 1
            self._slots.release()
        if isinstance(result, Exception):
            raise result
        return result

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            try:
                await self._slots.acquire()
                self._busy += 1
                if self._max_wait_s > 0 and self._queue.qsize() < self._max_items - 1:
                    # One timer for the whole wait, however many items come meanwhile (a
                    # `wait_for` on the queue per item cost a task each, and a cancellation).
                    await asyncio.sleep(self._max_wait_s)
            except asyncio.CancelledError:  # stopped: `stop` refuses the queued ones
                _, fut = first
                if not fut.done():
                    fut.set_exception(ServiceUnavailable("gateway is shutting down"))
                raise
            while len(batch) < self._max_items and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            self.batches += 1
            self.items += len(batch)
            if self._metrics is not None:
                self._metrics.batch(self.name, len(batch))
            try:
                results = await self._handler([item for item, _ in batch])
                assert len(results) == len(batch), "handler must answer every item"
                for (_, fut), result in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, Exception):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
                return
            except Exception as exc:
                if len(batch) == 1 or not self._retry_singly:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    return
                log.warning(
                    "batch failed, retrying its items one by one",
                    extra={"committer": self.name, "size": len(batch), "error": repr(exc)},
                )
            for item, fut in batch:
                try:
                    (result,) = await self._handler([item])
                    if isinstance(result, Exception):
                        raise result
                    if not fut.done():
                        fut.set_result(result)
                except Exception as exc:
                    if not fut.done():
                        fut.set_exception(exc)
        finally:
            self._busy -= 1
            self._slots.release()
