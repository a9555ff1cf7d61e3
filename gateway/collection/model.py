"""A collection's public shape (SPEC 16) and its columns."""

from __future__ import annotations

from typing import Any

from gateway.storage.owned import Owned

COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, account_id, amount_fen, currency, payer,"
    " payer_account_no, advance_on_failure, status, version, bank_id, bank_ref, failure_code,"
    " failure_message, advanced_fen, repaid_fen, created_at, updated_at, bank_date"
)


def public(row: Any) -> dict[str, Any]:
    """`advanced`: what the company fronted when the debit failed (公司垫付); `repaid`: how much
    of this success went to repay earlier advances for the same payer (the rest was credited)."""
    failure = None
    if row["failure_code"]:
        failure = {"code": row["failure_code"], "message": row["failure_message"]}
    return {
        "id": row["id"],
        "merchant_order_id": row["merchant_order_id"],
        "account_id": row["account_id"],
        "amount": row["amount_fen"],
        "currency": row["currency"],
        "payer": row["payer"],
        "advance_on_failure": row["advance_on_failure"],
        "status": row["status"],
        "bank_id": row["bank_id"],
        "bank_ref": row["bank_ref"],
        "failure": failure,
        "advanced": row["advanced_fen"],
        "repaid": row["repaid_fen"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# What GET /v1/collections[/{id}] reads (storage/owned.py).
COLLECTIONS = Owned("collections", COLUMNS, public, order_keys=True)
