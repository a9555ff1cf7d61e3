"""Payouts through the real bank simulator (issue 4): submit, callbacks, queries, routing."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from gateway.client import MerchantClient
from gateway.settings import Settings
from tests.banks import BankWorld, bank_world
from tests.harness import wait_until
from tests.payloads import payout_body

CREDIT = 10_000_000
AMOUNT = 12_345
FEE_FIXED = 100
_accounts = itertools.count(1)


def payee(bank_code: str = "102100099996") -> dict[str, Any]:
    return {
        "account_no": f"62220202{next(_accounts):011d}",
        "account_name": "Li Si",
        "bank_code": bank_code,
        "account_type": "personal",
    }


RETURN_SOON = {"median_ms": 100, "p99_ms": 300}


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings) as w:
        for bank_id in ("102", "103", "104", "105", "308", "ibps"):
            # Only what a test scripts goes wrong.
            await w.profile(bank_id, outcomes={"succeeded": 1.0}, return_delay=RETURN_SOON)
        yield w


async def merchant(world: BankWorld) -> tuple[dict[str, Any], MerchantClient]:
    return await world.gw.merchant(CREDIT, fee_fixed=FEE_FIXED)


async def pay(client: MerchantClient, to: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/payouts", payout_body(AMOUNT, payee=to))
    assert resp.status == 201, resp.body
    data: dict[str, Any] = resp.json()
    return data


async def balance(client: MerchantClient) -> dict[str, Any]:
    resp = await client.get("/v1/balance")
    assert resp.status == 200, resp.body
    data: dict[str, Any] = resp.json()
    return data


async def test_payout_succeeds_through_its_own_bank(world: BankWorld) -> None:
    _, client = await merchant(world)
    po = await pay(client, payee("102100099996"))
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "succeeded"
    assert done["bank_id"] == "102" and done["bank_ref"]
    bal = await balance(client)
    assert bal["available"] == CREDIT - AMOUNT - FEE_FIXED and bal["held"] == 0
    record = await world.record(po["id"])
    assert record["status"] == "succeeded" and record["submissions"] == 1
    assert record["amount"] == AMOUNT
    assert (await world.gw.ledger_ok())["ok"]


async def test_payee_at_a_bank_without_channel_goes_interbank(world: BankWorld) -> None:
    _, client = await merchant(world)
    po = await pay(client, payee("313100000013"))  # a city commercial bank: no direct channel
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "succeeded" and done["bank_id"] == "ibps"


@pytest.mark.parametrize(
    "code",
    ["account_not_found", "account_name_mismatch", "account_frozen", "over_bank_limit",
     "account_closed"],
)  # fmt: skip
async def test_each_bank_failure_releases_the_hold(world: BankWorld, code: str) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], outcome=code)
    po = await pay(client, to)
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "failed"
    assert done["failure"]["code"] == code and done["failure"]["message"]
    bal = await balance(client)
    assert bal["available"] == CREDIT and bal["held"] == 0
    assert (await world.gw.ledger_ok())["ok"]


async def test_return_after_success_credits_the_amount_and_keeps_the_fee(
    world: BankWorld,
) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], returned=True)
    po = await pay(client, to)
    done = await world.wait_payout(client, po["id"], {"returned"})
    assert done["failure"]["code"]
    bal = await balance(client)
    assert bal["available"] == CREDIT - FEE_FIXED and bal["held"] == 0
    assert (await world.records(bank_id="102", status="returned"))[0]["ref"] == po["id"]
    assert (await world.gw.ledger_ok())["ok"]


async def _settle_entries(world: BankWorld, payout_id: str) -> list[str]:
    conn = await world.gw.db()
    try:
        rows = await conn.fetch(
            "SELECT kind FROM journal_entries WHERE ref_id = $1 ORDER BY created_at", payout_id
        )
    finally:
        await conn.close()
    return [r["kind"] for r in rows]


async def test_duplicate_callbacks_do_not_settle_twice(world: BankWorld) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], callback="duplicate")
    po = await pay(client, to)
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "succeeded"
    # The simulator sends the word twice; wait until both have been delivered.
    await wait_until(lambda: world.sim_get("/sim/stats"),
                     lambda s: s["banks"]["102"]["callbacks"]["sent"] >= 2)  # fmt: skip
    # And the same word again, signed, by hand: applied once, no change after.
    again = await world.callback("102", [{
        "event_id": "evt-dup-1", "ref": po["id"], "status": "succeeded", "amount": AMOUNT,
        "bank_ref": done["bank_ref"]}])  # fmt: skip
    assert again.status == 200, again.body
    assert again.json()["results"][0]["result"] == "no_change"
    assert (await _settle_entries(world, po["id"])).count("payout_settle") == 1
    bal = await balance(client)
    assert bal["available"] == CREDIT - AMOUNT - FEE_FIXED
    assert (await world.gw.ledger_ok())["ok"]


async def test_return_before_success_word_still_ends_returned(world: BankWorld) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], returned=True, callback="out_of_order")
    po = await pay(client, to)
    done = await world.wait_payout(client, po["id"], {"returned"})
    assert done["status"] == "returned"
    kinds = await _settle_entries(world, po["id"])
    assert kinds.count("payout_settle") == 1 and kinds.count("payout_return") == 1, kinds
    assert (await balance(client))["available"] == CREDIT - FEE_FIXED


async def test_contradicting_words_never_change_a_final_state(world: BankWorld) -> None:
    _, client = await merchant(world)
    ok = await pay(client, payee())
    to = payee()
    await world.script("102", to["account_no"], returned=True)
    back = await pay(client, to)
    ok_done = await world.wait_payout(client, ok["id"])
    await world.wait_payout(client, back["id"], {"returned"})
    before = await balance(client)
    late = await world.callback("102", [
        {"event_id": "evt-x1", "ref": ok["id"], "status": "failed", "amount": AMOUNT,
         "failure_code": "account_frozen"},
        {"event_id": "evt-x2", "ref": back["id"], "status": "succeeded", "amount": AMOUNT},
        {"event_id": "evt-x3", "ref": back["id"], "status": "failed", "amount": AMOUNT},
    ])  # fmt: skip
    assert late.status == 200, late.body
    assert [r["result"] for r in late.json()["results"]] == ["no_change"] * 3
    assert (await world.wait_payout(client, ok["id"]))["status"] == ok_done["status"]
    assert (await world.wait_payout(client, back["id"]))["status"] == "returned"
    assert await balance(client) == before
    assert (await world.gw.ledger_ok())["ok"]


@pytest.mark.parametrize("fault", ["lost", "very_late"])
async def test_silent_bank_is_polled_until_final(world: BankWorld, fault: str) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], callback=fault)
    po = await pay(client, to)
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "succeeded"
    assert world.workers.poller.queries >= 1
    assert (await world.record(po["id"]))["submissions"] == 1
    assert (await world.gw.ledger_ok())["ok"]


@pytest.mark.parametrize("sync", ["timeout", "reset"])
async def test_unknown_outcome_is_queried_never_resubmitted(world: BankWorld, sync: str) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], sync=sync)
    po = await pay(client, to)
    done = await world.wait_payout(client, po["id"])
    assert done["status"] == "succeeded"
    assert (await world.record(po["id"]))["submissions"] == 1
    assert (await balance(client))["held"] == 0


async def test_bank_busy_at_its_tps_cap_waits_and_pays_everything_once(world: BankWorld) -> None:
    await world.profile("103", tps=5)  # the bank takes less than the gateway's quota allows
    _, client = await merchant(world)
    items = [payout_body(100, payee=payee("103100000019")) for _ in range(30)]
    resp = await client.post("/v1/payout-batches", {"items": items})
    assert resp.status == 200 and resp.json()["accepted"] == 30, resp.body
    ids = [i["payout"]["id"] for i in resp.json()["items"]]
    for pid in ids:
        assert (await world.wait_payout(client, pid, timeout_s=30))["status"] == "succeeded"
    stats = await world.sim_get("/sim/stats")
    assert stats["banks"]["103"]["refused"]["busy"] > 0, stats
    records = await world.records(bank_id="103")
    assert sorted(r["ref"] for r in records) == sorted(ids)
    assert all(r["submissions"] == 1 for r in records)


async def test_channel_quota_keeps_submissions_under_the_tps(world: BankWorld) -> None:
    tps = 10
    await world.channel("104", tps=tps)
    _, client = await merchant(world)
    items = [payout_body(100, payee=payee("104100000017")) for _ in range(40)]
    resp = await client.post("/v1/payout-batches", {"items": items})
    assert resp.status == 200 and resp.json()["accepted"] == 40, resp.body
    ids = [i["payout"]["id"] for i in resp.json()["items"]]
    for pid in ids:
        assert (await world.wait_payout(client, pid, timeout_s=30))["status"] == "succeeded"
    times = sorted(datetime.fromisoformat(r["accepted_at"]).timestamp()
                   for r in await world.records(bank_id="104"))  # fmt: skip
    # No second-long window holds more than the rate plus the bucket's burst, give or take
    # two arrivals of network jitter (without the quota, all 40 would arrive at once).
    burst = max(1, tps // 5)
    densest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert densest <= tps + burst + 2, densest
    assert (await world.sim_get("/sim/stats"))["banks"]["104"]["refused"]["busy"] == 0


async def test_maintenance_opens_the_breaker_and_moves_traffic_to_interbank(
    world: BankWorld,
) -> None:
    _, client = await merchant(world)
    await world.profile("105", maintenance_now=True)
    first = [await pay(client, payee("105100000018")) for _ in range(6)]
    for po in first:
        done = await world.wait_payout(client, po["id"], timeout_s=20)
        assert done["status"] == "succeeded" and done["bank_id"] == "ibps", done
    ch = await world.channel("105")
    assert ch["breaker"]["state"] in ("open", "half_open"), ch
    # The bank comes back: the next probe succeeds and closes the breaker.
    await world.profile("105", maintenance_now=False)

    async def send_and_see() -> dict[str, Any]:
        po = await pay(client, payee("105100000018"))
        return await world.wait_payout(client, po["id"], timeout_s=20)

    done = await wait_until(send_and_see, lambda p: p["bank_id"] == "105", timeout_s=20)
    assert done["status"] == "succeeded"
    assert (await world.channel("105"))["breaker"]["state"] == "closed"
    refs = {r["ref"] for r in await world.records(bank_id="105")}
    assert not refs & {po["id"] for po in first}  # the bank never took those: no double pay


async def test_forged_or_tampered_callbacks_are_refused_and_change_nothing(
    world: BankWorld,
) -> None:
    _, client = await merchant(world)
    to = payee()
    await world.script("102", to["account_no"], callback="lost")
    await world.channel("102", expected_ms=60_000)  # keep it processing: no early poll
    po = await pay(client, to)
    await world.wait_payout(client, po["id"], {"processing"})
    # "processing" is recorded before the submission is sent: wait for the bank's own record.
    await wait_until(lambda: world.records(bank_id="102", status="succeeded"),
                     lambda rs: any(r["ref"] == po["id"] for r in rs))  # fmt: skip
    word = {"event_id": "evt-f1", "ref": po["id"], "status": "failed", "amount": AMOUNT,
            "failure_code": "account_frozen"}  # fmt: skip
    forged = world.bank_client("102", secret="not-the-bank-key")
    resp = await forged.post("/callbacks/102", {"items": [word]})
    assert resp.status == 401 and resp.error_code == "invalid_signature"
    # Another bank's valid key does not speak for bank 102.
    other = world.bank_client("103")
    resp = await other.post("/callbacks/102", {"items": [word]})
    assert resp.status == 401 and resp.error_code == "invalid_signature"
    # Signed headers, body changed in flight.
    bank = world.bank_client("102")
    good = b'{"items":[{"event_id":"evt-f2","ref":"%s","status":"failed","amount":%d}]}' % (
        po["id"].encode(), AMOUNT)  # fmt: skip
    headers = bank._auth_headers("POST", "/callbacks/102", good)
    tampered = good.replace(b"failed", b"succeeded")
    resp = await bank.request("POST", "/callbacks/102", body=tampered, headers=headers)
    assert resp.status == 401 and resp.error_code == "invalid_signature"
    resp = await world.callback("102", [dict(word, ref="po_does_not_exist")])
    assert resp.status == 404 and resp.error_code == "not_found"
    assert (await world.wait_payout(client, po["id"], {"processing"}))["failure"] is None
    assert (await balance(client))["held"] == AMOUNT + FEE_FIXED
    assert (await world.gw.ledger_ok())["ok"]


async def test_paused_dispatch_keeps_payouts_queued_until_resumed(world: BankWorld) -> None:
    resp = await world.gw.admin.patch("/admin/dispatch", {"paused": True})
    assert resp.status == 200 and resp.json()["paused"] is True, resp.body
    _, client = await merchant(world)
    po = await pay(client, payee())
    # A dispatcher round finds nothing to send while paused (the worker's own rounds too).
    assert await world.workers.dispatcher.run_once() == 0
    assert (await client.get(f"/v1/payouts/{po['id']}")).json()["status"] == "accepted"
    assert not [r for r in await world.records() if r["ref"] == po["id"]]
    resp = await world.gw.admin.patch("/admin/dispatch", {"paused": False})
    assert resp.status == 200 and resp.json()["paused"] is False
    assert (await world.wait_payout(client, po["id"]))["status"] == "succeeded"
    bad = await world.gw.admin.patch("/admin/dispatch", {"paused": "yes"})
    assert bad.status == 400 and bad.error_code == "invalid_request"


async def test_a_fast_banks_acks_are_never_written_once_its_callbacks_finished_the_payouts(
    world: BankWorld,
) -> None:
    # The bank answers "processing" and calls back 50 ms later: every payout is final before
    # its held ack is due (1 s), so the dispatcher finds it gone from `sending` and writes none
    # of those acks.
    await world.profile("102", callback_delay={"median_ms": 50, "p99_ms": 50})
    _, client = await merchant(world)
    dispatcher = world.workers.dispatcher
    written = dispatcher.acks_written
    ids = [(await pay(client, payee(f"1021000999{n:02d}")))["id"] for n in range(5)]
    for pid in ids:
        done = await world.wait_payout(client, pid)
        assert done["status"] == "succeeded" and done["bank_ref"]
    await dispatcher.record_acks(everything=True)
    assert dispatcher.acks_written == written
    assert dispatcher.acks_moot >= len(ids)
    assert (await world.gw.ledger_ok())["ok"]


async def test_a_slow_banks_ack_is_written_once_held_and_the_payout_then_waits_acked(
    world: BankWorld,
) -> None:
    await world.profile("102", callback_delay={"median_ms": 600_000, "p99_ms": 600_000})
    await world.channel("102", expected_ms=600_000)  # no query of its own for ten minutes
    _, client = await merchant(world)
    dispatcher = world.workers.dispatcher
    written = dispatcher.acks_written
    pid = (await pay(client, payee("102100099990")))["id"]
    conn = await world.gw.db()
    try:

        async def queued() -> tuple[str | None, str | None]:
            row = await conn.fetchrow(
                """SELECT q.state, p.bank_ref FROM payout_queue q
                   JOIN payouts p ON p.id = q.payout_id WHERE q.payout_id = $1""",
                pid,
            )
            return (row["state"], row["bank_ref"]) if row else (None, None)

        _, bank_ref = await wait_until(queued, lambda s: s[0] == "acked")
    finally:
        await conn.close()
    assert bank_ref and bank_ref == (await world.record(pid))["bank_ref"]
    assert dispatcher.acks_written == written + 1
    assert (await world.wait_payout(client, pid, {"processing"}))["bank_ref"] == bank_ref


async def test_a_moot_ack_still_tells_its_bank_date_to_a_payout_finished_without_one(
    world: BankWorld,
) -> None:
    # Held for 1 s (the channel's first poll is ten minutes away); meanwhile a word without a
    # business date (here an operator-forged `failed`) finishes the payout. The ack is moot,
    # but its bank date is what reconciliation files the payout under.
    await world.profile("102", callback_delay={"median_ms": 600_000, "p99_ms": 600_000})
    await world.channel("102", expected_ms=600_000)
    _, client = await merchant(world)
    dispatcher = world.workers.dispatcher
    written, moot = dispatcher.acks_written, dispatcher.acks_moot
    pid = (await pay(client, payee("102100099991")))["id"]
    await world.wait_payout(client, pid, {"processing"})
    forged = await world.callback("102", [{
        "event_id": f"forged-{pid}", "ref": pid, "status": "failed", "amount": AMOUNT,
        "failure_code": "bank_failed", "failure_message": "forged"}])  # fmt: skip
    assert forged.status == 200 and forged.json()["results"][0]["result"] == "applied"
    conn = await world.gw.db()
    try:

        async def bank_date() -> Any:
            return await conn.fetchval("SELECT bank_date FROM payouts WHERE id = $1", pid)

        day = await wait_until(bank_date, lambda d: d is not None)
    finally:
        await conn.close()
    assert day.isoformat() == (await world.record(pid))["business_date"]
    assert (dispatcher.acks_written, dispatcher.acks_moot) == (written, moot + 1)
