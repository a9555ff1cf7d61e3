"""The `recon_exceptions` table: differences reconciliation leaves to an operator.

One exception per difference, named by (bank, kind, the bank's line or else the payout): a
re-run finds it instead of opening another, and one an operator resolved is not reopened
(the run still lists the difference, saying it was resolved). Resolving closes it with a note
and, where money must move, one journaled adjustment — in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from gateway.ledger import journal, moves
from gateway.storage.batch_write import BatchWrite
from protocol.errors import Conflict, NotFound

STATUSES = ("open", "resolved")
_FIELDS = (
    "id", "run_id", "bank_id", "date", "kind", "bank_ref", "payout_id", "gateway", "bank",
    "action", "status", "note", "adjustment_entry_id", "resolved_at", "created_at",
)  # fmt: skip
_PUBLIC = ", ".join(_FIELDS)


@dataclass(frozen=True, slots=True)
class Prior:
    id: str
    status: str  # open | resolved
    action: str = ""  # what the run that opened it said


@dataclass(frozen=True, slots=True)
class NewException:
    id: str
    kind: str
    bank_ref: str | None
    payout_id: str | None
    gateway: dict[str, Any] | None
    bank: dict[str, Any] | None
    action: str


def key(bank_ref: str | None, payout_id: str | None) -> str:
    name = bank_ref or payout_id
    assert name, "a difference is named by a bank line or a payout"
    return name


async def prior(
    conn: asyncpg.Connection, bank_id: str, wanted: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Prior]:
    """The exceptions already recorded for these (kind, key)s: the open one, else the latest."""
    if not wanted:
        return {}
    rows = await conn.fetch(
        """SELECT DISTINCT ON (e.kind, coalesce(e.bank_ref, e.payout_id))
                  e.kind, coalesce(e.bank_ref, e.payout_id) AS key, e.id, e.status, e.action
           FROM recon_exceptions e
           JOIN unnest($2::text[], $3::text[]) AS w (kind, key)
             ON e.kind = w.kind AND coalesce(e.bank_ref, e.payout_id) = w.key
           WHERE e.bank_id = $1
           ORDER BY e.kind, coalesce(e.bank_ref, e.payout_id), (e.status = 'open') DESC,
                    e.id DESC""",
        bank_id,
        [k for k, _ in wanted],
        [name for _, name in wanted],
    )
    return {(r["kind"], r["key"]): Prior(r["id"], r["status"], r["action"]) for r in rows}


def add_new(
    w: BatchWrite, run_part: str, run_id: str, bank_id: str, day: date,
    new: Sequence[NewException],
) -> None:  # fmt: skip
    """Open `new` exceptions, in the statement that records their run (the part `run_part`,
    which returns a row only when the run was recorded). A concurrent run that opened the
    same one first wins (the open-key unique index)."""
    if not new:
        return
    w.add("exceptions", f"""
        INSERT INTO recon_exceptions (id, run_id, bank_id, date, kind, bank_ref, payout_id,
                                      gateway, bank, action)
        SELECT n.id, {w.arg(run_id, "text")}, {w.arg(bank_id, "text")}, {w.arg(day, "date")},
               n.kind, n.bank_ref, n.payout_id, n.gateway, n.bank, n.action
        FROM unnest({w.arg([n.id for n in new], "text[]")},
                    {w.arg([n.kind for n in new], "text[]")},
                    {w.arg([n.bank_ref for n in new], "text[]")},
                    {w.arg([n.payout_id for n in new], "text[]")},
                    {w.arg([n.gateway for n in new], "jsonb[]")},
                    {w.arg([n.bank for n in new], "jsonb[]")},
                    {w.arg([n.action for n in new], "text[]")})
             AS n (id, kind, bank_ref, payout_id, gateway, bank, action)
        WHERE EXISTS (SELECT 1 FROM {run_part})
        ON CONFLICT DO NOTHING
        RETURNING 1""", counted=True)  # fmt: skip


def public(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in _FIELDS}


async def list_page(
    pool: asyncpg.Pool, status: str | None, bank_id: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""SELECT {_PUBLIC} FROM recon_exceptions
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR bank_id = $2)
              AND ($3::text IS NULL OR id > $3)
            ORDER BY id LIMIT $4""",
        status,
        bank_id,
        after,
        limit,
    )
    return [public(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Adjustment:
    merchant_id: str
    amount_fen: int  # positive credits the merchant's available, negative debits it


async def resolve(
    conn: asyncpg.Connection, exception_id: str, note: str, adjustment: Adjustment | None
) -> dict[str, Any]:
    """Close an open exception with the operator's note and, if given, its adjustment (one
    journal entry, ref = the exception), in one transaction. Lock order: the exception, then
    the merchant's balance row."""
    async with conn.transaction():
        status = await conn.fetchval(
            "SELECT status FROM recon_exceptions WHERE id = $1 FOR UPDATE", exception_id
        )
        if status is None:
            raise NotFound(f"no reconciliation exception {exception_id}")
        if status != "open":
            raise Conflict(f"{exception_id} is already resolved", code="already_resolved")
        if adjustment is not None:
            await _adjust(conn, exception_id, adjustment)
        row = await conn.fetchrow(
            f"""UPDATE recon_exceptions SET status = 'resolved', note = $2, resolved_at = now(),
                    adjustment_entry_id = (SELECT id FROM journal_entries
                                           WHERE ref_id = $1 AND kind = 'recon_adjustment')
                WHERE id = $1 AND status = 'open'
                RETURNING {_PUBLIC}""",
            exception_id,
            note,
        )
        assert row is not None, "the exception row is locked"
        return public(row)


async def _adjust(conn: asyncpg.Connection, exception_id: str, adj: Adjustment) -> None:
    available = await conn.fetchval(
        "SELECT available_fen FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE",
        adj.merchant_id,
    )
    if available is None:
        raise NotFound(f"no merchant {adj.merchant_id}", field="adjustment.merchant_id")
    # A merchant's available never goes below zero (prefunded: SPEC 5; the row's CHECK holds
    # it for every merchant): a debit larger than what is there is refused, not clipped.
    if available + adj.amount_fen < 0:
        raise Conflict(
            f"the debit of {-adj.amount_fen} exceeds the merchant's available {available}",
            field="adjustment.amount",
            code="insufficient_funds",
        )
    await journal.record(conn, [moves.recon_adjustment(adj.merchant_id, exception_id,
                                                       adj.amount_fen)])  # fmt: skip
