"""Operator credits (manual deposits): journaled, idempotent on the reference."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.ledger import journal, moves
from protocol.errors import Conflict, InvalidRequest, NotFound
from protocol.ids import new_id


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "merchant_id": row["merchant_id"],
        "amount": row["amount_fen"],
        "currency": row["currency"],
        "reference": row["reference"],
        "created_at": row["created_at"],
    }


async def apply_credit(
    conn: asyncpg.Connection, merchant_id: str, amount_fen: int, currency: str, reference: str
) -> tuple[dict[str, Any], bool]:
    """Returns (credit, created). A replay with the same fields returns the first credit."""
    async with conn.transaction():
        merchant_currency = await conn.fetchval(
            "SELECT currency FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE",
            merchant_id,
        )
        if merchant_currency is None:
            raise NotFound(f"no merchant {merchant_id}")
        if currency != merchant_currency:
            raise InvalidRequest(f"currency must be {merchant_currency}", field="currency")
        existing = await conn.fetchrow(
            "SELECT * FROM credits WHERE merchant_id = $1 AND reference = $2",
            merchant_id,
            reference,
        )
        if existing is not None:
            if existing["amount_fen"] != amount_fen or existing["currency"] != currency:
                raise Conflict(
                    "reference already used with different fields", code="idempotency_conflict"
                )
            return _public(existing), False
        credit_id = new_id("cr")
        row = await conn.fetchrow(
            """INSERT INTO credits (id, merchant_id, reference, amount_fen, currency)
               VALUES ($1, $2, $3, $4, $5) RETURNING *""",
            credit_id,
            merchant_id,
            reference,
            amount_fen,
            currency,
        )
        await journal.record(conn, [moves.credit(merchant_id, amount_fen, credit_id)])
        return _public(row), True
