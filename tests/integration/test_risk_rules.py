"""Risk rules on accept (SPEC 8): each boundary one fen / one count under and over."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.client import MerchantClient
from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent, apply_events
from gateway.settings import Settings
from tests.harness import LiveGateway, live_gateway
from tests.payloads import payout_body

CREDIT = 100_000_000


def to(account_no: str) -> dict[str, Any]:
    return {"account_no": account_no, "account_name": "Zhao Liu", "bank_code": "102100099996",
            "account_type": "personal"}  # fmt: skip


async def post(client: MerchantClient, amount: int, account_no: str = "6222000000000001") -> Any:
    return await client.post("/v1/payouts", payout_body(amount, payee=to(account_no)))


async def test_max_amount_boundary(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT, max_amount=5_000)
    assert (await post(client, 5_000)).status == 201
    over = await post(client, 5_001)
    assert over.status == 422 and over.error_code == "amount_limit_exceeded"


async def test_daily_amount_boundary_one_fen(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT, daily_amount=10_000)
    assert (await post(client, 6_000)).status == 201
    over = await post(client, 4_001)
    assert over.status == 422 and over.error_code == "daily_limit_exceeded"
    assert (await post(client, 4_000)).status == 201  # exactly the limit
    assert (await post(client, 1)).error_code == "daily_limit_exceeded"


async def test_daily_count_boundary(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT, daily_count=3)
    assert [(await post(client, 100)).status for _ in range(3)] == [201] * 3
    over = await post(client, 100)
    assert over.status == 422 and over.error_code == "daily_limit_exceeded"


async def test_daily_count_is_exact_under_concurrency(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT, daily_count=25)
    bodies = [payout_body(100, payee=to(f"62220000{i:08d}")) for i in range(60)]
    responses = await asyncio.gather(*(client.post("/v1/payouts", b) for b in bodies))
    assert sorted(r.status for r in responses) == [201] * 25 + [422] * 35


async def test_failed_payout_gives_its_daily_budget_back(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT, daily_count=1, daily_amount=10_000)
    first = await post(client, 10_000)
    assert first.status == 201
    assert (await post(client, 1)).error_code == "daily_limit_exceeded"
    conn = await gateway.db()
    try:
        pid = first.json()["id"]
        fail = PayoutEvent(pid, Event.FAIL, failure_code="account_frozen")
        [applied] = await apply_events(conn, [fail])
        assert applied.applied
    finally:
        await conn.close()
    assert (await post(client, 10_000)).status == 201


async def test_blocked_payee_is_refused_until_unblocked(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT)
    entry = {"account_no": "6222000000000666", "reason": "fraud"}
    blocked = await gateway.admin.post("/admin/blocklist", entry)
    assert blocked.status == 201, blocked.body
    listed = await gateway.admin.get("/admin/blocklist")
    assert [e["account_no"] for e in listed.json()["data"]] == ["6222000000000666"]
    refused = await post(client, 100, "6222000000000666")
    assert refused.status == 422 and refused.error_code == "payee_blocked"
    assert refused.json()["error"]["field"] == "payee.account_no"
    assert (await post(client, 100, "6222000000000667")).status == 201
    assert (await gateway.admin.delete("/admin/blocklist/6222000000000666")).status == 204
    assert (await post(client, 100, "6222000000000666")).status == 201
    assert (await gateway.admin.delete("/admin/blocklist/6222000000000666")).status == 404


async def test_payee_velocity_counts_across_merchants(settings: Settings) -> None:
    async with live_gateway(settings.with_(payee_velocity_per_hour=3)) as gw:
        _, a = await gw.merchant(CREDIT)
        _, b = await gw.merchant(CREDIT)
        assert (await post(a, 100, "6222000000000777")).status == 201
        assert (await post(b, 100, "6222000000000777")).status == 201
        assert (await post(a, 100, "6222000000000777")).status == 201
        over = await post(b, 100, "6222000000000777")
        assert over.status == 422 and over.error_code == "velocity_limit_exceeded"
        assert (await post(b, 100, "6222000000000778")).status == 201
        resp = await gw.admin.get("/admin/ledger/check")
        assert resp.json()["ok"]
