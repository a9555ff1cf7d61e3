"""Postings as the ledger check sums them when months are archived (migration 0021): the
attached months' postings, and for each detached month its per-account totals."""

from __future__ import annotations

# (account, amount_fen) rows whose sums per account are the account's balance.
ALL_POSTINGS = """(SELECT account, amount_fen FROM postings
                   UNION ALL SELECT account, amount_fen FROM archived_totals)"""
