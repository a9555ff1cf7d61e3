"""Request bodies for tests."""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)


def payout_body(amount: int = 10_000, order_id: str | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_order_id": order_id or f"o-{next(_counter)}",
        "amount": amount,
        "currency": "CNY",
        "payee": {
            "account_no": "6222020200112233445",
            "account_name": "Zhang San",
            "bank_code": "102100099996",
            "account_type": "personal",
        },
    }
    body.update(over)
    return body
