"""README's P2P walk (SPEC 16), call by call, through the real bank simulator: invest
(collection + 商转个), lend (个转个 + 个转商 + 代付 from the borrower's account), repay
(collection with advance_on_failure: fronted, then repaid by the next success), transfer a
claim (freeze + transfer from_freeze). Every figure README quotes is asserted here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.settings import Settings
from tests.banks import BankWorld, certain_world
from tests.integration.test_accounts import customer, freeze, ok, open_account, settlement, transfer
from tests.integration.test_collections import collect, exposure_of, final
from tests.integration.test_withdrawals import available
from tests.payloads import payout_body

INVESTOR_CARD = {"account_no": "6222000011112222", "account_name": "Li Si",
                 "bank_code": "102100099996"}  # fmt: skip
BORROWER_CARD = {"account_no": "6222000033334444", "account_name": "Wang Wu",
                 "bank_code": "102100099996"}  # fmt: skip


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with certain_world(settings) as w:
        yield w


async def test_p2p_lender_end_to_end(world: BankWorld) -> None:
    m, client = await world.gw.merchant(0, funding_mode="advance", advance_limit=500_000,
                                         fee_fixed=200)  # fmt: skip
    acc_s = await settlement(client)
    acc_i = await open_account(client, await customer(client, "investor-1", "Li Si"))
    acc_j = await open_account(client, await customer(client, "investor-2", "Zhao Liu"))
    acc_b = await open_account(client, await customer(client, "borrower-1", "Wang Wu"))

    # invest: the investor's card into the platform, then credited to the investor's wallet.
    col = await final(client, (await collect(client, acc_s, 1_000_000, INVESTOR_CARD))["id"])
    assert col["status"] == "succeeded"
    ok(await transfer(client, acc_s, acc_i, 1_000_000))
    assert await available(client, acc_i) == 1_000_000

    # lend: the loan to the borrower, the platform's fee, the rest paid out to the borrower.
    assert ok(await transfer(client, acc_i, acc_b, 800_000))["kind"] == "personal_to_personal"
    assert ok(await transfer(client, acc_b, acc_s, 8_000))["kind"] == "personal_to_merchant"
    body = payout_body(792_000, payee=BORROWER_CARD | {"account_type": "personal"})
    payout = ok(await client.post("/v1/payouts", body | {"account_id": acc_b}))
    assert (await world.wait_payout(client, payout["id"]))["status"] == "succeeded"
    assert await available(client, acc_b) == 0
    assert ok(await client.get(f"/v1/accounts/{acc_s}"), 200)["available"] == 8_000 - 200

    # repay: the borrower's card is empty this month; the company fronts the instalment.
    await world.script("102", BORROWER_CARD["account_no"], outcome="insufficient_balance")
    first = await final(client, (await collect(client, acc_i, 100_000, BORROWER_CARD,
                                               advance_on_failure=True))["id"])  # fmt: skip
    assert (first["status"], first["failure"]["code"], first["advanced"]) == (
        "failed", "insufficient_balance", 100_000)  # fmt: skip
    assert await available(client, acc_i) == 200_000 + 100_000
    exposed = await exposure_of(world, m["id"])
    assert (exposed["advance_used"], exposed["collections_fronted"]) == (100_000, 100_000)
    await world.script("102", BORROWER_CARD["account_no"], outcome="succeeded")
    second = await final(client, (await collect(client, acc_i, 100_000, BORROWER_CARD))["id"])
    assert (second["status"], second["repaid"]) == ("succeeded", 100_000)
    assert await available(client, acc_i) == 300_000  # the company was repaid first
    exposed = await exposure_of(world, m["id"])
    assert (exposed["advance_used"], exposed["collections_fronted"]) == (0, 0)

    # transfer a claim (债权转让): freeze it, then hand the frozen money to another investor.
    frz = ok(await freeze(client, acc_i, 300_000, reason="claim"))
    claim = ok(await transfer(client, acc_i, acc_j, 300_000, from_freeze=frz["id"]))
    assert claim["from_freeze"] == frz["id"]
    assert await available(client, acc_j) == 300_000
    assert ok(await client.get(f"/v1/freezes/{frz['id']}"), 200)["status"] == "transferred"
