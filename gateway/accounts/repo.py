"""Accounts (账户) and sub-accounts (子账户): opening them, and reading each with its own
balance and its subtree's rollup (SPEC 16).

A personal account's money is its row in `account_balances` (the sum of the postings of
`acc_…:available` and `acc_…:frozen`). The merchant's settlement account shows the merchant's
balance row: `available`, and `held` (frozen for in-flight payouts) as its frozen money.
A rollup is computed on read, over the subtree, by `ledger/rollup.py`; the ledger check runs
the same computation over the postings and compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.accounts import model
from gateway.accounts.decide import AccountFunds
from gateway.contract.requests import AccountOpen
from gateway.ledger.moves import CUSTOMER_ACCOUNT_KINDS, customer_account
from gateway.ledger.rollup import rollup_sql
from protocol.errors import Conflict, InvalidRequest, NotFound
from protocol.ids import new_id

ENABLED_CURRENCIES = frozenset({"CNY"})

_READ = f"""
    SELECT a.id, a.merchant_id, a.customer_id, a.parent_id, a.kind, a.purpose, a.currency,
           a.depth, a.created_at, r.available_fen, r.frozen_fen, r.rollup_available_fen,
           r.rollup_frozen_fen
    FROM ({rollup_sql("SELECT unnest($1::text[]) AS id", "cached")}) r
    JOIN customer_accounts a ON a.id = r.root
    ORDER BY a.id"""


async def read(conn: asyncpg.Connection | asyncpg.Pool, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The accounts' public objects, in id order (ids must exist)."""
    if not ids:
        return []
    return [model.account(r) for r in await conn.fetch(_READ, list(ids))]


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str, account_id: str
) -> dict[str, Any] | None:
    owned = await conn.fetchval(
        "SELECT id FROM customer_accounts WHERE id = $1 AND merchant_id = $2",
        account_id,
        merchant_id,
    )
    if owned is None:
        return None
    (found,) = await read(conn, [owned])
    return found


async def list_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    merchant_id: str,
    customer_id: str | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    ids = await conn.fetch(
        """SELECT id FROM customer_accounts
           WHERE merchant_id = $1 AND ($2::text IS NULL OR customer_id = $2)
             AND ($3::text IS NULL OR id > $3)
           ORDER BY id LIMIT $4""",
        merchant_id,
        customer_id,
        after,
        limit,
    )
    return await read(conn, [r["id"] for r in ids])


async def open_account(
    conn: asyncpg.Connection, merchant_id: str, req: AccountOpen
) -> tuple[int, dict[str, Any]]:
    """201 with a new personal account (and its ledger accounts and balance row); 200 with
    the account already open for (customer, parent, purpose) in the same currency; 409 if
    in another."""
    async with conn.transaction():
        customer = await conn.fetchrow(
            "SELECT id, kind FROM customers WHERE id = $1 AND merchant_id = $2",
            req.customer_id,
            merchant_id,
        )
        if customer is None:
            raise NotFound("no such customer", field="customer_id")
        if customer["kind"] != "personal":
            raise InvalidRequest("the merchant's own account is its settlement account;"
                                 " accounts are opened for personal customers",
                                 field="customer_id")  # fmt: skip
        if req.currency not in ENABLED_CURRENCIES:
            raise InvalidRequest(f"currency {req.currency} is not enabled", field="currency")
        depth = 0
        if req.parent_id is not None:
            depth = await _check_parent(conn, merchant_id, req)
        account_id = new_id("acc")
        created = await conn.fetchval(
            """INSERT INTO customer_accounts (id, merchant_id, customer_id, parent_id, kind,
                   purpose, currency, depth)
               VALUES ($1, $2, $3, $4, 'personal', $5, $6, $7)
               ON CONFLICT (customer_id, parent_id, purpose) DO NOTHING
               RETURNING id""",
            account_id, merchant_id, req.customer_id, req.parent_id, req.purpose,
            req.currency, depth,
        )  # fmt: skip
        if created is None:
            return 200, await _replayed(conn, req)
        await conn.executemany(
            "INSERT INTO accounts (code, kind, currency, account_id) VALUES ($1, $2, $3, $4)",
            [
                (customer_account(account_id, kind), kind, req.currency, account_id)
                for kind in CUSTOMER_ACCOUNT_KINDS
            ],
        )
        await conn.execute("INSERT INTO account_balances (account_id) VALUES ($1)", account_id)
    (opened,) = await read(conn, [account_id])
    return 201, opened


async def _check_parent(conn: asyncpg.Connection, merchant_id: str, req: AccountOpen) -> int:
    """The sub-account's depth, if `parent_id` may have it as a child."""
    parent = await conn.fetchrow(
        "SELECT customer_id, kind, currency, depth FROM customer_accounts"
        " WHERE id = $1 AND merchant_id = $2",
        req.parent_id,
        merchant_id,
    )
    if parent is None:
        raise NotFound("no such parent account", field="parent_id")
    if parent["customer_id"] != req.customer_id:
        raise InvalidRequest("a sub-account belongs to its parent's customer", field="parent_id")
    if parent["currency"] != req.currency:
        raise InvalidRequest(f"a sub-account has its parent's currency {parent['currency']}",
                             field="currency")  # fmt: skip
    if parent["depth"] >= model.MAX_DEPTH:
        raise InvalidRequest(f"sub-accounts go at most {model.MAX_DEPTH} levels down",
                             field="parent_id")  # fmt: skip
    return int(parent["depth"]) + 1


async def _replayed(conn: asyncpg.Connection, req: AccountOpen) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT id, currency FROM customer_accounts
           WHERE customer_id = $1 AND parent_id IS NOT DISTINCT FROM $2 AND purpose = $3""",
        req.customer_id,
        req.parent_id,
        req.purpose,
    )
    assert row is not None, "an account is never deleted"
    if row["currency"] != req.currency:
        raise Conflict("an account with this purpose is already open in another currency",
                       field="currency", code="idempotency_conflict")  # fmt: skip
    (found,) = await read(conn, [row["id"]])
    return found


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What a transfer or freeze needs to know of an account (never changes once open)."""

    id: str
    merchant_id: str
    kind: str  # personal | merchant (the settlement account)
    currency: str


async def refs(
    conn: asyncpg.Connection | asyncpg.Pool, ids: Sequence[str]
) -> dict[str, AccountRef]:
    rows = await conn.fetch(
        "SELECT id, merchant_id, kind, currency FROM customer_accounts WHERE id = ANY($1::text[])",
        sorted(set(ids)),
    )
    return {r["id"]: AccountRef(r["id"], r["merchant_id"], r["kind"], r["currency"]) for r in rows}


async def lock_funds(
    conn: asyncpg.Connection, merchant_ids: Sequence[str], account_ids: Sequence[str]
) -> tuple[dict[str, AccountFunds], dict[str, AccountFunds]]:
    """Lock and read, in the lock order: merchants' balance rows (merchant id order), then
    personal accounts' rows (account id order). Rows locked FOR UPDATE are read as last
    committed, whatever the statement's snapshot."""
    merchants: dict[str, AccountFunds] = {}
    accounts: dict[str, AccountFunds] = {}
    if merchant_ids:
        for r in await conn.fetch(
            """SELECT merchant_id, available_fen, held_fen FROM merchant_balances
               WHERE merchant_id = ANY($1::text[]) ORDER BY merchant_id FOR UPDATE""",
            sorted(set(merchant_ids)),
        ):
            merchants[r["merchant_id"]] = AccountFunds(r["available_fen"], r["held_fen"])
    if account_ids:
        for r in await conn.fetch(
            """SELECT account_id, available_fen, frozen_fen FROM account_balances
               WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE""",
            sorted(set(account_ids)),
        ):
            accounts[r["account_id"]] = AccountFunds(r["available_fen"], r["frozen_fen"])
    return merchants, accounts
