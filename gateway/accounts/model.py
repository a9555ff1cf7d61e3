"""The public shapes of customers, accounts, transfers and freezes (SPEC 16), their columns
and the idempotency fingerprints."""

from __future__ import annotations

from typing import Any

from gateway.storage.owned import Owned

CUSTOMER_COLUMNS = "id, merchant_id, kind, external_id, name, created_at"
ACCOUNT_COLUMNS = (
    "id, merchant_id, customer_id, parent_id, kind, purpose, currency, depth, created_at"
)
TRANSFER_COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, from_account, to_account, kind,"
    " amount_fen, currency, from_freeze, status, created_at"
)
FREEZE_COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, account_id, amount_fen, released_fen,"
    " transferred_fen, currency, reason, status, version, created_at, updated_at"
)

MAX_DEPTH = 4  # a top account is depth 0; sub-accounts go at most four levels down
SETTLEMENT_PURPOSE = "settlement"


def customer(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "external_id": row["external_id"],
        "name": row["name"],
        "kind": row["kind"],
        "created_at": row["created_at"],
    }


def _figures(available_fen: int, frozen_fen: int) -> dict[str, int]:
    return {"available": available_fen, "frozen": frozen_fen, "total": available_fen + frozen_fen}


def account(row: Any) -> dict[str, Any]:
    """From a row with the account's columns, its own balance (`available_fen`,
    `frozen_fen`) and its subtree's (`rollup_available_fen`, `rollup_frozen_fen`)."""
    return {
        "id": row["id"],
        "customer_id": row["customer_id"],
        "parent_id": row["parent_id"],
        "kind": row["kind"],
        "purpose": row["purpose"],
        "currency": row["currency"],
        **_figures(row["available_fen"], row["frozen_fen"]),
        "rollup": _figures(row["rollup_available_fen"], row["rollup_frozen_fen"]),
        "created_at": row["created_at"],
    }


def transfer(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "merchant_order_id": row["merchant_order_id"],
        "kind": row["kind"],
        "from_account": row["from_account"],
        "to_account": row["to_account"],
        "amount": row["amount_fen"],
        "currency": row["currency"],
        "from_freeze": row["from_freeze"],
        "status": row["status"],
        "created_at": row["created_at"],
    }


def freeze(row: Any) -> dict[str, Any]:
    amount, released, transferred = row["amount_fen"], row["released_fen"], row["transferred_fen"]
    return {
        "id": row["id"],
        "merchant_order_id": row["merchant_order_id"],
        "account_id": row["account_id"],
        "amount": amount,
        "released": released,
        "transferred": transferred,
        "remaining": amount - released - transferred,
        "currency": row["currency"],
        "reason": row["reason"],
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# What GET /v1/transfers[/{id}] and /v1/freezes[/{id}] read (storage/owned.py).
TRANSFERS = Owned("transfers", TRANSFER_COLUMNS, transfer, order_keys=True)
FREEZES = Owned("freezes", FREEZE_COLUMNS, freeze)
