"""The transactional outbox: events written in the same transaction as the change they report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.notifications.event_types import EVENT_TYPES
from gateway.storage.batch_write import BatchWrite
from protocol.ids import new_id


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    merchant_id: str
    type: str  # e.g. payout.succeeded
    object_id: str
    sequence: int  # the object's version after the change
    data: dict[str, Any]


async def insert_events(conn: asyncpg.Connection, events: Sequence[OutboxEvent]) -> None:
    """Record `events` on their own statement (see `add_events`)."""
    w = BatchWrite()
    if add_events(w, events):
        counts = await w.run(conn)
        assert counts["outbox"] == len(events), f"outbox wrote {counts['outbox']}/{len(events)}"


def add_events(w: BatchWrite, events: Sequence[OutboxEvent]) -> int:
    """Add `events` to `w` as the part named `outbox` (counted); returns how many rows it
    must write. Every event is recorded; those the merchant chose (`notify_events`) are
    pending delivery — and queued for it (`notification_queue`) — the others `skipped`,
    decided in the same statement from the merchant's row."""
    if not events:
        return 0
    for e in events:
        assert e.type in EVENT_TYPES, f"{e.object_id}: unknown event type {e.type}"
    # The join cannot drop an event (its object's merchant exists); callers check the count.
    w.add("outbox", f"""
        INSERT INTO outbox_events (id, merchant_id, type, object_id, sequence, data,
                                   delivery_status)
        SELECT e.id, e.merchant_id, e.type, e.object_id, e.sequence, e.data,
               CASE WHEN e.type = ANY (m.notify_events) OR '*' = ANY (m.notify_events)
                    THEN 'pending' ELSE 'skipped' END
        FROM unnest({w.arg([new_id("evt") for _ in events], "text[]")},
                    {w.arg([e.merchant_id for e in events], "text[]")},
                    {w.arg([e.type for e in events], "text[]")},
                    {w.arg([e.object_id for e in events], "text[]")},
                    {w.arg([e.sequence for e in events], "int[]")},
                    {w.arg([e.data for e in events], "jsonb[]")})
             AS e (id, merchant_id, type, object_id, sequence, data)
        JOIN merchants m ON m.id = e.merchant_id
        RETURNING id, merchant_id, object_id, sequence, delivery_status
        """, counted=True)  # fmt: skip
    w.add(
        "notify_queue",
        """
        INSERT INTO notification_queue (event_id, merchant_id, object_id, sequence)
        SELECT id, merchant_id, object_id, sequence FROM outbox
        WHERE delivery_status = 'pending'
        RETURNING 1""",
    )
    return len(events)
