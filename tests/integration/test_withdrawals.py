"""Withdrawals (提现, SPEC 16): a payout that names `account_id` is drawn from that personal
account (个转商 + 代付 in one transaction), through the real bank simulator. Money that comes
back (failed, returned) goes back to the account; frozen money cannot be paid out; concurrent
withdrawals never overdraw the account. The ledger check passes after every test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.client import MerchantClient
from gateway.settings import Settings
from tests.banks import BankWorld, bank_world
from tests.integration.test_accounts import (
    customer,
    freeze,
    ok,
    open_account,
    refused,
    settlement,
    transfer,
)
from tests.integration.test_bank_channels import RETURN_SOON, payee
from tests.payloads import payout_body

FEE = 100


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings) as w:
        for bank_id in ("102", "103", "104", "105", "308", "ibps"):
            await w.profile(bank_id, outcomes={"succeeded": 1.0}, return_delay=RETURN_SOON)
        yield w
        check = await w.gw.ledger_ok()
        assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


async def funded_account(client: MerchantClient, amount: int) -> str:
    """A user's 金账户 with `amount` in it (商转个 from the merchant's settlement account)."""
    acc = await open_account(client, await customer(client, f"user-{amount}"))
    ok(await transfer(client, await settlement(client), acc, amount))
    return acc


async def available(client: MerchantClient, account_id: str) -> int:
    return int(ok(await client.get(f"/v1/accounts/{account_id}"), 200)["available"])


async def merchant_available(client: MerchantClient) -> int:
    return int(ok(await client.get("/v1/balance"), 200)["available"])


def withdrawal(account_id: str, amount: int, to: dict[str, Any] | None = None) -> Any:
    return payout_body(amount, payee=to or payee()) | {"account_id": account_id}


async def test_withdrawal_pays_out_of_the_personal_account(world: BankWorld) -> None:
    _, client = await world.gw.merchant(20_000, fee_fixed=FEE)
    acc = await funded_account(client, 10_000)
    po = ok(await client.post("/v1/payouts", withdrawal(acc, 6_000)))
    assert po["account_id"] == acc
    assert await available(client, acc) == 4_000  # gone at accept, with the payout's hold
    assert (await world.wait_payout(client, po["id"]))["status"] == "succeeded"
    assert await available(client, acc) == 4_000
    # The merchant paid only the fee (its own terms); the amount was the user's.
    assert await merchant_available(client) == 20_000 - 10_000 - FEE
    plain = ok(await client.post("/v1/payouts", payout_body(500, payee=payee())))
    assert plain["account_id"] is None


@pytest.mark.parametrize("ending", ["failed", "returned"])
async def test_money_coming_back_goes_back_to_the_account(world: BankWorld, ending: str) -> None:
    _, client = await world.gw.merchant(20_000, fee_fixed=FEE)
    acc = await funded_account(client, 10_000)
    to = payee()
    script = {"outcome": "account_not_found"} if ending == "failed" else {"returned": True}
    await world.script("102", to["account_no"], **script)
    po = ok(await client.post("/v1/payouts", withdrawal(acc, 6_000, to)))
    assert (await world.wait_payout(client, po["id"], {ending}))["status"] == ending
    assert await available(client, acc) == 10_000
    fee_kept = FEE if ending == "returned" else 0  # a return keeps the fee (SPEC 6)
    assert await merchant_available(client) == 20_000 - 10_000 - fee_kept


async def test_withdrawal_refusals(world: BankWorld) -> None:
    _, client = await world.gw.merchant(20_000, fee_fixed=FEE)
    _, other = await world.gw.merchant(20_000)
    acc = await funded_account(client, 10_000)
    ok(await freeze(client, acc, 7_000))
    refused(await client.post("/v1/payouts", withdrawal(acc, 5_000)), 422,
            "account_frozen_funds")  # fmt: skip
    refused(await client.post("/v1/payouts", withdrawal(acc, 20_000)), 422,
            "insufficient_funds")  # fmt: skip
    refused(await other.post("/v1/payouts", withdrawal(acc, 100)), 404, "not_found")
    refused(await client.post("/v1/payouts", withdrawal(await settlement(client), 100)), 404,
            "not_found")  # fmt: skip
    refused(await client.post("/v1/payouts", withdrawal("acc_nope", 100)), 404, "not_found")
    assert await available(client, acc) == 3_000  # nothing left the account
    assert await merchant_available(client) == 10_000


async def test_concurrent_withdrawals_never_overdraw_the_account(world: BankWorld) -> None:
    _, client = await world.gw.merchant(50_000)
    acc = await funded_account(client, 10_000)
    answers = await asyncio.gather(
        *(client.post("/v1/payouts", withdrawal(acc, 1_000)) for _ in range(25))
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [201] * 10 + [422] * 15, statuses
    assert await available(client, acc) == 0
