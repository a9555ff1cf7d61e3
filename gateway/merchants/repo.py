"""SQL for the merchants table and its ledger accounts, plus a short-lived read cache."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from gateway.accounts.customers import add_merchant_customer
from gateway.ledger.moves import MERCHANT_ACCOUNT_KINDS, merchant_account
from gateway.merchants.model import Merchant

_COLUMNS = (
    "id, name, secret, status, funding_mode, currency, advance_limit_fen, fee_fixed_fen,"
    " fee_bps, max_amount_fen, daily_amount_fen, daily_count, rate_limit_rps,"
    " rate_limit_burst, review_threshold_fen, notify_url, notify_events, created_at, updated_at"
)
# Columns an operator may change with PATCH.
MUTABLE = frozenset(
    {
        "name",
        "status",
        "funding_mode",
        "advance_limit_fen",
        "fee_fixed_fen",
        "fee_bps",
        "max_amount_fen",
        "daily_amount_fen",
        "daily_count",
        "rate_limit_rps",
        "rate_limit_burst",
        "review_threshold_fen",
        "notify_url",
        "notify_events",
    }
)


def _from_row(row: asyncpg.Record) -> Merchant:
    fields = dict(row)
    fields["notify_events"] = tuple(fields["notify_events"])
    return Merchant(**fields)


async def insert(conn: asyncpg.Connection, merchant: Merchant) -> Merchant:
    """Create the merchant, its four ledger accounts, its balance row and, as a customer
    (SPEC 16), its settlement account, in one transaction."""
    created = await insert_once(conn, merchant, None, None)
    assert created is not None  # no reference, no conflict
    return created


async def insert_once(
    conn: asyncpg.Connection, merchant: Merchant, key: str | None, request_hash: str | None
) -> Merchant | None:
    """`insert`, under the operator's `key` for this creation (with the request's hash):
    None when a merchant was already made under that key."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""INSERT INTO merchants ({_COLUMNS.replace(", created_at, updated_at", "")},
                                       create_reference, create_hash)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                        $17, $18, $19)
                ON CONFLICT (create_reference) DO NOTHING
                RETURNING {_COLUMNS}""",
            merchant.id,
            merchant.name,
            merchant.secret,
            merchant.status,
            merchant.funding_mode,
            merchant.currency,
            merchant.advance_limit_fen,
            merchant.fee_fixed_fen,
            merchant.fee_bps,
            merchant.max_amount_fen,
            merchant.daily_amount_fen,
            merchant.daily_count,
            merchant.rate_limit_rps,
            merchant.rate_limit_burst,
            merchant.review_threshold_fen,
            merchant.notify_url,
            list(merchant.notify_events),
            key,
            request_hash,
        )
        if row is None:
            return None
        await conn.executemany(
            "INSERT INTO accounts (code, merchant_id, kind, currency) VALUES ($1, $2, $3, $4)",
            [
                (merchant_account(merchant.id, kind), merchant.id, kind, merchant.currency)
                for kind in MERCHANT_ACCOUNT_KINDS
            ],
        )
        await conn.execute(
            "INSERT INTO merchant_balances (merchant_id, currency) VALUES ($1, $2)",
            merchant.id,
            merchant.currency,
        )
        await add_merchant_customer(conn, merchant.id, merchant.name, merchant.currency)
    return _from_row(row)


async def made_under(conn: asyncpg.Connection, reference: str) -> tuple[Merchant, str] | None:
    """The merchant created with this reference, and that request's hash."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, create_hash FROM merchants WHERE create_reference = $1", reference
    )
    if row is None:
        return None
    fields = dict(row)
    request_hash = fields.pop("create_hash")
    fields["notify_events"] = tuple(fields["notify_events"])
    return Merchant(**fields), request_hash


async def get(conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str) -> Merchant | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM merchants WHERE id = $1", merchant_id)
    return _from_row(row) if row else None


async def list_page(
    conn: asyncpg.Connection | asyncpg.Pool, after: str | None, limit: int
) -> list[Merchant]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM merchants WHERE ($1::text IS NULL OR id > $1)"
        " ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [_from_row(r) for r in rows]


async def update(
    conn: asyncpg.Connection, merchant_id: str, changes: dict[str, Any]
) -> Merchant | None:
    assert set(changes) <= MUTABLE, set(changes) - MUTABLE
    if not changes:
        return await get(conn, merchant_id)
    names = sorted(changes)
    sets = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    row = await conn.fetchrow(
        f"UPDATE merchants SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        merchant_id,
        *[changes[n] for n in names],
    )
    return _from_row(row) if row else None


class MerchantCache:
    """Merchants by id for signature checks, kept `ttl_s`; money decisions re-read the row.
    An unknown id is remembered only briefly (`UNKNOWN_TTL_S`): it may be created any time."""

    UNKNOWN_TTL_S = 2.0

    def __init__(self, pool: asyncpg.Pool, ttl_s: float) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._items: dict[str, tuple[float, Merchant | None]] = {}

    async def get(self, merchant_id: str) -> Merchant | None:
        now = time.monotonic()
        hit = self._items.get(merchant_id)
        if hit and hit[0] > now:
            return hit[1]
        merchant = await get(self._pool, merchant_id)
        if len(self._items) > 100_000:
            self._items.clear()
        ttl_s = self._ttl_s if merchant is not None else min(self._ttl_s, self.UNKNOWN_TTL_S)
        self._items[merchant_id] = (now + ttl_s, merchant)
        return merchant

    def forget(self, merchant_id: str) -> None:
        self._items.pop(merchant_id, None)
