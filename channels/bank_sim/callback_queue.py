"""Gathers one bank's callbacks into batches (批量回盘): a batch is posted when it is full or
when its linger runs out, whichever comes first.

The items of one `add` (e.g. `returned` then the held `succeeded`) keep their order: they go
into one batch together, or, when they are more than a batch holds, into batches posted one
after the other. Items of different `add`s have no order between them, so their batches may be
posted side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

CallbackItem = dict[str, Any]
Batch = list[CallbackItem]
# Post these batches one after the other (each waits for the one before to be done).
PostInOrder = Callable[[list[Batch]], None]
# Call this after so many wall seconds (0: on the next loop iteration).
CallLater = Callable[[float, Callable[[], None]], None]


class CallbackQueue:
    def __init__(self, post_in_order: PostInOrder, call_later: CallLater) -> None:
        self._post_in_order = post_in_order
        self._call_later = call_later
        self._pending: Batch | None = None  # the batch still gathering, if any

    @property
    def pending(self) -> int:
        return len(self._pending) if self._pending is not None else 0

    def add(self, items: Sequence[CallbackItem], batch_max: int, linger_s: float) -> None:
        """Queue `items` (in this order) for a batch of at most `batch_max` items."""
        assert items and batch_max >= 1 and linger_s >= 0
        if len(items) >= batch_max:
            # Fills a batch by itself: posted now, never waiting, in as many batches as it takes.
            chunks = [list(items[i : i + batch_max]) for i in range(0, len(items), batch_max)]
            self._post_in_order(chunks)
            return
        pending = self._pending
        if pending is not None and len(pending) + len(items) > batch_max:
            self._flush()
            pending = None
        if pending is None:
            pending = self._pending = []
            # The timer belongs to this batch: if it was posted full meanwhile, it does nothing.
            self._call_later(linger_s, lambda: self._flush_if_pending(pending))
        pending.extend(items)
        if len(pending) >= batch_max:
            self._flush()

    def _flush_if_pending(self, batch: Batch) -> None:
        if self._pending is batch:
            self._flush()

    def _flush(self) -> None:
        batch, self._pending = self._pending, None
        if batch:
            self._post_in_order([batch])
