"""The ledger invariants of SPEC 4, each a query that counts violations."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

_CHECKS: tuple[tuple[str, str], ...] = (
    (
        "entries_sum_to_zero",
        """SELECT count(*) FROM (SELECT entry_id FROM postings GROUP BY entry_id
               HAVING sum(amount_fen) <> 0) x""",
    ),
    (
        "entries_have_postings",
        """SELECT count(*) FROM journal_entries e
           WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id)""",
    ),
    (
        "cached_balances_equal_postings",
        """WITH sums AS (
               SELECT a.merchant_id, a.kind, coalesce(sum(p.amount_fen), 0) AS total
               FROM accounts a LEFT JOIN postings p ON p.account = a.code
               WHERE a.merchant_id IS NOT NULL GROUP BY a.merchant_id, a.kind)
           SELECT count(*) FROM merchant_balances b WHERE
               b.available_fen <> coalesce((SELECT total FROM sums s
                   WHERE s.merchant_id = b.merchant_id AND s.kind = 'available'), 0)
            OR b.held_fen <> coalesce((SELECT total FROM sums s
                   WHERE s.merchant_id = b.merchant_id AND s.kind = 'held'), 0)
            OR b.pending_in_fen <> coalesce((SELECT total FROM sums s
                   WHERE s.merchant_id = b.merchant_id AND s.kind = 'pending_in'), 0)
            OR b.advance_used_fen <> -coalesce((SELECT total FROM sums s
                   WHERE s.merchant_id = b.merchant_id AND s.kind = 'advance'), 0)""",
    ),
    (
        "prefunded_available_not_negative",
        """SELECT count(*) FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
           WHERE m.funding_mode = 'prefunded' AND b.available_fen < 0""",
    ),
    (
        "advance_used_within_limit",
        """SELECT count(*) FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
           WHERE b.advance_used_fen > m.advance_limit_fen""",
    ),
    (
        "advance_pool_within_cap",
        """SELECT count(*) FROM advance_pool p
           WHERE p.used_fen > p.cap_fen
              OR p.used_fen <> (SELECT coalesce(sum(advance_used_fen), 0)
                                FROM merchant_balances)""",
    ),
    (
        "held_equals_open_payouts",
        """SELECT count(*) FROM merchant_balances b WHERE b.held_fen <> coalesce(
               (SELECT sum(p.amount_fen + p.fee_fen) FROM payouts p
                WHERE p.merchant_id = b.merchant_id
                  AND p.status IN ('review_pending', 'accepted', 'processing')), 0)""",
    ),
    (
        # Nothing accepted is forgotten: every open payout has exactly one row of work in
        # the payout queue, in a state that fits its status, and no final one has any.
        "open_payouts_are_queued",
        """SELECT count(*) FROM payouts p FULL JOIN payout_queue q ON q.payout_id = p.id
           WHERE p.id IS NULL
              OR (p.status = 'review_pending') <> coalesce(q.state = 'review', false)
              OR (p.status IN ('accepted', 'processing')) <>
                 coalesce(q.state IN ('queued', 'sending', 'acked', 'unknown'), false)""",
    ),
    (
        "payouts_have_one_ledger_outcome",
        """WITH k AS (
               SELECT ref_id,
                      count(*) FILTER (WHERE kind = 'payout_hold') AS holds,
                      count(*) FILTER (WHERE kind = 'payout_settle') AS settles,
                      count(*) FILTER (WHERE kind = 'payout_release') AS releases,
                      count(*) FILTER (WHERE kind = 'payout_return') AS returns
               FROM journal_entries WHERE kind LIKE 'payout_%' GROUP BY ref_id)
           SELECT count(*) FROM payouts p LEFT JOIN k ON k.ref_id = p.id
           WHERE coalesce(k.holds, 0) <> 1 OR NOT CASE p.status
               WHEN 'succeeded' THEN k.settles = 1 AND k.releases = 0 AND k.returns = 0
               WHEN 'returned' THEN k.settles = 1 AND k.releases = 0 AND k.returns = 1
               WHEN 'failed' THEN k.settles = 0 AND k.releases = 1 AND k.returns = 0
               WHEN 'rejected' THEN k.settles = 0 AND k.releases = 1 AND k.returns = 0
               ELSE k.settles = 0 AND k.releases = 0 AND k.returns = 0 END""",
    ),
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    violations: int


async def run_checks(conn: asyncpg.Connection) -> list[CheckResult]:
    results = []
    # One snapshot for all checks, so concurrent traffic cannot make them disagree.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for name, sql in _CHECKS:
            count = int(await conn.fetchval(sql))
            results.append(CheckResult(name, count == 0, count))
    return results
