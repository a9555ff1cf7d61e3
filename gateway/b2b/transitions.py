"""Apply B2B events (bank notification, failure, clearing, reversal) exactly once.

One transaction per batch: lock the B2B rows (id order), then the merchants' balance rows
(merchant order), step each word through the transition table, record the ledger move it
names and an outbox event; a word the table refuses (duplicate, late, out of order) changes
nothing. Clearing repays the advance outstanding at that moment, read under the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.b2b import model
from gateway.b2b.clearing_time import expected_clear_at
from gateway.b2b.state import B2BEvent, B2BStatus, b2b_transition
from gateway.ledger import journal, moves
from gateway.outbox import OutboxEvent, insert_events


@dataclass(frozen=True, slots=True)
class B2BWord:
    b2b_id: str
    event: B2BEvent
    bank_ref: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True, slots=True)
class B2BApplied:
    b2b_id: str
    applied: bool
    status: str | None  # None: no such payment


async def apply_b2b_events(
    conn: asyncpg.Connection,
    words: Sequence[B2BWord],
    sim_now: datetime,
    realtime_clear_delay_s: float,
) -> list[B2BApplied]:
    async with conn.transaction():
        ids = sorted({w.b2b_id for w in words})
        rows = {
            r["id"]: dict(r)
            for r in await conn.fetch(
                f"SELECT {model.COLUMNS} FROM b2b_payments WHERE id = ANY($1::text[])"
                " ORDER BY id FOR UPDATE",
                ids,
            )
        }
        merchant_ids = sorted({r["merchant_id"] for r in rows.values()})
        advance_used = {
            r["merchant_id"]: r["advance_used_fen"]
            for r in await conn.fetch(
                "SELECT merchant_id, advance_used_fen FROM merchant_balances"
                " WHERE merchant_id = ANY($1::text[]) ORDER BY merchant_id FOR UPDATE",
                merchant_ids,
            )
        }
        original = {i: (r["status"], r["version"]) for i, r in rows.items()}
        now = datetime.now(UTC)
        results: list[B2BApplied] = []
        ledger: list[moves.Move] = []
        outbox: list[OutboxEvent] = []
        for w in words:
            row = rows.get(w.b2b_id)
            if row is None:
                results.append(B2BApplied(w.b2b_id, False, None))
                continue
            new = b2b_transition(B2BStatus(row["status"]), w.event)
            if new is None:
                results.append(B2BApplied(w.b2b_id, False, row["status"]))
                continue
            m, amount = row["merchant_id"], row["amount_fen"]
            if w.event is B2BEvent.NOTIFY:
                row["notified_at"] = sim_now
                row["expected_clear_at"] = expected_clear_at(
                    sim_now, row["clearing"], row["clearing_cutoff"], realtime_clear_delay_s
                )
                row["bank_ref"] = w.bank_ref or row["bank_ref"]
                ledger.append(moves.b2b_notified(m, row["id"], amount))
            elif w.event is B2BEvent.CLEAR:
                ledger.append(moves.b2b_cleared(m, row["id"], amount, advance_used[m],
                                                row["payer_bank"]))  # fmt: skip
                advance_used[m] -= min(amount, advance_used[m])
                row["cleared_at"] = sim_now
            elif w.event is B2BEvent.REVERSE:
                ledger.append(moves.b2b_reversed(m, row["id"], amount))
                row["failure_code"] = w.failure_code or "clearing_reversed"
                row["failure_message"] = w.failure_message or "the bank reversed the payment"
            else:
                row["failure_code"] = w.failure_code or "b2b_failed"
                row["failure_message"] = w.failure_message or ""
            row["status"] = new.value
            row["version"] += 1
            row["updated_at"] = now
            outbox.append(OutboxEvent(m, f"b2b.{new.value}", row["id"], row["version"],
                                      model.public(row)))  # fmt: skip
            results.append(B2BApplied(w.b2b_id, True, new.value))
        changed = [rows[i] for i in ids if i in rows and rows[i]["version"] != original[i][1]]
        if changed:
            await _update(conn, changed, original, now)
            await journal.record(conn, ledger)
            await insert_events(conn, outbox)
        return results


async def _update(
    conn: asyncpg.Connection,
    changed: list[dict[str, Any]],
    original: dict[str, tuple[str, int]],
    now: datetime,
) -> None:
    def col(name: str) -> list[Any]:
        return [r[name] for r in changed]

    updated = await conn.fetchval(
        """WITH u AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[],
                   $6::text[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[],
                   $10::text[], $11::text[])
               AS t (id, from_status, from_version, status, version, bank_ref, notified_at,
                     expected_clear_at, cleared_at, failure_code, failure_message)),
           done AS (
               UPDATE b2b_payments b SET status = u.status, version = u.version,
                   bank_ref = u.bank_ref, notified_at = u.notified_at,
                   expected_clear_at = u.expected_clear_at, cleared_at = u.cleared_at,
                   failure_code = u.failure_code, failure_message = u.failure_message,
                   updated_at = $12, next_check_at = NULL
               FROM u WHERE b.id = u.id AND b.id = ANY($1::text[]) AND b.status = u.from_status
                   AND b.version = u.from_version
               RETURNING 1)
           SELECT count(*) FROM done""",
        col("id"),
        [original[r["id"]][0] for r in changed],
        [original[r["id"]][1] for r in changed],
        col("status"),
        col("version"),
        col("bank_ref"),
        col("notified_at"),
        col("expected_clear_at"),
        col("cleared_at"),
        col("failure_code"),
        col("failure_message"),
        now,
    )
    assert updated == len(changed), f"b2b update guard missed: {updated}/{len(changed)}"
