"""Owns every timer and background task of the simulator, so clean-up can cancel them all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("paygate.bank_sim")


class Timers:
    def __init__(self) -> None:
        self._handles: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._handles) + len(self._tasks)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run `fn` after `delay_s` wall seconds (ignored once closed)."""
        if self._closed:
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._handles.discard(handle)
            try:
                fn()
            except Exception:
                log.exception("bank simulator timer failed")

        handle = asyncio.get_running_loop().call_later(max(0.0, delay_s), fire)
        self._handles.add(handle)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` as an owned task (closed immediately once closed)."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bank simulator task failed", exc_info=task.exception())

    async def close(self) -> None:
        self._closed = True
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
