"""The demo merchants `paygate up` creates (idempotently): prefunded, advance, with review."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg

from gateway.ledger.credits import apply_credit
from gateway.merchants import model
from gateway.merchants import repo as merchants_repo
from protocol.errors import Conflict
from protocol.ids import new_secret

DEMO_MERCHANTS: tuple[dict[str, Any], ...] = (
    {
        "id": "m_demo_prefunded",
        "name": "Demo Prefunded Co (提前充值)",
        "funding_mode": "prefunded",
        "advance_limit_fen": 0,
        "review_threshold_fen": None,
        "seed_credit_fen": 50_000_000_00,
    },
    {
        "id": "m_demo_advance",
        "name": "Demo Advance Co (垫资)",
        "funding_mode": "advance",
        "advance_limit_fen": 20_000_000_00,
        "review_threshold_fen": None,
        # Little money of its own: its payouts soon run on the advance line (垫资), which its
        # B2B funding repays when it clears.
        "seed_credit_fen": 20_000_00,
    },
    {
        "id": "m_demo_review",
        "name": "Demo Reviewed Co (财务审核)",
        "funding_mode": "prefunded",
        "advance_limit_fen": 0,
        "review_threshold_fen": 5_000_000,
        "seed_credit_fen": 10_000_000_00,
    },
)


async def ensure_demo_merchants(
    conn: asyncpg.Connection, sink_url: str | None, rate_rps: int = 5000
) -> list[dict[str, Any]]:
    """Create (or find) the demo merchants; each is notified at `{sink_url}/notify/{id}`."""
    out = []
    for spec in DEMO_MERCHANTS:
        notify_url = f"{sink_url}/notify/{spec['id']}" if sink_url else None
        merchant = await merchants_repo.get(conn, spec["id"])
        if merchant is not None and merchant.notify_url != notify_url:
            # Ports change between runs on a kept database.
            await conn.execute(
                "UPDATE merchants SET notify_url = $2 WHERE id = $1", spec["id"], notify_url
            )
        if merchant is None:
            merchant = await merchants_repo.insert(
                conn,
                model.Merchant(
                    id=spec["id"],
                    name=spec["name"],
                    secret=new_secret(),
                    status="active",
                    funding_mode=spec["funding_mode"],
                    currency="CNY",
                    advance_limit_fen=spec["advance_limit_fen"],
                    fee_fixed_fen=100,
                    fee_bps=10,
                    max_amount_fen=model.DEFAULT_MAX_AMOUNT_FEN,
                    daily_amount_fen=model.DEFAULT_DAILY_AMOUNT_FEN,
                    daily_count=model.DEFAULT_DAILY_COUNT,
                    rate_limit_rps=rate_rps,
                    rate_limit_burst=rate_rps * 2,
                    review_threshold_fen=spec["review_threshold_fen"],
                    notify_url=notify_url,
                ),
            )
        # Seeded once: a database seeded by an earlier version with another amount keeps it.
        with contextlib.suppress(Conflict):
            await apply_credit(conn, merchant.id, spec["seed_credit_fen"], "CNY", "demo-seed")
        out.append(
            {
                "id": merchant.id,
                "name": merchant.name,
                "secret": merchant.secret,
                "funding_mode": merchant.funding_mode,
            }
        )
    return out
