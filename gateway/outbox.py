"""The transactional outbox: events written in the same transaction as the change they report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.ids import new_id
from gateway.notifications.event_types import EVENT_TYPES


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    merchant_id: str
    type: str  # e.g. payout.succeeded
    object_id: str
    sequence: int  # the object's version after the change
    data: dict[str, Any]


async def insert_events(conn: asyncpg.Connection, events: Sequence[OutboxEvent]) -> None:
    """Record every event; those the merchant chose (`notify_events`) are pending delivery,
    the others `skipped`, decided in the same statement from the merchant's row."""
    if not events:
        return
    for e in events:
        assert e.type in EVENT_TYPES, f"{e.object_id}: unknown event type {e.type}"
    status = await conn.execute(
        """INSERT INTO outbox_events (id, merchant_id, type, object_id, sequence, data,
                                      delivery_status)
           SELECT e.id, e.merchant_id, e.type, e.object_id, e.sequence, e.data,
                  CASE WHEN e.type = ANY (m.notify_events) OR '*' = ANY (m.notify_events)
                       THEN 'pending' ELSE 'skipped' END
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::jsonb[])
                AS e (id, merchant_id, type, object_id, sequence, data)
           JOIN merchants m ON m.id = e.merchant_id""",
        [new_id("evt") for _ in events],
        [e.merchant_id for e in events],
        [e.type for e in events],
        [e.object_id for e in events],
        [e.sequence for e in events],
        [e.data for e in events],
    )
    # The join cannot drop an event (its object's merchant exists): refuse to commit if it did.
    assert status == f"INSERT 0 {len(events)}", f"outbox insert wrote {status} of {len(events)}"
