"""The storage ceiling (SPEC 13): the accept transaction driven directly with asyncpg, no
HTTP — what the database allows, to compare the HTTP acceptance rate with."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.contract.requests import Payee, PayoutRequest
from gateway.payouts.accept import accept_batch
from gateway.payouts.model import AcceptItem, request_hash
from gateway.storage.pools import init_connection
from risk.rules import RiskRules

NO_VELOCITY = RiskRules(payee_velocity_per_hour=10**9)


def _items(merchants: Sequence[str], n: int, rng: random.Random, tag: str) -> list[AcceptItem]:
    out = []
    for _ in range(n):
        payee = Payee(str(rng.randint(10**15, 10**16 - 1)), "Bench Payee", "102100099996",
                      "personal")  # fmt: skip
        req = PayoutRequest(
            merchant_order_id=f"sc-{tag}-{rng.getrandbits(64):016x}",
            amount=rng.randint(100, 50_000),
            currency="CNY",
            payee=payee,
        )
        out.append(AcceptItem(rng.choice(merchants), req, request_hash(req)))
    return out


async def storage_ceiling(
    database_url: str,
    merchants: Sequence[str],
    *,
    seconds: float,
    batch: int,
    concurrency: int,
    tag: str,
) -> dict[str, Any]:
    """Accepts per second with `concurrency` transactions of `batch` items each."""
    pool = await asyncpg.create_pool(database_url, init=init_connection,
                                     min_size=concurrency, max_size=concurrency)  # fmt: skip
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        rng = random.Random(f"{tag}-{k}")
        async with pool.acquire() as conn:
            while time.monotonic() < deadline:
                items = _items(merchants, batch, rng, f"{tag}{k}")
                results = await accept_batch(conn, items, datetime.now(UTC), NO_VELOCITY)
                done += sum(1 for r in results if r.http_status == 201)

    started = time.monotonic()
    try:
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    finally:
        await pool.close()
    took = time.monotonic() - started
    return {"accepts_per_s": round(done / took), "accepted": done, "seconds": round(took, 2),
            "batch": batch, "concurrency": concurrency, "merchants": len(merchants)}  # fmt: skip
