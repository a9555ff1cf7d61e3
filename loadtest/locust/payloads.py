"""Random merchant request bodies for the Locust load (payouts, payout batches, B2B funding).

Every body carries a fresh uuid `merchant_order_id`: a kept database (PAYGATE_DATABASE_URL)
outlives runs, and a reused id would be an idempotent replay or a 409, not new load.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Final

import orjson

AMOUNT_MIN_FEN: Final = 100
AMOUNT_MAX_FEN: Final = 50_000
BATCH_SIZE: Final = 10
# Payee banks (first three digits of the 12-digit CNAPS code) and B2B payer banks.
PAYEE_BANK_PREFIXES: Final = ("102", "103", "104", "105", "308", "313")
B2B_PAYER_BANKS: Final = ("102", "103", "104", "105", "308")
B2B_AMOUNT_MIN_FEN: Final = 10_000
B2B_AMOUNT_MAX_FEN: Final = 5_000_000
PAYEE_NAMES: Final = ("Zhang San", "Li Si", "Wang Wu", "Zhao Liu", "张伟", "王芳", "李娜", "刘洋")
PAYER_NAMES: Final = ("Demo Trading Co", "Demo Logistics Ltd", "示例贸易有限公司")


def order_id(kind: str) -> str:
    return f"locust-{kind}-{uuid.uuid4().hex}"


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def payout_request(rng: random.Random) -> dict[str, Any]:
    """One payout to a random personal account (random, so payee velocity never binds)."""
    return {
        "merchant_order_id": order_id("po"),
        "amount": rng.randint(AMOUNT_MIN_FEN, AMOUNT_MAX_FEN),
        "currency": "CNY",
        "payee": {
            "account_no": "62" + _digits(rng, rng.randint(14, 17)),
            "account_name": rng.choice(PAYEE_NAMES),
            "bank_code": rng.choice(PAYEE_BANK_PREFIXES) + _digits(rng, 9),
            "account_type": "personal",
        },
    }


def payout_batch(rng: random.Random, size: int = BATCH_SIZE) -> dict[str, Any]:
    return {"items": [payout_request(rng) for _ in range(size)]}


def b2b_request(rng: random.Random) -> dict[str, Any]:
    return {
        "merchant_order_id": order_id("b2b"),
        "amount": rng.randint(B2B_AMOUNT_MIN_FEN, B2B_AMOUNT_MAX_FEN),
        "currency": "CNY",
        "payer_bank": rng.choice(B2B_PAYER_BANKS),
        "payer_account_name": rng.choice(PAYER_NAMES),
    }


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes that are both signed and sent."""
    return orjson.dumps(body)
