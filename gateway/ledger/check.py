"""The ledger invariants of SPEC 4, each a query that counts violations."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gateway.ledger.archived import ALL_POSTINGS
from gateway.ledger.rollup import rollup_sql

# Personal accounts' subtrees (a settlement account has none; its own figures are the
# merchant's balance row, which `cached_balances_equal_postings` checks).
_PERSONAL_ACCOUNTS = "SELECT id FROM customer_accounts WHERE kind = 'personal'"

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
        # Checked as each statement writes postings (migration 0022), proven here too.
        "postings_name_accounts_and_entries",
        """SELECT count(*) FROM postings p
           WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.code = p.account)
              OR NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = p.entry_id)""",
    ),
    (
        "cached_balances_equal_postings",
        f"""WITH sums AS (
               SELECT a.merchant_id, a.kind, coalesce(sum(p.amount_fen), 0) AS total
               FROM accounts a LEFT JOIN {ALL_POSTINGS} p ON p.account = a.code
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
        # Each event is its object's version after one change (the outbox's UNIQUE
        # (object_id, sequence) cannot span monthly partitions: migration 0021).
        "events_one_per_sequence",
        """SELECT count(*) FROM (SELECT 1 FROM outbox_events GROUP BY object_id, sequence
                                 HAVING count(*) > 1) x""",
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
    # Accounts (SPEC 16): personal accounts' cached rows equal their postings and stay >= 0,
    # and the rollup the API computes on read equals the same computation over the postings.
    (
        "account_balances_equal_postings",
        f"""WITH sums AS (
               SELECT a.account_id,
                      coalesce(sum(p.amount_fen) FILTER (WHERE a.kind = 'available'), 0) AS av,
                      coalesce(sum(p.amount_fen) FILTER (WHERE a.kind = 'frozen'), 0) AS fr
               FROM accounts a LEFT JOIN {ALL_POSTINGS} p ON p.account = a.code
               WHERE a.account_id IS NOT NULL GROUP BY a.account_id)
           SELECT count(*) FROM account_balances b
           FULL JOIN sums s ON s.account_id = b.account_id
           WHERE b.account_id IS NULL OR s.account_id IS NULL
              OR b.available_fen <> s.av OR b.frozen_fen <> s.fr""",
    ),
    (
        "account_balances_not_negative",
        "SELECT count(*) FROM account_balances WHERE available_fen < 0 OR frozen_fen < 0",
    ),
    (
        "account_rollups_equal_postings",
        f"""SELECT count(*) FROM ({rollup_sql(_PERSONAL_ACCOUNTS, "cached")}) c
            FULL JOIN ({rollup_sql(_PERSONAL_ACCOUNTS, "postings")}) p ON p.root = c.root
            WHERE c.root IS NULL OR p.root IS NULL
               OR (c.available_fen, c.frozen_fen, c.rollup_available_fen, c.rollup_frozen_fen)
                  IS DISTINCT FROM
                  (p.available_fen, p.frozen_fen, p.rollup_available_fen, p.rollup_frozen_fen)""",
    ),
    (
        # Frozen money is exactly what active freezes still hold (nothing else freezes it).
        "frozen_equals_active_freezes",
        """SELECT count(*) FROM account_balances b WHERE b.frozen_fen <> coalesce(
               (SELECT sum(f.amount_fen - f.released_fen - f.transferred_fen) FROM freezes f
                WHERE f.account_id = b.account_id AND f.status = 'active'), 0)""",
    ),
    # Withdrawals (提现): the account's money left once, and came back once exactly when the
    # payout gave its money back (failed, rejected, returned); plain payouts touch no account.
    (
        "withdrawals_move_the_account_once",
        """WITH k AS (
               SELECT ref_id,
                      count(*) FILTER (WHERE kind = 'withdrawal_out') AS outs,
                      count(*) FILTER (WHERE kind = 'withdrawal_back') AS backs
               FROM journal_entries WHERE kind LIKE 'withdrawal_%' GROUP BY ref_id)
           SELECT count(*) FROM payouts p LEFT JOIN k ON k.ref_id = p.id
           WHERE coalesce(k.outs, 0) <> (p.account_id IS NOT NULL)::int
              OR coalesce(k.backs, 0) <> (p.account_id IS NOT NULL
                  AND p.status IN ('failed', 'rejected', 'returned'))::int""",
    ),
    # Collections (代收): one ledger outcome each — a pending one none, a succeeded one its
    # credit, a failed one its fronting exactly when it says it was fronted — and what each
    # payer still owes the company is what was fronted for it less what its successes repaid.
    (
        "collections_have_one_ledger_outcome",
        """WITH k AS (
               SELECT ref_id,
                      count(*) FILTER (WHERE kind = 'collection_credited') AS credits,
                      count(*) FILTER (WHERE kind = 'collection_fronted') AS fronts
               FROM journal_entries WHERE kind LIKE 'collection_%' GROUP BY ref_id)
           SELECT count(*) FROM collections c LEFT JOIN k ON k.ref_id = c.id
           WHERE coalesce(k.credits, 0) <> (c.status = 'succeeded')::int
              OR coalesce(k.fronts, 0) <> (c.status = 'failed' AND c.advanced_fen > 0)::int
              OR (c.status = 'pending') <> EXISTS (
                     SELECT 1 FROM collection_queue q WHERE q.collection_id = c.id)""",
    ),
    (
        "collection_advances_equal_fronted_less_repaid",
        """WITH f AS (
               SELECT merchant_id, payer_account_no, sum(owed) AS owed
               FROM (SELECT merchant_id, payer_account_no, advanced_fen - repaid_fen AS owed
                     FROM collections
                     UNION ALL  -- archived months' collections (migration 0021)
                     SELECT merchant_id, payer_account_no, owed_fen
                     FROM archived_collection_advances) c
               GROUP BY merchant_id, payer_account_no)
           SELECT count(*) FROM f
           FULL JOIN collection_advances a USING (merchant_id, payer_account_no)
           WHERE coalesce(f.owed, 0) <> coalesce(a.outstanding_fen, 0)""",
    ),
)


_ARCHIVE_LOCK = """LOCK TABLE payouts, transfers, collections, journal_entries, postings,
                   notification_attempts, outbox_events IN ACCESS SHARE MODE"""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    violations: int


async def run_checks(conn: asyncpg.Connection) -> list[CheckResult]:
    results = []
    # One snapshot for all checks, so concurrent traffic cannot make them disagree. It is taken
    # by the first query, after these locks: a month being archived (detach_month holds them
    # exclusively) is either wholly attached or wholly in the archived totals.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(_ARCHIVE_LOCK)
        for name, sql in _CHECKS:
            count = int(await conn.fetchval(sql))
            results.append(CheckResult(name, count == 0, count))
    return results
