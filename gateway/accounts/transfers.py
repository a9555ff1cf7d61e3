"""Internal transfers (SPEC 16: 个转个, 个转商, 商转个, and claim transfers 债权转让 that consume a
freeze), group-committed like payout acceptance: a batch of transfers is ONE transaction,
each item still getting its own decision.

1. read what never changes: the named accounts (merchant, kind, currency);
2. lock, in the lock order, the freezes named by `from_freeze` (id order), the merchants'
   balance rows of settlement accounts involved (merchant id order), then the personal
   accounts' balance rows (account id order) — locked rows are read as last committed;
3. read the order ids already used (after the locks: a concurrent duplicate that committed
   while we waited is seen; one that commits later fails our insert on the unique key, and
   the batch runs once more);
4. decide each item in order against the balances as moved so far (`decide.py`), so
   concurrent transfers on one account can never overdraw it;
5. write transfers, freezes consumed, ledger moves (balances) and outbox events as one
   statement (`storage/batch_write.py`).
A refused transfer is not recorded: retrying its merchant_order_id later may succeed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.accounts import decide, model, repo
from gateway.accounts.decide import AccountFunds
from gateway.accounts.freeze_state import FreezeEvent, FreezeStatus, IllegalFreezeStep, step
from gateway.contract.requests import TransferRequest
from gateway.fingerprint import request_fingerprint
from gateway.ledger import journal, moves
from gateway.outbox import OutboxEvent, add_events
from gateway.storage.batch_write import BatchWrite
from gateway.storage.owned import prefixed
from protocol.errors import (
    ApiError,
    BusinessRefusal,
    Conflict,
    InvalidRequest,
    NotFound,
    archived_order,
    idempotency_conflict,
)
from protocol.ids import new_id

log = logging.getLogger("paygate.transfers")


@dataclass(frozen=True, slots=True)
class TransferItem:
    merchant_id: str
    request: TransferRequest
    request_hash: str


def item(merchant_id: str, req: TransferRequest) -> TransferItem:
    return TransferItem(merchant_id, req, request_fingerprint(req))


@dataclass(frozen=True, slots=True)
class TransferResult:
    http_status: int  # 201 created, 200 idempotent replay; errors carry their own status
    transfer: dict[str, Any] | None = None
    error: ApiError | None = None


@dataclass(slots=True)
class LockedFreeze:
    """A freeze as this transaction holds it (mutated as claim transfers consume it)."""

    id: str
    merchant_id: str
    account_id: str
    amount_fen: int
    released_fen: int
    transferred_fen: int
    status: FreezeStatus
    version: int
    taken_fen: int = 0  # consumed by this batch

    @property
    def remaining_fen(self) -> int:
        return self.amount_fen - self.released_fen - self.transferred_fen


async def transfer_batch(
    conn: asyncpg.Connection, items: Sequence[TransferItem]
) -> list[TransferResult]:
    try:
        async with conn.transaction():
            return await _transfer(conn, items)
    except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as exc:
        # A concurrent transfer took an order id of the batch, or an archive (detach_month,
        # which locks the tables at once) made this batch PostgreSQL's deadlock victim.
        log.info("a transfer batch met a concurrent write, running it again",
                 extra={"size": len(items), "why": repr(exc)})  # fmt: skip
    async with conn.transaction():
        return await _transfer(conn, items)


async def _transfer(
    conn: asyncpg.Connection, items: Sequence[TransferItem]
) -> list[TransferResult]:
    named = [n for it in items for n in (it.request.from_account, it.request.to_account)]
    refs = await repo.refs(conn, named)
    freezes = await _lock_freezes(conn, [it.request.from_freeze for it in items
                                         if it.request.from_freeze is not None])  # fmt: skip
    # Only accounts of the merchant that names them are locked (others are refused, 404).
    owned = {
        ref.id: ref
        for it in items
        for name in (it.request.from_account, it.request.to_account)
        if (ref := refs.get(name)) is not None and ref.merchant_id == it.merchant_id
    }.values()
    merchant_funds, account_funds = await repo.lock_funds(
        conn,
        [r.merchant_id for r in owned if r.kind == "merchant"],
        [r.id for r in owned if r.kind == "personal"],
    )
    known = await _existing(conn, items)

    def funds(ref: repo.AccountRef) -> AccountFunds:
        """The locked figures, moved as the batch's items are applied."""
        return merchant_funds[ref.merchant_id] if ref.kind == "merchant" else account_funds[ref.id]

    now = datetime.now(UTC)
    results: list[TransferResult] = []
    rows: list[dict[str, Any]] = []
    ledger: list[moves.Move] = []
    events: list[OutboxEvent] = []
    for it in items:
        req = it.request
        key = (it.merchant_id, req.merchant_order_id)
        prior = known.get(key)
        if prior is not None:
            prior_hash, prior_transfer = prior
            if prior_transfer is None:
                results.append(TransferResult(409, error=archived_order()))
            elif prior_hash == it.request_hash:
                results.append(TransferResult(200, prior_transfer))
            else:
                results.append(TransferResult(409, error=idempotency_conflict()))
            continue
        src, dst = refs.get(req.from_account), refs.get(req.to_account)
        refused = _refuse(it, src, dst)
        if refused is not None:
            results.append(TransferResult(refused.status, error=refused))
            continue
        assert src is not None and dst is not None
        kind = decide.transfer_kind(src.kind, dst.kind)
        assert kind is not None  # two settlement accounts of one merchant are one account
        source, target = funds(src), funds(dst)
        frz = None
        if req.from_freeze is not None:
            frz = freezes.get(req.from_freeze)
            error = _refuse_freeze(it, frz, src)
            if error is not None:
                results.append(TransferResult(error.status, error=error))
                continue
            assert frz is not None
            frz.status, _ = step(frz.status, FreezeEvent.TRANSFER, req.amount, frz.remaining_fen)
            frz.transferred_fen += req.amount
            frz.taken_fen += req.amount
            source.frozen_fen -= req.amount
        else:
            refusal = decide.debit(source, req.amount)
            if refusal is not None:
                results.append(TransferResult(422, error=BusinessRefusal(
                    refusal.message, field="amount", code=refusal.code)))  # fmt: skip
                continue
            source.available_fen -= req.amount
        target.available_fen += req.amount

        row: dict[str, Any] = {
            "id": new_id("tr"), "merchant_id": it.merchant_id,
            "merchant_order_id": req.merchant_order_id, "request_hash": it.request_hash,
            "from_account": src.id, "to_account": dst.id, "kind": kind,
            "amount_fen": req.amount, "currency": src.currency, "from_freeze": req.from_freeze,
            "status": "completed", "created_at": now,
        }  # fmt: skip
        rows.append(row)
        public = model.transfer(row)
        known[key] = (it.request_hash, public)
        ledger.append(moves.transfer(
            it.merchant_id, row["id"], req.amount,
            src.id if src.kind == "personal" else None,
            dst.id if dst.kind == "personal" else None,
            from_frozen=frz is not None,
        ))  # fmt: skip
        events.append(OutboxEvent(it.merchant_id, "transfer.completed", row["id"], 1, public))
        results.append(TransferResult(201, public))

    if rows:
        await _write(conn, rows, [f for f in freezes.values() if f.taken_fen], ledger, events, now)
    return results


def _refuse(
    it: TransferItem, src: repo.AccountRef | None, dst: repo.AccountRef | None
) -> ApiError | None:
    """Another merchant's account is as unknown as a missing one (404)."""
    if src is None or src.merchant_id != it.merchant_id:
        return NotFound("no such account", field="from_account")
    if dst is None or dst.merchant_id != it.merchant_id:
        return NotFound("no such account", field="to_account")
    if src.id == dst.id:
        return InvalidRequest("from_account and to_account are the same account",
                              field="to_account")  # fmt: skip
    if src.currency != dst.currency:
        return InvalidRequest(f"from_account is in {src.currency}, to_account in {dst.currency}",
                              field="to_account")  # fmt: skip
    return None


def _refuse_freeze(
    it: TransferItem, frz: LockedFreeze | None, src: repo.AccountRef
) -> ApiError | None:
    if frz is None or frz.merchant_id != it.merchant_id:
        return NotFound("no such freeze", field="from_freeze")
    if frz.account_id != src.id:
        return InvalidRequest("from_freeze is a freeze of another account", field="from_freeze")
    try:
        step(frz.status, FreezeEvent.TRANSFER, it.request.amount, frz.remaining_fen)
    except IllegalFreezeStep as exc:
        if frz.status is not FreezeStatus.ACTIVE:
            return Conflict(str(exc), field="from_freeze", code="invalid_state")
        return BusinessRefusal(str(exc), field="amount", code="insufficient_funds")
    return None


async def _lock_freezes(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, LockedFreeze]:
    if not ids:
        return {}
    rows = await conn.fetch(
        """SELECT id, merchant_id, account_id, amount_fen, released_fen, transferred_fen, status,
                  version
           FROM freezes WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE""",
        sorted(set(ids)),
    )
    return {
        r["id"]: LockedFreeze(
            r["id"],
            r["merchant_id"],
            r["account_id"],
            r["amount_fen"],
            r["released_fen"],
            r["transferred_fen"],
            FreezeStatus(r["status"]),
            r["version"],
        )
        for r in rows
    }


async def _existing(
    conn: asyncpg.Connection, items: Sequence[TransferItem]
) -> dict[tuple[str, str], tuple[str, dict[str, Any] | None]]:
    """The batch's order ids already used: (request hash, transfer), the transfer None when
    its month is archived (migration 0021)."""
    rows = await conn.fetch(
        f"""SELECT k.merchant_id AS key_merchant, k.merchant_order_id AS key_order,
                   k.request_hash AS key_hash, {prefixed(model.TRANSFER_COLUMNS, "t")}
            FROM order_keys k LEFT JOIN transfers t ON t.id = k.object_id
            WHERE k.kind = 'transfers' AND (k.merchant_id, k.merchant_order_id) IN
                  (SELECT * FROM unnest($1::text[], $2::text[]))""",
        [it.merchant_id for it in items],
        [it.request.merchant_order_id for it in items],
    )
    return {
        (r["key_merchant"], r["key_order"]): (
            r["key_hash"],
            model.transfer(r) if r["id"] is not None else None,
        )
        for r in rows
    }


async def _write(
    conn: asyncpg.Connection,
    rows: list[dict[str, Any]],
    consumed: list[LockedFreeze],
    ledger: list[moves.Move],
    events: list[OutboxEvent],
    now: datetime,
) -> None:
    """Every write of the batch in one round trip."""
    w = BatchWrite()
    cols = [
        ("id", "text[]"), ("merchant_id", "text[]"), ("merchant_order_id", "text[]"),
        ("request_hash", "text[]"), ("from_account", "text[]"), ("to_account", "text[]"),
        ("kind", "text[]"), ("amount_fen", "bigint[]"), ("currency", "text[]"),
        ("from_freeze", "text[]"), ("created_at", "timestamptz[]"),
    ]  # fmt: skip
    args = ", ".join(w.arg([r[name] for r in rows], pg_type) for name, pg_type in cols)
    w.add("transfers", f"""
        INSERT INTO transfers ({", ".join(name for name, _ in cols)})
        SELECT * FROM unnest({args}) RETURNING 1""", counted=True)  # fmt: skip
    if consumed:
        ids = w.arg([f.id for f in consumed], "text[]")
        w.add("freezes", f"""
            UPDATE freezes f SET transferred_fen = u.transferred, status = u.status,
                version = f.version + 1, updated_at = {w.arg(now, "timestamptz")}
            FROM unnest({ids}, {w.arg([f.transferred_fen for f in consumed], "bigint[]")},
                        {w.arg([f.status.value for f in consumed], "text[]")},
                        {w.arg([f.version for f in consumed], "int[]")})
                AS u (id, transferred, status, version)
            WHERE f.id = u.id AND f.version = u.version AND f.id = ANY({ids})
            RETURNING 1""", counted=True)  # fmt: skip
    merchant_rows = journal.add_moves(w, ledger)
    add_events(w, events)
    counts = await w.run(conn)
    assert counts["transfers"] == len(rows), counts
    assert counts.get("freezes", 0) == len(consumed), counts
    assert counts["balances"] == merchant_rows, counts
    assert counts.get("account_balances", 0) == journal.account_rows(ledger), counts
    assert counts["outbox"] == len(events), counts
