"""Every bank answer is matched to its order by reference, bank and amount (issue 22 item 4),
through the real bank simulator over HTTP: a batch answered in shuffled order still reaches
each payout (and collection) by its ref; an answer — to a submission, a status query or in a
callback — that names another amount or comes from another bank is never applied: it is
counted (`paygate_bank_answer_mismatch_total{bank,hop}`) and the order is queried."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.client import MerchantClient
from gateway.settings import Settings
from protocol.ids import new_id
from tests.banks import FINAL_STATUSES, BankWorld, certain_world
from tests.harness import wait_until
from tests.integration.test_accounts import customer, ok, open_account
from tests.payloads import payout_body

CREDIT = 100_000_000
AMOUNT = 10_000
MISMATCHES = "paygate_bank_answer_mismatch_total"
# The bank decides at once and its answer is rendered after that, so the synchronous answer
# carries the final status; no callback ever comes: only answers to the gateway speak.
SPEAKS_ONLY_WHEN_ASKED: dict[str, Any] = {
    "callback_delay": {"median_ms": 0, "p99_ms": 0},
    "ack_latency": {"median_ms": 50, "p99_ms": 50},
    "callback_faults": {"lost": 1.0},
}
_accounts = itertools.count(1)


def payee() -> dict[str, Any]:
    return {"account_no": f"62220404{next(_accounts):011d}", "account_name": "Zhao Liu",
            "bank_code": "102100099996", "account_type": "personal"}  # fmt: skip


def payer() -> dict[str, Any]:
    return {"account_no": f"62170404{next(_accounts):011d}", "account_name": "Zhao Liu",
            "bank_code": "102100099996"}  # fmt: skip


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with certain_world(settings) as w:
        yield w


async def mismatches(world: BankWorld, bank: str = "102", hops: tuple[str, ...] = ()) -> float:
    """The mismatch counter summed over `hops` (all when empty), as /metrics shows it."""
    world.workers.metrics.flush()
    async with world.http.get(world.gw.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == MISMATCHES and s.labels.get("bank") == bank
        and (not hops or s.labels.get("hop") in hops)
    )  # fmt: skip


async def queries(world: BankWorld, bank_id: str = "102") -> int:
    n: int = (await world.sim_get("/sim/stats"))["banks"][bank_id]["http"]["query"]
    return n


async def paused(world: BankWorld, on: bool) -> None:
    resp = await world.gw.admin.patch("/admin/dispatch", {"paused": on})
    assert resp.status == 200, resp.body


async def queue_state(world: BankWorld, table: str, key: str, order_id: str) -> str | None:
    conn = await world.gw.db()
    try:
        state: str | None = await conn.fetchval(
            f"SELECT state FROM {table} WHERE {key} = $1", order_id
        )
        return state
    finally:
        await conn.close()


async def pay(client: MerchantClient, to: dict[str, Any], amount: int = AMOUNT) -> str:
    resp = await client.post("/v1/payouts", payout_body(amount, payee=to))
    assert resp.status == 201, resp.body
    return str(resp.json()["id"])


def assert_as_the_bank_says(order: dict[str, Any], record: dict[str, Any]) -> None:
    assert (order["status"], order["bank_ref"], order["amount"]) == (
        record["status"], record["bank_ref"], record["amount"]), (order, record)  # fmt: skip
    if record["status"] == "failed":
        assert order["failure"]["code"] == record["failure_code"], (order, record)


async def test_shuffled_batch_answers_reach_each_payout_by_its_ref(world: BankWorld) -> None:
    await world.profile("102", answer_faults={"shuffle_batch": 1.0}, **SPEAKS_ONLY_WHEN_ASKED)
    _, client = await world.gw.merchant(CREDIT)
    payees = [payee() for _ in range(12)]
    for to in payees[::3]:
        await world.script("102", to["account_no"], outcome="account_frozen")
    await paused(world, True)  # all twelve go out in one batch, answered out of order
    ids = [await pay(client, to, AMOUNT + n) for n, to in enumerate(payees)]
    await paused(world, False)
    done = [await world.wait_payout(client, pid) for pid in ids]
    records = {r["ref"]: r for r in await world.records(bank_id="102")}
    for payout in done:
        assert_as_the_bank_says(payout, records[payout["id"]])
    assert [p["status"] for p in done] == ["failed", "succeeded", "succeeded"] * 4
    assert (await world.sim_get("/sim/stats"))["banks"]["102"]["http"]["submit_batch"] >= 1
    assert all(r["submissions"] == 1 for r in records.values())
    assert await mismatches(world) == 0  # out of order is no mismatch: matched by ref


async def test_wrong_amount_in_a_submission_answer_is_not_applied_and_is_queried(
    world: BankWorld,
) -> None:
    await world.profile("102", answer_faults={"wrong_amount_submit": 1.0},
                        **SPEAKS_ONLY_WHEN_ASKED)  # fmt: skip
    _, client = await world.gw.merchant(CREDIT)
    before = await mismatches(world, hops=("submit", "batch"))
    pid = await pay(client, payee())
    done = await world.wait_payout(client, pid)
    # The answer said `succeeded` for another amount: only the query's true word settled it.
    assert await queries(world) >= 1
    assert await mismatches(world, hops=("submit", "batch")) == before + 1
    assert_as_the_bank_says(done, await world.record(pid))
    assert done["status"] == "succeeded"


async def test_wrong_amount_in_status_answers_never_completes_the_payout(
    world: BankWorld,
) -> None:
    await world.profile("102", answer_faults={"wrong_amount_submit": 1.0,
                        "wrong_amount_query": 1.0}, **SPEAKS_ONLY_WHEN_ASKED)  # fmt: skip
    _, client = await world.gw.merchant(CREDIT, fee_fixed=100)
    before = await mismatches(world, hops=("query",))
    pid = await pay(client, payee())

    async def status_and_queries() -> tuple[str, int]:
        return (await client.get(f"/v1/payouts/{pid}")).json()["status"], await queries(world)

    # The bank has paid it, but every answer names another amount: asked again and again.
    status, _ = await wait_until(status_and_queries,
                                 lambda s: s[0] in FINAL_STATUSES or s[1] >= 3)  # fmt: skip
    assert status == "processing"
    # The bank counts a query when it answers; the gateway counts the mismatch after reading
    # that answer, a moment later: poll for it (it was asserted at once and raced, 2 < 3).
    seen = await wait_until(lambda: mismatches(world, hops=("query",)),
                            lambda n: n >= before + 3)  # fmt: skip
    assert seen >= before + 3
    assert await queue_state(world, "payout_queue", "payout_id", pid) == "unknown"
    assert (await client.get("/v1/balance")).json()["held"] == AMOUNT + 100
    assert (await world.record(pid))["status"] == "succeeded"
    # The bank answers truly again: the next query settles it.
    await world.profile("102", answer_faults={"wrong_amount_query": 0.0})
    done = await world.wait_payout(client, pid)
    assert_as_the_bank_says(done, await world.record(pid))
    assert (await client.get("/v1/balance")).json()["held"] == 0


async def test_mismatched_callbacks_are_counted_and_the_payout_is_queried(
    world: BankWorld,
) -> None:
    await world.channel("102", expected_ms=600_000)  # no poll of its own for ten minutes
    await world.profile("102", callback_faults={"lost": 1.0})
    _, client = await world.gw.merchant(CREDIT)
    pid = await pay(client, payee())
    # Acked while processing, then decided at the bank: only a query or a callback tells it.
    await wait_until(lambda: queue_state(world, "payout_queue", "payout_id", pid),
                     lambda s: s == "acked")  # fmt: skip
    await wait_until(lambda: world.record(pid), lambda r: r["status"] == "succeeded")
    bank_ref = (await world.record(pid))["bank_ref"]
    before = (await mismatches(world, "102", ("callback",)),
              await mismatches(world, "103", ("callback",)))  # fmt: skip
    asked = await queries(world)
    wrong_amount = {"event_id": new_id("evt"), "ref": pid, "status": "failed",
                    "amount": AMOUNT + 1, "bank_ref": bank_ref}  # fmt: skip
    unknown = dict(wrong_amount, event_id=new_id("evt"), ref="po_no_such_payout", amount=AMOUNT)
    resp = await world.callback("102", [wrong_amount, unknown])
    assert [r["result"] for r in resp.json()["results"]] == ["mismatch", "not_found"]
    foreign = dict(wrong_amount, event_id=new_id("evt"), amount=AMOUNT)  # another bank's word
    resp = await world.callback("103", [foreign])
    assert [r["result"] for r in resp.json()["results"]] == ["mismatch"]
    assert (
        await mismatches(world, "102", ("callback",)),
        await mismatches(world, "103", ("callback",)),
    ) == (before[0] + 2, before[1] + 1)
    # Neither word was applied; the payout is asked about now, and ends as the bank says.
    done = await world.wait_payout(client, pid)
    assert await queries(world) > asked
    assert_as_the_bank_says(done, await world.record(pid))
    assert done["status"] == "succeeded"


async def collect(client: MerchantClient, account_id: str, amount: int,
                  who: dict[str, Any]) -> str:  # fmt: skip
    body = {"merchant_order_id": new_id("c"), "account_id": account_id, "amount": amount,
            "currency": "CNY", "payer": who}  # fmt: skip
    return str(ok(await client.post("/v1/collections", body))["id"])


async def collection(client: MerchantClient, collection_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return ok(await client.get(f"/v1/collections/{collection_id}"), 200)

    return await wait_until(probe, lambda c: c["status"] != "pending", timeout_s=20)


async def test_shuffled_and_misstated_answers_reach_each_collection_by_its_ref(
    world: BankWorld,
) -> None:
    await world.profile("102", answer_faults={"shuffle_batch": 1.0}, **SPEAKS_ONLY_WHEN_ASKED)
    _, client = await world.gw.merchant(0)
    acc = await open_account(client, await customer(client, new_id("u")))
    payers = [payer() for _ in range(9)]
    for who in payers[::3]:
        await world.script("102", who["account_no"], outcome="card_frozen")
    await paused(world, True)
    ids = [await collect(client, acc, AMOUNT + n, who) for n, who in enumerate(payers)]
    await paused(world, False)
    done = [await collection(client, cid) for cid in ids]
    records = {r["ref"]: r for r in await world.records(bank_id="102")}
    for col in done:
        assert_as_the_bank_says(col, records[col["id"]])
    assert [c["status"] for c in done] == ["failed", "succeeded", "succeeded"] * 3

    # Debits whose every answer names another amount stay pending, asked about again.
    await world.profile("102", answer_faults={"wrong_amount_submit": 1.0,
                                              "wrong_amount_query": 1.0})  # fmt: skip
    before = await mismatches(world, hops=("query",))
    cid = await collect(client, acc, AMOUNT, payer())
    await wait_until(lambda: mismatches(world, hops=("query",)), lambda n: n >= before + 2)
    assert ok(await client.get(f"/v1/collections/{cid}"), 200)["status"] == "pending"
    assert await queue_state(world, "collection_queue", "collection_id", cid) == "unknown"
    await world.profile("102", answer_faults={"wrong_amount_submit": 0.0,
                                              "wrong_amount_query": 0.0})  # fmt: skip
    assert_as_the_bank_says(await collection(client, cid), await world.record(cid))


async def test_a_mismatched_collection_callback_is_counted_and_the_collection_queried(
    world: BankWorld,
) -> None:
    await world.channel("102", expected_ms=600_000)  # no poll of its own for ten minutes
    await world.profile("102", callback_faults={"lost": 1.0})
    _, client = await world.gw.merchant(0)
    acc = await open_account(client, await customer(client, new_id("u")))
    cid = await collect(client, acc, AMOUNT, payer())
    await wait_until(lambda: queue_state(world, "collection_queue", "collection_id", cid),
                     lambda s: s == "acked")  # fmt: skip
    await wait_until(lambda: world.record(cid), lambda r: r["status"] == "succeeded")
    before = await mismatches(world, hops=("callback",))
    word = {"event_id": new_id("evt"), "kind": "collection", "ref": cid, "status": "failed",
            "amount": AMOUNT - 1, "failure_code": "card_frozen"}  # fmt: skip
    quiet = dict(word, event_id=new_id("evt"), status="processing")  # changes nothing: checked
    resp = await world.callback("102", [word, quiet])
    assert [r["result"] for r in resp.json()["results"]] == ["mismatch", "mismatch"]
    assert await mismatches(world, hops=("callback",)) == before + 2
    done = await collection(client, cid)  # asked about at once: the bank's own word
    assert_as_the_bank_says(done, await world.record(cid))
    assert done["status"] == "succeeded"
