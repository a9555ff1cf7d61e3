"""What the console's pages read: plain parameterised SQL over the domain's tables, each query
bounded (a page of rows, a primary-key range, or the small tables: queues, channels, pool)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from gateway.accounts import repo as accounts_repo
from gateway.payouts import model as payout_model

PAGE = 50


@dataclass(frozen=True, slots=True)
class PayoutFilter:
    id: str | None = None
    merchant_order_id: str | None = None
    merchant_id: str | None = None
    status: str | None = None
    bank_id: str | None = None
    min_fen: int | None = None
    max_fen: int | None = None
    day: date | None = None  # business date
    before_id: str | None = None  # the cursor: older than this id


async def snapshot(pool: asyncpg.Pool) -> dict[str, Any]:
    """The overview's figures that are not samples over time (small tables only)."""
    rows = await pool.fetch(
        """SELECT 'open' AS kind, state AS label, count(*)::bigint AS value
               FROM payout_queue GROUP BY state
           UNION ALL SELECT 'pending', '', count(*) FROM notification_queue
           UNION ALL SELECT 'inflight', p.bank_id, count(*)
               FROM payout_queue q JOIN payouts p ON p.id = q.payout_id
               WHERE q.state IN ('sending', 'acked', 'unknown') GROUP BY p.bank_id"""
    )
    channels = await pool.fetch("SELECT id, name, enabled, breaker_state FROM channels ORDER BY id")
    paused = await pool.fetchval("SELECT paused FROM dispatch_control WHERE id = 1")
    open_by_state = {r["label"]: r["value"] for r in rows if r["kind"] == "open"}
    inflight = {r["label"]: r["value"] for r in rows if r["kind"] == "inflight"}
    pending = sum(r["value"] for r in rows if r["kind"] == "pending")
    return {
        "open": open_by_state,
        "notifications_pending": pending,
        "dispatch_paused": paused,
        "banks": [{"id": c["id"], "name": c["name"], "enabled": c["enabled"],
                   "breaker": c["breaker_state"], "in_flight": inflight.get(c["id"], 0)}
                  for c in channels],
    }  # fmt: skip


async def reviews(pool: asyncpg.Pool, after_id: str | None) -> list[dict[str, Any]]:
    """Payouts under review, oldest first, with their approvals so far."""
    rows = await pool.fetch(
        """SELECT p.*, m.name AS merchant_name,
                   (SELECT coalesce(array_agg(approver ORDER BY at), '{}')
                    FROM payout_approvals a WHERE a.payout_id = p.id) AS approvals
            FROM (SELECT payout_id FROM payout_queue
                  WHERE state = 'review' AND ($1::text IS NULL OR payout_id > $1)
                  ORDER BY payout_id LIMIT $2) q
            JOIN payouts p ON p.id = q.payout_id JOIN merchants m ON m.id = p.merchant_id
            ORDER BY p.id""",
        after_id, PAGE,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def payouts(pool: asyncpg.Pool, f: PayoutFilter) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""SELECT {payout_model.COLUMNS} FROM payouts
            WHERE ($1::text IS NULL OR id = $1)
              AND ($2::text IS NULL OR id IN (  -- order ids live in order_keys (migration 0021)
                  SELECT object_id FROM order_keys WHERE kind = 'payouts'
                  AND merchant_order_id = $2 AND ($3::text IS NULL OR merchant_id = $3)))
              AND ($3::text IS NULL OR merchant_id = $3)
              AND ($4::text IS NULL OR status = $4)
              AND ($5::text IS NULL OR bank_id = $5)
              AND ($6::bigint IS NULL OR amount_fen >= $6)
              AND ($7::bigint IS NULL OR amount_fen <= $7)
              AND ($8::date IS NULL OR business_date = $8)
              AND ($9::text IS NULL OR id < $9)
            ORDER BY id DESC LIMIT $10""",
        f.id, f.merchant_order_id, f.merchant_id, f.status, f.bank_id, f.min_fen, f.max_fen,
        f.day, f.before_id, PAGE,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def payout_detail(pool: asyncpg.Pool, payout_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {payout_model.COLUMNS} FROM payouts WHERE id = $1", payout_id
    )
    if row is None:
        return None
    events = await pool.fetch(
        """SELECT id, type, sequence, created_at, delivery_status, attempts, last_error
           FROM outbox_events WHERE object_id = $1 ORDER BY sequence""",
        payout_id,
    )
    attempts = await pool.fetch(
        """SELECT a.event_id, a.attempt, a.attempted_at, a.http_status, a.latency_ms, a.error
           FROM notification_attempts a WHERE a.event_id = ANY($1::text[])
           ORDER BY a.id LIMIT 200""",
        [e["id"] for e in events],
    )
    postings = await pool.fetch(
        """SELECT e.id AS entry_id, e.kind, e.created_at, p.account, p.amount_fen
           FROM journal_entries e JOIN postings p ON p.entry_id = e.id
           WHERE e.ref_id = $1 ORDER BY p.id""",
        payout_id,
    )
    # The next query: the poller's lease's end while one is in flight (migration 0020).
    queue = await pool.fetchrow(
        """SELECT state, attempts, submitted_at, greatest(poll_at, leased_until) AS poll_at,
                  poll_count
           FROM payout_queue WHERE payout_id = $1""",
        payout_id,
    )
    approvals = await pool.fetch(
        "SELECT approver, at FROM payout_approvals WHERE payout_id = $1 ORDER BY at", payout_id
    )
    return {
        "payout": dict(row),
        "events": [dict(e) for e in events],
        "attempts": [dict(a) for a in attempts],
        "postings": [dict(p) for p in postings],
        "queue": dict(queue) if queue else None,
        "approvals": [dict(a) for a in approvals],
    }


async def merchants(
    pool: asyncpg.Pool, after_id: str | None, name: str | None, status: str | None
) -> list[dict[str, Any]]:
    """A page of merchants in id order; `name` matches anywhere in the name (any case)."""
    rows = await pool.fetch(
        """SELECT m.id, m.name, m.status, m.funding_mode, m.advance_limit_fen,
                  m.rate_limit_rps, m.rate_limit_burst, b.available_fen, b.held_fen,
                  b.pending_in_fen, b.advance_used_fen
           FROM merchants m JOIN merchant_balances b ON b.merchant_id = m.id
           WHERE ($1::text IS NULL OR m.id > $1)
             AND ($2::text IS NULL OR strpos(lower(m.name), lower($2)) > 0)
             AND ($3::text IS NULL OR m.status = $3)
           ORDER BY m.id LIMIT $4""",
        after_id, name, status, PAGE,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def merchant_detail(pool: asyncpg.Pool, merchant_id: str) -> dict[str, Any] | None:
    rows = await merchants_by_id(pool, [merchant_id])
    if not rows:
        return None
    found = rows[0]
    customers = await pool.fetch(
        """SELECT id, kind, name, external_id FROM customers
           WHERE merchant_id = $1 ORDER BY kind DESC, id LIMIT 100""",
        merchant_id,
    )
    accounts = await accounts_repo.list_page(pool, merchant_id, None, None, 500)
    freezes = await pool.fetch(
        """SELECT id, account_id, amount_fen - released_fen - transferred_fen AS held_fen,
                  reason, created_at
           FROM freezes WHERE merchant_id = $1 AND status = 'active' ORDER BY id LIMIT 100""",
        merchant_id,
    )
    return {"merchant": found, "customers": [_tree(dict(c), accounts) for c in customers],
            "freezes": [dict(f) for f in freezes]}  # fmt: skip


async def merchants_by_id(pool: asyncpg.Pool, ids: list[str]) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT m.*, b.available_fen, b.held_fen, b.pending_in_fen, b.advance_used_fen
           FROM merchants m JOIN merchant_balances b ON b.merchant_id = m.id
           WHERE m.id = ANY($1::text[]) ORDER BY m.id""",
        ids,
    )
    return [dict(r) for r in rows]


def _tree(customer: dict[str, Any], accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """A customer with its accounts as a tree (each node's `children`, depth first)."""
    mine = [dict(a, children=[]) for a in accounts if a["customer_id"] == customer["id"]]
    by_id = {a["id"]: a for a in mine}
    roots: list[dict[str, Any]] = []
    for a in mine:
        parent = by_id.get(a.get("parent_id") or "")
        (parent["children"] if parent else roots).append(a)
    return dict(customer, accounts=roots)


async def recon(pool: asyncpg.Pool) -> dict[str, Any]:
    runs = await pool.fetch(
        """SELECT id, bank_id, date, apply, trigger, summary, created_at FROM recon_runs
           ORDER BY created_at DESC LIMIT 50"""
    )
    open_ones = await pool.fetch(
        """SELECT id, run_id, bank_id, date, kind, bank_ref, payout_id, gateway, bank, action,
                  created_at
           FROM recon_exceptions WHERE status = 'open' ORDER BY id LIMIT 100"""
    )
    return {"runs": [dict(r) for r in runs], "exceptions": [dict(e) for e in open_ones]}


async def pending_in_by_clearing(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """B2B funds notified but not cleared, by the hour they are expected to clear."""
    rows = await pool.fetch(
        """SELECT date_trunc('hour', expected_clear_at) AS hour, count(*) AS payments,
                  sum(amount_fen)::bigint AS amount_fen
           FROM b2b_payments WHERE status = 'notified' GROUP BY 1 ORDER BY 1 LIMIT 100"""
    )
    return [dict(r) for r in rows]
