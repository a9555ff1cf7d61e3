"""A client whose answer was lost sends the request again, maybe several times at once: each
mutating endpoint that moves money or opens an object does it once (ARCHITECTURE.md, "Retry
safety"). Every request below is sent RETRIES times concurrently; the ledger check passes
after every test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.client import ApiResponse
from tests.harness import LiveGateway
from tests.integration.test_accounts import account, customer, figures, funded_user, open_account
from tests.integration.test_collections import collection_body
from tests.payloads import payout_body

RETRIES = 12
CARD = {"account_no": "6222000011112222", "account_name": "Li Si", "bank_code": "102100099996"}


@pytest.fixture
async def gw(gateway: LiveGateway) -> AsyncIterator[LiveGateway]:
    yield gateway
    check = await gateway.ledger_ok()
    assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


async def at_once(send: Callable[[], Awaitable[ApiResponse]]) -> dict[str, Any]:
    """Send RETRIES copies together: one creates (201), the others replay it (200, the same
    object). Returns the object."""
    replies = await asyncio.gather(*(send() for _ in range(RETRIES)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * (RETRIES - 1) + [201], [(r.status, r.body) for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
    created: dict[str, Any] = replies[0].json()
    return created


async def test_a_credit_sent_many_times_at_once_credits_once(gw: LiveGateway) -> None:
    m, client = await gw.merchant()
    await at_once(lambda: gw.admin.credit(m["id"], 5_000, "wire-1"))
    assert (await client.get("/v1/balance")).json()["available"] == 5_000


async def test_a_merchant_created_many_times_at_once_with_a_reference_is_made_once(
    gw: LiveGateway,
) -> None:
    body = {"name": "Acme", "reference": "onboarding-acme-1", "funding_mode": "advance"}
    made = await at_once(lambda: gw.admin.post("/admin/merchants", body))
    assert made["secret"]  # every answer carries it: the first one may be the one lost
    listed = (await gw.admin.get("/admin/merchants?limit=200")).json()["data"]
    assert [m["id"] for m in listed if m["name"] == "Acme"] == [made["id"]]
    other = await gw.admin.post("/admin/merchants", body | {"funding_mode": "prefunded"})
    assert (other.status, other.error_code) == (409, "idempotency_conflict")
    assert other.json()["error"]["field"] == "reference"
    # Without a reference each call makes a merchant (no key, as SPEC 11 has it).
    plain = [await gw.admin.post("/admin/merchants", {"name": "Plain"}) for _ in range(2)]
    assert [r.status for r in plain] == [201, 201]
    assert plain[0].json()["id"] != plain[1].json()["id"]


async def test_customers_and_accounts_sent_many_times_at_once_open_once(gw: LiveGateway) -> None:
    _, client = await gw.merchant()
    body = {"external_id": "user-1", "name": "Zhang San"}
    cus = (await at_once(lambda: client.post("/v1/customers", body)))["id"]
    top = {"customer_id": cus, "purpose": "wallet", "currency": "CNY"}
    acc = (await at_once(lambda: client.post("/v1/accounts", top)))["id"]
    sub = top | {"parent_id": acc, "purpose": "loan"}
    await at_once(lambda: client.post("/v1/accounts", sub))
    listed = (await client.get(f"/v1/accounts?customer_id={cus}")).json()["data"]
    assert len(listed) == 2


async def test_a_transfer_and_a_freeze_sent_many_times_at_once_move_money_once(
    gw: LiveGateway,
) -> None:
    _, client = await gw.merchant(10_000)
    _, src = await funded_user(client, 1_000)
    dst = await open_account(client, await customer(client, "user-dst"))
    body = {"merchant_order_id": "t-1", "from_account": src, "to_account": dst, "amount": 300}
    await at_once(lambda: client.post("/v1/transfers", body))
    freeze = {"merchant_order_id": "f-1", "account_id": src, "amount": 200, "reason": "claim"}
    await at_once(lambda: client.post("/v1/freezes", freeze))
    assert figures(await account(client, src)) == (500, 200, 700)
    assert figures(await account(client, dst)) == (300, 0, 300)


async def test_a_payout_and_a_collection_sent_many_times_at_once_are_taken_once(
    gw: LiveGateway,
) -> None:
    _, client = await gw.merchant(10_000)
    _, acc = await funded_user(client, 0)
    body = payout_body(3_000, "po-1")
    await at_once(lambda: client.post("/v1/payouts", body))
    balance = (await client.get("/v1/balance")).json()
    assert (balance["available"], balance["held"]) == (7_000, 3_000)
    col = collection_body(acc, 2_000, CARD, order="c-1")
    await at_once(lambda: client.post("/v1/collections", col))
    listed = (await client.get("/v1/collections?merchant_order_id=c-1")).json()["data"]
    assert [c["status"] for c in listed] == ["pending"]


async def test_review_decisions_sent_many_times_at_once_apply_once(gw: LiveGateway) -> None:
    """Approves and rejects of one payout race: one decision is taken (money released at
    most once); every other answers 409 invalid_state."""
    _, client = await gw.merchant(100_000, review_threshold=5_000)
    payout = (await client.post("/v1/payouts", payout_body(8_000, "po-big"))).json()
    assert payout["status"] == "review_pending"
    path = f"/admin/payouts/{payout['id']}"
    replies = await asyncio.gather(
        *(gw.admin.post(f"{path}/{'reject' if i % 2 else 'approve'}") for i in range(RETRIES))
    )
    taken = [r for r in replies if r.status == 200]
    assert len(taken) == 1, [(r.status, r.body) for r in replies]
    assert {r.error_code for r in replies if r.status != 200} == {"invalid_state"}
    balance = (await client.get("/v1/balance")).json()
    if taken[0].json()["status"] == "rejected":
        assert (balance["available"], balance["held"]) == (100_000, 0)
    else:
        assert (balance["available"], balance["held"]) == (92_000, 8_000)
