"""The transactional outbox: events written in the same transaction as the change they report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.ids import new_id


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    merchant_id: str
    type: str  # e.g. payout.succeeded
    object_id: str
    sequence: int  # the object's version after the change
    data: dict[str, Any]


async def insert_events(conn: asyncpg.Connection, events: Sequence[OutboxEvent]) -> None:
    if not events:
        return
    await conn.execute(
        """INSERT INTO outbox_events (id, merchant_id, type, object_id, sequence, data)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
                                $6::jsonb[])""",
        [new_id("evt") for _ in events],
        [e.merchant_id for e in events],
        [e.type for e in events],
        [e.object_id for e in events],
        [e.sequence for e in events],
        [e.data for e in events],
    )
