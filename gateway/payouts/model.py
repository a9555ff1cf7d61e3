"""A payout's public shape (SPEC 11), the fingerprint used for idempotent replays, and a
request to accept as the accept batch takes it (accept.py and accept_reads.py both use it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.contract.requests import PayoutRequest
from gateway.fingerprint import request_fingerprint
from gateway.storage.owned import Owned

# Columns every payout query selects (the public object needs them all).
COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, amount_fen, fee_fen, currency, status,"
    " version, payee, purpose, metadata, funding_balance_fen, funding_advance_fen, bank_id,"
    " bank_ref, failure_code, failure_message, business_date, created_at, updated_at, bank_date,"
    " account_id"
)


def request_hash(req: PayoutRequest) -> str:
    return request_fingerprint(req)


@dataclass(frozen=True, slots=True)
class AcceptItem:
    merchant_id: str
    request: PayoutRequest
    request_hash: str


def public(row: Any) -> dict[str, Any]:
    """The payout object merchants see, from a row (asyncpg Record or dict)."""
    failure = None
    if row["failure_code"]:
        failure = {"code": row["failure_code"], "message": row["failure_message"]}
    return {
        "id": row["id"],
        "merchant_order_id": row["merchant_order_id"],
        "amount": row["amount_fen"],
        "fee": row["fee_fen"],
        "currency": row["currency"],
        "status": row["status"],
        "payee": row["payee"],
        "purpose": row["purpose"],
        "metadata": row["metadata"],
        "bank_id": row["bank_id"],
        "bank_ref": row["bank_ref"],
        "funding": {
            "balance": row["funding_balance_fen"],
            "advance": row["funding_advance_fen"],
        },
        "failure": failure,
        "account_id": row["account_id"],  # a withdrawal's personal account (提现), else None
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# What GET /v1/payouts[/{id}] reads (storage/owned.py).
PAYOUTS = Owned("payouts", COLUMNS, public, order_keys=True)
