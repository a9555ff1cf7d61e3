"""Freezes (冻结) and unfreezes (解冻) of personal accounts (SPEC 16), one transaction each:
the freeze row, its ledger move (available <-> frozen on the account's balance row) and its
outbox event commit together; an unfreeze's own row (its key and answer) commits with them.
Lock order: the freeze row, then the account's balance row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from gateway.accounts import decide, model, repo
from gateway.accounts.freeze_state import FreezeEvent, FreezeStatus, IllegalFreezeStep, step
from gateway.contract.requests import FreezeRequest, UnfreezeRequest
from gateway.fingerprint import request_fingerprint
from gateway.ledger import journal, moves
from gateway.outbox import OutboxEvent, add_events
from gateway.storage.batch_write import BatchWrite
from protocol.errors import (
    BusinessRefusal,
    Conflict,
    InvalidRequest,
    NotFound,
    idempotency_conflict,
)
from protocol.ids import new_id


async def _replay(
    conn: asyncpg.Connection, merchant_id: str, req: FreezeRequest, req_hash: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {model.FREEZE_COLUMNS} FROM freezes"
        " WHERE merchant_id = $1 AND merchant_order_id = $2",
        merchant_id,
        req.merchant_order_id,
    )
    if row is None:
        return None
    if row["request_hash"] != req_hash:
        raise idempotency_conflict()
    return model.freeze(row)


async def create_freeze(
    conn: asyncpg.Connection, merchant_id: str, req: FreezeRequest
) -> tuple[int, dict[str, Any]]:
    """201 with a new freeze; 200 with the freeze already made for this merchant_order_id
    with the same fields; 409 with other fields; 422 if the account's available is short."""
    req_hash = request_fingerprint(req)
    try:
        async with conn.transaction():
            return await _create(conn, merchant_id, req, req_hash)
    except asyncpg.UniqueViolationError:
        # A concurrent request with this merchant_order_id committed first.
        prior = await _replay(conn, merchant_id, req, req_hash)
        assert prior is not None
        return 200, prior


async def _create(
    conn: asyncpg.Connection, merchant_id: str, req: FreezeRequest, req_hash: str
) -> tuple[int, dict[str, Any]]:
    prior = await _replay(conn, merchant_id, req, req_hash)
    if prior is not None:
        return 200, prior
    ref = (await repo.refs(conn, [req.account_id])).get(req.account_id)
    if ref is None or ref.merchant_id != merchant_id:
        raise NotFound("no such account", field="account_id")
    if ref.kind != "personal":
        raise InvalidRequest("freezes apply to personal accounts (the settlement account's"
                             " frozen money is what payouts hold)", field="account_id")  # fmt: skip
    _, funds = await repo.lock_funds(conn, [], [ref.id])
    refusal = decide.freeze(funds[ref.id], req.amount)
    if refusal is not None:
        raise BusinessRefusal(refusal.message, field="amount", code=refusal.code)
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": new_id("frz"), "merchant_id": merchant_id,
        "merchant_order_id": req.merchant_order_id, "request_hash": req_hash,
        "account_id": ref.id, "amount_fen": req.amount, "released_fen": 0,
        "transferred_fen": 0, "currency": ref.currency, "reason": req.reason,
        "status": FreezeStatus.ACTIVE.value, "version": 1, "created_at": now, "updated_at": now,
    }  # fmt: skip
    public = model.freeze(row)
    w = BatchWrite()
    names = [
        "id", "merchant_id", "merchant_order_id", "request_hash", "account_id", "amount_fen",
        "currency", "reason", "created_at", "updated_at",
    ]  # fmt: skip
    values = ", ".join(w.arg(row[n], "timestamptz" if n.endswith("_at") else
                             "bigint" if n == "amount_fen" else "text") for n in names)  # fmt: skip
    w.add("freezes", f"INSERT INTO freezes ({', '.join(names)}) VALUES ({values}) RETURNING 1",
          counted=True)  # fmt: skip
    ledger = [moves.freeze(merchant_id, row["id"], ref.id, req.amount)]
    journal.add_moves(w, ledger)
    add_events(w, [OutboxEvent(merchant_id, "freeze.created", row["id"], 1, public)])
    counts = await w.run(conn)
    assert counts["freezes"] == 1 and counts["outbox"] == 1, counts
    assert counts["account_balances"] == 1, counts
    return 201, public


async def unfreeze(
    conn: asyncpg.Connection, merchant_id: str, freeze_id: str, req: UnfreezeRequest
) -> dict[str, Any]:
    """Give back `req.amount` of the freeze (all it still holds if None) to the account's
    available, once per `req.merchant_order_id`: a replay with the same fields answers the
    freeze as that unfreeze left it and moves nothing; other fields (another amount or freeze)
    409. 404 unknown (or another merchant's); 409 a final freeze; 422 too much."""
    req_hash = request_fingerprint(req)
    try:
        async with conn.transaction():
            return await _unfreeze(conn, merchant_id, freeze_id, req, req_hash)
    except asyncpg.UniqueViolationError:
        # A concurrent unfreeze with this key committed first (on another freeze: with the
        # same freeze, the freeze row's lock serialises them and the replay is found below).
        prior = await _unfreeze_replay(conn, merchant_id, freeze_id, req, req_hash)
        assert prior is not None
        return prior


async def _unfreeze_replay(
    conn: asyncpg.Connection,
    merchant_id: str,
    freeze_id: str,
    req: UnfreezeRequest,
    req_hash: str,
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT freeze_id, request_hash, answer FROM unfreezes"
        " WHERE merchant_id = $1 AND merchant_order_id = $2",
        merchant_id,
        req.merchant_order_id,
    )
    if row is None:
        return None
    if row["request_hash"] != req_hash or row["freeze_id"] != freeze_id:
        raise idempotency_conflict()
    answer: dict[str, Any] = orjson.loads(row["answer"])
    return answer


async def _unfreeze(
    conn: asyncpg.Connection,
    merchant_id: str,
    freeze_id: str,
    req: UnfreezeRequest,
    req_hash: str,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {model.FREEZE_COLUMNS} FROM freezes WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
        freeze_id,
        merchant_id,
    )
    if row is None:
        raise NotFound("no such freeze")
    # Looked for under the freeze's lock: a retry that waited for it sees the unfreeze that
    # held it (and answers it again) rather than a freeze already released.
    prior = await _unfreeze_replay(conn, merchant_id, freeze_id, req, req_hash)
    if prior is not None:
        return prior
    status = FreezeStatus(row["status"])
    remaining = row["amount_fen"] - row["released_fen"] - row["transferred_fen"]
    amount = remaining if req.amount is None else req.amount
    try:
        to, _ = step(status, FreezeEvent.UNFREEZE, amount, remaining)
    except IllegalFreezeStep as exc:
        if status is not FreezeStatus.ACTIVE:
            raise Conflict(str(exc), code="invalid_state") from None
        raise BusinessRefusal(str(exc), field="amount", code="insufficient_funds") from None
    # Lock order: the freeze row (above), then the account's balance row.
    await repo.lock_funds(conn, [], [row["account_id"]])
    now = datetime.now(UTC)
    changed = dict(row) | {
        "released_fen": row["released_fen"] + amount,
        "status": to.value,
        "version": row["version"] + 1,
        "updated_at": now,
    }
    public = model.freeze(changed)
    w = BatchWrite()
    w.add("freezes", f"""
        UPDATE freezes SET released_fen = {w.arg(changed["released_fen"], "bigint")},
            status = {w.arg(to.value, "text")}, version = {w.arg(changed["version"], "int")},
            updated_at = {w.arg(now, "timestamptz")}
        WHERE id = {w.arg(freeze_id, "text")} AND version = {w.arg(row["version"], "int")}
        RETURNING 1""", counted=True)  # fmt: skip
    w.add("unfreezes", f"""
        INSERT INTO unfreezes (id, merchant_id, merchant_order_id, request_hash, freeze_id,
                               amount_fen, answer, created_at)
        VALUES ({w.arg(new_id("unf"), "text")}, {w.arg(merchant_id, "text")},
                {w.arg(req.merchant_order_id, "text")}, {w.arg(req_hash, "text")},
                {w.arg(freeze_id, "text")}, {w.arg(amount, "bigint")},
                {w.arg(orjson.dumps(public).decode(), "json")}, {w.arg(now, "timestamptz")})
        RETURNING 1""", counted=True)  # fmt: skip
    journal.add_moves(w, [moves.unfreeze(merchant_id, freeze_id, row["account_id"], amount)])
    add_events(w, [OutboxEvent(merchant_id, "freeze.released", freeze_id,
                               changed["version"], public)])  # fmt: skip
    counts = await w.run(conn)
    assert counts["freezes"] == 1 and counts["unfreezes"] == 1, counts
    assert counts["outbox"] == 1 and counts["account_balances"] == 1, counts
    return public
