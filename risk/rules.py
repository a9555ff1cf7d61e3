"""Payout risk rules that need no storage (pure); each refusal carries its API error code."""

from __future__ import annotations

from gateway.errors import ApiError, BusinessRefusal


def check_amount(amount_fen: int, max_amount_fen: int) -> ApiError | None:
    if amount_fen > max_amount_fen:
        return BusinessRefusal(
            f"amount {amount_fen} is over the per-payout limit {max_amount_fen}",
            field="amount",
            code="amount_limit_exceeded",
        )
    return None
