"""Batches both ways through the real simulator (SPEC 9, 批量代付 / 批量回盘): the dispatcher's
batch submissions, the single-submission path for banks that take no batches, and one
callback POST whose items are each applied — or refused — on their own."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.client import MerchantClient
from gateway.settings import Settings
from tests.banks import BankWorld, bank_world
from tests.harness import wait_until
from tests.payloads import payout_body

CREDIT = 10_000_000
AMOUNT = 10_000
_accounts = itertools.count(1)


def payee() -> dict[str, Any]:
    return {"account_no": f"62220303{next(_accounts):011d}", "account_name": "Wang Wu",
            "bank_code": "102100099996", "account_type": "personal"}  # fmt: skip


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings) as w:
        await w.profile("102", outcomes={"succeeded": 1.0})
        yield w


async def pay_many(client: MerchantClient, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        resp = await client.post("/v1/payouts", payout_body(AMOUNT, payee=payee()))
        assert resp.status == 201, resp.body
        ids.append(resp.json()["id"])
    return ids


async def all_final(world: BankWorld, client: MerchantClient, ids: list[str]) -> list[str]:
    return [(await world.wait_payout(client, pid))["status"] for pid in ids]


async def bank_http(world: BankWorld, bank_id: str) -> dict[str, int]:
    stats: dict[str, int] = (await world.sim_get("/sim/stats"))["banks"][bank_id]["http"]
    return stats


async def test_payouts_go_to_the_bank_in_batch_requests_each_paid_once(world: BankWorld) -> None:
    _, client = await world.gw.merchant(CREDIT)
    ids = await pay_many(client, 12)
    assert await all_final(world, client, ids) == ["succeeded"] * 12
    http = await bank_http(world, "102")
    assert http["submit_batch"] >= 1 and http["submit"] == 0
    assert http["submit_batch"] < 12  # several payouts per request
    assert all(r["submissions"] == 1 for r in await world.records(bank_id="102"))
    assert (await world.gw.ledger_ok())["ok"]


async def test_items_the_bank_refuses_as_busy_wait_and_are_sent_again_alone(
    world: BankWorld,
) -> None:
    # The bank takes 3 a second; the gateway's quota lets more through, so a batch comes back
    # part accepted, part `bank_busy`: those wait and go again, and none is paid twice.
    await world.profile("102", tps=3)
    await world.channel("102", tps=1000)
    _, client = await world.gw.merchant(CREDIT)
    ids = await pay_many(client, 8)
    assert await all_final(world, client, ids) == ["succeeded"] * 8
    stats = (await world.sim_get("/sim/stats"))["banks"]["102"]
    assert stats["refused"]["busy"] >= 1
    assert all(r["submissions"] == 1 for r in await world.records(bank_id="102"))
    assert (await world.gw.ledger_ok())["ok"]


async def test_bank_that_takes_no_batches_gets_single_submissions(world: BankWorld) -> None:
    await world.profile("102", submit_batch_max=1)
    _, client = await world.gw.merchant(CREDIT)
    ids = await pay_many(client, 5)
    assert await all_final(world, client, ids) == ["succeeded"] * 5
    http = await bank_http(world, "102")
    # The first batch was refused before anything was recorded (404); then one by one.
    assert http["submit"] == 5
    assert all(r["submissions"] == 1 for r in await world.records(bank_id="102"))


async def test_channel_set_to_single_submissions_never_sends_a_batch(world: BankWorld) -> None:
    assert (await world.channel("102", submit_batch_max=1))["submit_batch_max"] == 1
    _, client = await world.gw.merchant(CREDIT)
    ids = await pay_many(client, 4)
    assert await all_final(world, client, ids) == ["succeeded"] * 4
    http = await bank_http(world, "102")
    assert (http["submit"], http["submit_batch"]) == (4, 0)


async def acked(world: BankWorld, client: MerchantClient, pid: str) -> dict[str, Any]:
    """Wait until the bank holds `pid` (its own final word decided, its callback lost)."""

    def decided(records: list[dict[str, Any]]) -> bool:
        return any(r["ref"] == pid and r["status"] != "processing" for r in records)

    await wait_until(lambda: world.records(bank_id="102"), decided)
    return await world.wait_payout(client, pid, {"processing"})


def word(pid: str, status: str, amount: int = AMOUNT, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"evt_{pid}_{status}_{next(_accounts)}", "ref": pid, "status": status,
            "amount": amount, "bank_ref": f"B{pid[-8:]}", **extra}  # fmt: skip


async def test_one_callback_post_applies_each_item_on_its_own(world: BankWorld) -> None:
    # Quiet payouts (their callbacks lost) and a late poll, so only our POST speaks for them.
    await world.channel("102", expected_ms=600_000)
    _, client = await world.gw.merchant(CREDIT)
    a, b, c, d = (payee() for _ in range(4))
    await world.script("102", a["account_no"], callback="lost")
    await world.script("102", b["account_no"], callback="lost")
    await world.script("102", c["account_no"], callback="lost")
    await world.script("102", d["account_no"], callback="lost", outcome="account_frozen")
    ids = []
    for to in (a, b, c, d):
        resp = await client.post("/v1/payouts", payout_body(AMOUNT, payee=to))
        assert resp.status == 201, resp.body
        ids.append(resp.json()["id"])
    pa, pb, pc, pd = ids
    for pid in ids:
        await acked(world, client, pid)

    resp = await world.callback("102", [
        word(pa, "succeeded"),
        word(pa, "succeeded"),  # a duplicate in the same POST
        word(pb, "returned", failure_code="account_closed"),  # a return (退票) before ...
        word(pb, "succeeded"),  # ... the success it implies
        word(pc, "failed", amount=AMOUNT + 1, failure_code="account_frozen"),  # wrong amount
        word("po_no_such_payout", "succeeded"),
        {"ref": pd, "status": "paid"},  # malformed: no event id or amount, unknown status
        word(pd, "failed", failure_code="account_frozen"),
    ])  # fmt: skip
    assert resp.status == 200, resp.body
    verdicts = [r["result"] for r in resp.json()["results"]]
    assert verdicts == ["applied", "no_change", "applied", "no_change", "mismatch", "not_found",
                        "invalid", "applied"]  # fmt: skip

    states = {pid: (await client.get(f"/v1/payouts/{pid}")).json()["status"]
              for pid in (pa, pb, pd)}  # fmt: skip
    assert states == {pa: "succeeded", pb: "returned", pd: "failed"}
    # The word with the wrong amount was not applied: c is asked about, and the bank's own
    # answer settles it.
    assert (await world.wait_payout(client, pc))["status"] == "succeeded"
    bal = (await client.get("/v1/balance")).json()
    # Four holds: a and c settled, b settled then returned (back to available), d released.
    assert bal["held"] == 0 and bal["available"] == CREDIT - 2 * AMOUNT
    assert (await world.gw.ledger_ok())["ok"]
