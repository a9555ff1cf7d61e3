"""An account's subtree rollup (SPEC 16) as SQL: its own figures and the sums over itself and
every descendant, from the cached balance rows or from the postings. accounts/repo.py reads
accounts with the first; the ledger check (check.py) compares the two."""

from __future__ import annotations

from typing import Literal

from gateway.ledger.archived import ALL_POSTINGS

# One node's own figures, for an account `a` (customer_accounts) with its personal balance
# row `ab` and, for the settlement account, the merchant's row `mb` joined.
_CACHED = {
    "available": "coalesce(ab.available_fen, mb.available_fen, 0)",
    "frozen": "coalesce(ab.frozen_fen, mb.held_fen, 0)",
}


def _posted(kind: str, merchant_kind: str) -> str:
    return f"""(SELECT coalesce(sum(p.amount_fen), 0)::bigint FROM {ALL_POSTINGS} p
                WHERE p.account = CASE WHEN a.kind = 'merchant'
                                       THEN a.merchant_id || ':{merchant_kind}'
                                       ELSE a.id || ':{kind}' END)"""


_POSTED = {"available": _posted("available", "available"), "frozen": _posted("frozen", "held")}


def rollup_sql(roots: str, source: Literal["cached", "postings"]) -> str:
    """Each root account (`roots`: SQL giving a column `id`) with its own figures and the sums
    over its subtree (itself and every descendant), from the cached rows or the postings."""
    figures = _CACHED if source == "cached" else _POSTED
    return f"""
        WITH RECURSIVE tree (root, id) AS (
            SELECT r.id, r.id FROM ({roots}) r
            UNION ALL
            SELECT t.root, c.id FROM tree t JOIN customer_accounts c ON c.parent_id = t.id),
        node AS (
            SELECT t.root, t.id, {figures["available"]} AS available,
                   {figures["frozen"]} AS frozen
            FROM tree t JOIN customer_accounts a ON a.id = t.id
            LEFT JOIN account_balances ab ON ab.account_id = a.id
            LEFT JOIN merchant_balances mb ON a.kind = 'merchant'
                                          AND mb.merchant_id = a.merchant_id)
        SELECT n.root, max(n.available) FILTER (WHERE n.id = n.root) AS available_fen,
               max(n.frozen) FILTER (WHERE n.id = n.root) AS frozen_fen,
               sum(n.available)::bigint AS rollup_available_fen,
               sum(n.frozen)::bigint AS rollup_frozen_fen
        FROM node n GROUP BY n.root"""
