"""Merchant terms are read under the balance lock: an operator's change (a lowered 垫资 line,
a switch to prefunded, a suspension) that commits while accepts or a fronted collection wait
for that lock is what they decide on, so `advance_used` never ends above the line.

The deterministic tests hold the lock exactly as `PATCH /admin/merchants/{id}` does (the
balance row FOR UPDATE, then the terms) while requests queue behind it; the race test lowers
the line through the real PATCH while hundreds of accepts run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.banks import BankWorld
from tests.harness import LiveGateway, wait_until
from tests.integration.test_collections import collect, final, payer, personal_account, world
from tests.payloads import payout_body

__all__ = ["world"]  # the bank world fixture, for the collection test


async def _waiting_on_locks(gateway: LiveGateway, at_least: int) -> None:
    """Poll until `at_least` of the gateway's backends wait on a row lock."""
    conn = await gateway.db()
    try:

        async def probe() -> int:
            return int(
                await conn.fetchval(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE datname = current_database() AND wait_event_type = 'Lock'"""
                )
            )

        await wait_until(probe, lambda n: n >= at_least, timeout_s=10)
    finally:
        await conn.close()


async def _change_terms_while_queued(
    gateway: LiveGateway, merchant_id: str, sets: str, requests: list[Any]
) -> list[Any]:
    """Lock the balance row and change the merchant's terms in one open transaction (what
    PATCH /admin/merchants does), start `requests` so they queue behind the lock, commit."""
    conn = await gateway.db()
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE", merchant_id
            )
            await conn.execute(f"UPDATE merchants SET {sets} WHERE id = $1", merchant_id)
            tasks = [asyncio.ensure_future(r) for r in requests]
            await _waiting_on_locks(gateway, 1)
        return list(await asyncio.gather(*tasks))
    finally:
        await conn.close()


async def _used_and_limit(gateway: LiveGateway, merchant_id: str) -> tuple[int, int]:
    conn = await gateway.db()
    try:
        row = await conn.fetchrow(
            """SELECT b.advance_used_fen, m.advance_limit_fen
               FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
               WHERE b.merchant_id = $1""",
            merchant_id,
        )
    finally:
        await conn.close()
    return int(row["advance_used_fen"]), int(row["advance_limit_fen"])


@pytest.mark.parametrize(
    ("sets", "accepted", "refusal"),
    [
        ("advance_limit_fen = 5000", 0, "advance_limit_exceeded"),
        ("funding_mode = 'prefunded'", 0, "insufficient_funds"),
        ("status = 'suspended'", 0, "merchant_suspended"),
    ],
)
async def test_accepts_queued_behind_a_terms_change_decide_on_the_new_terms(
    gateway: LiveGateway, sets: str, accepted: int, refusal: str
) -> None:
    m, client = await gateway.merchant(funding_mode="advance", advance_limit=1_000_000)
    resps = await _change_terms_while_queued(
        gateway, m["id"], sets, [client.post("/v1/payouts", payout_body(10_000)) for _ in range(20)]
    )
    assert [r.status for r in resps].count(201) == accepted, [r.body for r in resps]
    assert {r.error_code for r in resps if r.status != 201} == {refusal}
    used, limit = await _used_and_limit(gateway, m["id"])
    assert used == accepted * 10_000 <= limit
    assert (await gateway.ledger_ok())["ok"]


async def test_a_failed_debit_queued_behind_a_lowered_line_is_not_fronted(
    world: BankWorld,
) -> None:
    m, client = await world.gw.merchant(0, funding_mode="advance", advance_limit=100_000)
    acc = await personal_account(client)
    who = payer()
    await world.script("102", who["account_no"], outcome="insufficient_balance")
    # The debit's failure reaches the gateway while the line is being lowered below it.
    [col] = await _change_terms_while_queued(
        world.gw, m["id"], "advance_limit_fen = 10000",
        [collect(client, acc, 30_000, who, advance_on_failure=True)],
    )  # fmt: skip
    done = await final(client, col["id"])
    assert (done["status"], done["advanced"]) == ("failed", 0), done
    balance = (await client.get("/v1/balance")).json()
    assert (balance["advance_used"], balance["advance_limit"]) == (0, 10_000)


async def _race_round(gateway: LiveGateway, patch_after: int) -> tuple[int, int]:
    """300 accepts on a fresh advance merchant; the line is lowered through the real PATCH
    once `patch_after` of them have been answered. Returns (advance used, line)."""
    m, client = await gateway.merchant(funding_mode="advance", advance_limit=3_000_000)
    answered = asyncio.Condition()
    count = 0

    async def accept() -> Any:
        nonlocal count
        resp = await client.post("/v1/payouts", payout_body(10_000))
        async with answered:
            count += 1
            answered.notify_all()
        return resp

    async def lower() -> None:
        async with answered:
            await answered.wait_for(lambda: count >= patch_after)
        resp = await gateway.admin.patch(f"/admin/merchants/{m['id']}",
                                         {"advance_limit": 1_000_000})  # fmt: skip
        # 422 when the advance in use is already above the new line.
        assert resp.status in (200, 422), resp.body

    *resps, _ = await asyncio.gather(*(accept() for _ in range(300)), lower())
    assert {r.status for r in resps} <= {201, 422}, [r.body for r in resps if r.status >= 500]
    return await _used_and_limit(gateway, m["id"])


async def test_lowering_the_line_while_hundreds_of_accepts_race_never_overruns_it(
    gateway: LiveGateway,
) -> None:
    for round_no in range(6):
        used, limit = await _race_round(gateway, patch_after=round_no * 15)
        assert used <= limit, (round_no, used, limit)
        check = await gateway.ledger_ok()
        assert check["ok"], [c for c in check["checks"] if not c["ok"]]
