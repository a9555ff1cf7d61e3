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


# One payee bank per channel, and one (313) that only the interbank channel reaches.
BANK_CODES = ["102100099996", "103100000019", "104100000017", "105100000018", "308584000013",
              "313100000013"]  # fmt: skip


def spread_payouts(n: int, tag: str) -> list[dict[str, Any]]:
    """`n` payout bodies to distinct payees, cycling over every channel's payee bank."""
    codes = itertools.cycle(BANK_CODES)
    return [
        payout_body(
            1_000 + i,
            order_id=f"{tag}-{i}",
            payee={
                "account_no": f"6217{tag}{i:08d}",
                "account_name": "Wang Wu",
                "bank_code": next(codes),
                "account_type": "personal",
            },
        )
        for i in range(n)
    ]
