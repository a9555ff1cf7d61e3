"""A B2B payment's public shape (SPEC 11) and its idempotency fingerprint."""

from __future__ import annotations

from typing import Any

from gateway.contract.requests import B2BRequest
from gateway.fingerprint import request_fingerprint
from gateway.storage.owned import Owned

COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, amount_fen, currency, payer_bank,"
    " payer_account_name, status, version, clearing, clearing_cutoff, expected_clear_at,"
    " bank_ref, bank_page_url, notified_at, cleared_at, failure_code, failure_message,"
    " created_at, updated_at"
)


def request_hash(req: B2BRequest) -> str:
    return request_fingerprint(req)


def public(row: Any) -> dict[str, Any]:
    failure = None
    if row["failure_code"]:
        failure = {"code": row["failure_code"], "message": row["failure_message"]}
    return {
        "id": row["id"],
        "merchant_order_id": row["merchant_order_id"],
        "amount": row["amount_fen"],
        "currency": row["currency"],
        "payer_bank": row["payer_bank"],
        "payer_account_name": row["payer_account_name"],
        "status": row["status"],
        "bank_ref": row["bank_ref"],
        "bank_page_url": row["bank_page_url"],
        "clearing": row["clearing"],
        "expected_clear_at": row["expected_clear_at"],
        "notified_at": row["notified_at"],
        "cleared_at": row["cleared_at"],
        "failure": failure,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# What GET /v1/b2b-payments[/{id}] reads (storage/owned.py).
B2B_PAYMENTS = Owned("b2b_payments", COLUMNS, public)
