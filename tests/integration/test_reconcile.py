"""Reconciliation (对账, SPEC 10) against the real bank simulator over HTTP, real PG and Redis:
clean days, a lost 退票 notice applied, planted statement differences, the dangerous
"bank paid what the gateway failed", exceptions and their resolution, the CLI and the
nightly run. Every test ends with the ledger check passing."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.client import MerchantClient
from gateway.recon.command import NOT_RUNNING, reconcile_command
from gateway.settings import Settings
from tests.banks import BankWorld, bank_world
from tests.harness import LiveGateway, free_port, live_gateway, wait_until
from tests.payloads import payout_body

CREDIT = 10_000_000
AMOUNT = 12_345
FEE = 100
BANKS = ("102", "103", "104", "105", "308", "ibps")
# A payee bank per channel; 313 (a city commercial bank) goes interbank.
PAYEE_BANKS = ("102100099996", "103100000019", "104100000017", "105100000018", "308584000013",
               "313100000013")  # fmt: skip
_accounts = itertools.count(1)


def payee(bank_code: str = "102100099996") -> dict[str, Any]:
    return {"account_no": f"62170303{next(_accounts):011d}", "account_name": "Zhao Liu",
            "bank_code": bank_code, "account_type": "personal"}  # fmt: skip


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings.with_(recon_check_s=0.1)) as w:
        for bank_id in BANKS:
            await w.profile(bank_id, outcomes={"succeeded": 0.8, "account_not_found": 0.2},
                            callback_delay={"median_ms": 50, "p99_ms": 200})  # fmt: skip
        yield w


async def pay(client: MerchantClient, to: dict[str, Any], amount: int = AMOUNT) -> str:
    resp = await client.post("/v1/payouts", payout_body(amount, payee=to))
    assert resp.status == 201, resp.body
    payout_id: str = resp.json()["id"]
    return payout_id


async def books(world: BankWorld, payout_id: str) -> dict[str, Any]:
    conn = await world.gw.db()
    try:
        row = await conn.fetchrow(
            "SELECT status, bank_id, bank_ref, bank_date, amount_fen FROM payouts WHERE id = $1",
            payout_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


async def reconcile(world: BankWorld, bank_id: str, day: str, apply: bool = False) -> Any:
    resp = await world.gw.admin.post("/admin/reconcile",
                                     {"bank_id": bank_id, "date": day, "apply": apply})  # fmt: skip
    assert resp.status == 200, resp.body
    return resp.json()


async def open_exceptions(gw: LiveGateway, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    resp = await gw.admin.get("/admin/recon-exceptions" + (f"?{qs}" if qs else ""))
    assert resp.status == 200, resp.body
    data: list[dict[str, Any]] = resp.json()["data"]
    return data


async def plant(world: BankWorld, bank_id: str, fault: dict[str, Any]) -> None:
    async with world.http.post(f"{world.sim_url}/sim/banks/{bank_id}/statement-faults",
                               data=orjson.dumps(fault)) as resp:  # fmt: skip
        assert resp.status in (200, 201), (resp.status, await resp.text())


async def wait_bank_status(world: BankWorld, payout_id: str, status: str) -> None:
    async def probe() -> dict[str, Any]:
        return await world.record(payout_id)

    await wait_until(probe, lambda r: r["status"] == status, timeout_s=15)


async def lost_return(world: BankWorld, client: MerchantClient, return_after_ms: float) -> str:
    """A payout bank 102 pays and later returns, losing every callback: the poller finishes it
    as succeeded (the return has not happened yet) and nobody tells the gateway of the
    return. Returns once the bank has returned it."""
    to = payee()
    delay = {"median_ms": return_after_ms, "p99_ms": return_after_ms}
    await world.profile("102", outcomes={"succeeded": 1.0}, return_delay=delay)
    await world.script("102", to["account_no"], returned=True, callback="lost")
    pid = await pay(client, to)
    assert (await world.wait_payout(client, pid))["status"] == "succeeded"
    await wait_bank_status(world, pid, "returned")
    return pid


async def assert_ledger_ok(gw: LiveGateway) -> None:
    check = await gw.ledger_ok()
    assert check["ok"], [c for c in check["checks"] if not c["ok"]]


async def test_a_clean_day_reconciles_with_no_exceptions(world: BankWorld) -> None:
    _, client = await world.gw.merchant(CREDIT, fee_fixed=FEE)
    ids = [await pay(client, payee(PAYEE_BANKS[i % len(PAYEE_BANKS)])) for i in range(36)]
    done = [await world.wait_payout(client, pid) for pid in ids]
    assert {p["status"] for p in done} == {"succeeded", "failed"}
    rows = [await books(world, pid) for pid in ids]
    assert all(r["bank_date"] is not None for r in rows), "every payout knows its bank date"
    per_bank: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["bank_id"], r["bank_date"].isoformat())
        per_bank[key] = per_bank.get(key, 0) + 1
    for (bank_id, day), count in sorted(per_bank.items()):
        report = await reconcile(world, bank_id, day, apply=True)
        assert report["id"].startswith("rec_") and (report["bank_id"], report["date"]) == (
            bank_id, day)  # fmt: skip
        assert report["items"] == [], report["items"]
        assert report["summary"] == {"matched": count, "status_mismatch": 0,
                                     "amount_mismatch": 0, "missing_at_gateway": 0,
                                     "missing_at_bank": 0, "applied": 0}  # fmt: skip
    assert await open_exceptions(world.gw) == []
    await assert_ledger_ok(world.gw)


async def test_a_lost_return_notice_is_found_and_applied(world: BankWorld) -> None:
    _, client = await world.gw.merchant(CREDIT, fee_fixed=FEE)
    pid = await lost_return(world, client, 1500)
    row = await books(world, pid)
    day = row["bank_date"].isoformat()

    dry = await reconcile(world, "102", day)
    assert dry["summary"]["status_mismatch"] == 1 and dry["summary"]["applied"] == 0
    (item,) = dry["items"]
    assert (item["kind"], item["payout_id"]) == ("status_mismatch", pid)
    assert item["bank_ref"] == row["bank_ref"] + "R" and item["bank"]["status"] == "returned"
    assert item["gateway"]["status"] == "succeeded" and item["action"].startswith("safe")
    assert (await books(world, pid))["status"] == "succeeded"  # nothing applied without apply

    applied = await reconcile(world, "102", day, apply=True)
    assert applied["summary"]["applied"] == 1
    assert applied["items"][0]["action"] == "applied: succeeded -> returned"
    done = await world.wait_payout(client, pid, {"returned"})
    assert done["failure"]["code"] == "returned"
    balance = (await client.get("/v1/balance")).json()
    assert balance["available"] == CREDIT - FEE and balance["held"] == 0
    assert await open_exceptions(world.gw) == []
    again = await reconcile(world, "102", day, apply=True)  # now it all matches
    assert again["items"] == [] and again["summary"]["matched"] == 2
    await assert_ledger_ok(world.gw)


async def test_planted_differences_become_exceptions_once(world: BankWorld) -> None:
    _, client = await world.gw.merchant(CREDIT, fee_fixed=FEE)
    await world.profile("102", outcomes={"succeeded": 1.0})
    dropped, changed, kept = [await pay(client, payee()) for _ in range(3)]
    for pid in (dropped, changed, kept):
        await world.wait_payout(client, pid)
    rows = {pid: await books(world, pid) for pid in (dropped, changed, kept)}
    day = rows[kept]["bank_date"].isoformat()
    await plant(world, "102", {"kind": "extra_line", "amount": 777, "date": day})
    await plant(world, "102", {"kind": "drop_line", "bank_ref": rows[dropped]["bank_ref"]})
    await plant(world, "102", {"kind": "amount_change", "bank_ref": rows[changed]["bank_ref"],
                               "amount": AMOUNT + 1})  # fmt: skip

    report = await reconcile(world, "102", day, apply=True)
    s = report["summary"]
    assert (s["matched"], s["missing_at_gateway"], s["missing_at_bank"], s["amount_mismatch"],
            s["status_mismatch"], s["applied"]) == (1, 1, 1, 1, 0, 0)  # fmt: skip
    by_kind = {i["kind"]: i for i in report["items"]}
    extra = by_kind["missing_at_gateway"]
    assert extra["payout_id"] is None and extra["bank"]["amount"] == 777
    assert extra["gateway"] is None
    missing = by_kind["missing_at_bank"]
    assert missing["payout_id"] == dropped and missing["bank"] is None
    assert missing["bank_ref"] == rows[dropped]["bank_ref"]
    amount = by_kind["amount_mismatch"]
    assert amount["payout_id"] == changed
    assert (amount["bank"]["amount"], amount["gateway"]["amount"]) == (AMOUNT + 1, AMOUNT)
    assert all(i["action"].startswith("exception: ") for i in report["items"])
    listed = await open_exceptions(world.gw, bank_id="102")
    assert {e["id"] for e in listed} == {i["exception_id"] for i in report["items"]}
    assert {e["kind"] for e in listed} == set(by_kind)

    rerun = await reconcile(world, "102", day)  # the same differences: no new exceptions
    assert {i["exception_id"] for i in rerun["items"]} == {e["id"] for e in listed}
    assert all(i["action"].startswith("exception (open): ") for i in rerun["items"])
    assert len(await open_exceptions(world.gw)) == 3
    assert await open_exceptions(world.gw, bank_id="103") == []
    # Nothing moved money: each payout is as it was.
    assert [(await books(world, pid))["status"] for pid in rows] == ["succeeded"] * 3
    await assert_ledger_ok(world.gw)


async def test_bank_paid_a_payout_the_gateway_failed_is_loud_and_resolved_by_adjustment(
    world: BankWorld, caplog: pytest.LogCaptureFixture
) -> None:
    merchant, client = await world.gw.merchant(CREDIT, fee_fixed=FEE)
    # The bank pays slowly; before it does, a forged `failed` word reaches the gateway.
    await world.profile("102", outcomes={"succeeded": 1.0},
                        callback_delay={"median_ms": 1500, "p99_ms": 1500})  # fmt: skip
    pid = await pay(client, payee())
    await world.wait_payout(client, pid, {"processing"})
    forged = await world.callback("102", [{
        "event_id": "forged-1", "ref": pid, "status": "failed", "amount": AMOUNT,
        "failure_code": "bank_no_record", "failure_message": "forged"}])  # fmt: skip
    assert forged.status == 200 and forged.json()["results"][0]["result"] == "applied"
    assert (await world.wait_payout(client, pid))["status"] == "failed"
    await wait_bank_status(world, pid, "succeeded")  # ... and the bank paid it anyway
    released = (await client.get("/v1/balance")).json()
    assert released["available"] == CREDIT
    day = (await books(world, pid))["bank_date"].isoformat()

    with caplog.at_level(logging.WARNING, logger="paygate.recon"):
        report = await reconcile(world, "102", day, apply=True)
    (item,) = report["items"]
    assert (item["kind"], item["payout_id"]) == ("status_mismatch", pid)
    assert item["action"].startswith("exception: bank paid a payout the gateway failed")
    assert "bank_no_record" in item["action"] and report["summary"]["applied"] == 0
    loud = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "paygate.recon"]
    assert loud and getattr(loud[0], "payout_id", None) == pid
    assert (await books(world, pid))["status"] == "failed"  # never applied

    (ex,) = await open_exceptions(world.gw)
    assert ex["id"] == item["exception_id"] and ex["status"] == "open"
    path = f"/admin/recon-exceptions/{ex['id']}/resolve"
    too_much = {"note": "claw back", "adjustment": {"merchant_id": merchant["id"],
                                                    "amount": -(CREDIT + 1)}}  # fmt: skip
    refused = await world.gw.admin.post(path, too_much)
    assert refused.status == 409 and refused.error_code == "insufficient_funds"
    for bad in ({"note": ""}, {"note": " "}, {}, {"note": "x", "adjustment": {
            "merchant_id": merchant["id"], "amount": 0}}, {"note": "x", "extra": 1}):  # fmt: skip
        resp = await world.gw.admin.post(path, bad)
        assert resp.status == 400 and resp.error_code == "invalid_request", (bad, resp.body)
    note = "bank confirmed payment; debit the merchant who got the hold back"
    body = {"note": note, "adjustment": {"merchant_id": merchant["id"], "amount": -AMOUNT}}
    resp = await world.gw.admin.post(path, body)
    assert resp.status == 200, resp.body
    resolved = resp.json()
    assert resolved["status"] == "resolved" and resolved["note"] == note
    assert resolved["adjustment_entry_id"].startswith("je_") and resolved["resolved_at"]
    assert (await client.get("/v1/balance")).json()["available"] == CREDIT - AMOUNT
    twice = await world.gw.admin.post(path, {"note": "again"})
    assert twice.status == 409 and twice.error_code == "already_resolved"
    assert await open_exceptions(world.gw) == []
    assert [e["id"] for e in await open_exceptions(world.gw, status="resolved")] == [ex["id"]]
    # A re-run still shows the difference, but does not reopen what an operator resolved.
    rerun = await reconcile(world, "102", day)
    assert rerun["items"][0]["action"].startswith(f"resolved before ({ex['id']})")
    assert await open_exceptions(world.gw) == []
    await assert_ledger_ok(world.gw)


async def test_the_cli_prints_the_table_and_fails_without_a_gateway(world: BankWorld) -> None:
    info = {"gateway_url": world.gw.url, "admin_token": world.gw.settings.admin_token}
    day = (await world.gw.admin.get("/admin/clock")).json()["business_date"]
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(reconcile_command, info, "102", day, apply=False,
                                   as_json=False, out=out, err=err)  # fmt: skip
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith("reconciliation rec_") and "matched 0" in out.getvalue()
    code = await asyncio.to_thread(reconcile_command, info, "102", day, apply=False,
                                   as_json=True, out=(js := io.StringIO()), err=err)  # fmt: skip
    assert code == 0 and orjson.loads(js.getvalue())["bank_id"] == "102"
    code = await asyncio.to_thread(reconcile_command, info, "999", day, apply=False,
                                   as_json=False, out=out, err=err)  # fmt: skip
    assert code == 1 and "404 not_found" in err.getvalue()
    gone = {"gateway_url": f"http://127.0.0.1:{free_port()}", "admin_token": "x"}
    code = await asyncio.to_thread(reconcile_command, gone, "102", day, apply=False,
                                   as_json=False, out=out, err=err)  # fmt: skip
    assert code == NOT_RUNNING and "not answering" in err.getvalue()
    await assert_ledger_ok(world.gw)


async def test_the_nightly_run_reconciles_every_bank_once_after_1am(world: BankWorld) -> None:
    _, client = await world.gw.merchant(CREDIT, fee_fixed=FEE)
    pid = await lost_return(world, client, 1000)
    day = (await books(world, pid))["bank_date"]
    # A day and an hour later (simulated), D's statements are ready.
    resp = await world.gw.admin.post("/admin/clock/advance", {"advance_s": 25 * 3600})
    assert resp.status == 200, resp.body
    conn = await world.gw.db()
    try:

        async def nightly() -> list[Any]:
            return list(await conn.fetch(
                "SELECT bank_id, apply, summary FROM recon_runs"
                " WHERE trigger = 'nightly' AND date = $1 ORDER BY bank_id", day))  # fmt: skip

        runs = await wait_until(nightly, lambda rows: len(rows) == len(BANKS), timeout_s=15)
        assert [r["bank_id"] for r in runs] == sorted(BANKS) and all(r["apply"] for r in runs)
        assert runs[0]["summary"]["applied"] == 1  # bank 102: the lost return, applied
        assert (await world.wait_payout(client, pid, {"returned"}))["status"] == "returned"
        # Once per bank and date, however many rounds pass.
        await world.workers.recon.run_once()
        assert len(await nightly()) == len(BANKS)
    finally:
        await conn.close()
    await assert_ledger_ok(world.gw)


async def test_reconcile_validates_its_request(world: BankWorld) -> None:
    admin = world.gw.admin
    cases = [
        ({"bank_id": "999", "date": "2025-11-26"}, 404, "not_found", "bank_id"),
        ({"bank_id": "102", "date": "2025-13-40"}, 400, "invalid_request", "date"),
        ({"bank_id": "102", "date": "26/11/2025"}, 400, "invalid_request", "date"),
        ({"bank_id": "102"}, 400, "invalid_request", "date"),
        ({"bank_id": "x", "date": "2025-11-26"}, 400, "invalid_request", "bank_id"),
        ({"bank_id": "102", "date": "2025-11-26", "apply": "yes"}, 400, "invalid_request",
         "apply"),
        ({"bank_id": "102", "date": "2025-11-26", "extra": 1}, 400, "invalid_request", "extra"),
    ]  # fmt: skip
    for body, status, code, field in cases:
        resp = await admin.post("/admin/reconcile", body)
        assert (resp.status, resp.error_code) == (status, code), (body, resp.body)
        assert resp.json()["error"]["field"] == field, (body, resp.body)
    bad_status = await admin.get("/admin/recon-exceptions?status=closed")
    assert bad_status.status == 400 and bad_status.json()["error"]["field"] == "status"
    unknown = await admin.post("/admin/recon-exceptions/rex_nope/resolve", {"note": "n"})
    assert unknown.status == 404
    async with world.http.post(world.gw.url + "/admin/reconcile", data=b"{}") as resp:
        assert resp.status == 401  # no admin token
    await assert_ledger_ok(world.gw)


async def test_an_unreachable_bank_is_503(settings: Settings) -> None:
    dead = settings.with_(bank_sim_url=f"http://127.0.0.1:{free_port()}")
    async with live_gateway(dead) as gw:
        resp = await gw.admin.post("/admin/reconcile", {"bank_id": "102", "date": "2025-11-26"})
        assert (resp.status, resp.error_code) == (503, "bank_unavailable"), resp.body
        await assert_ledger_ok(gw)


async def collection(client: MerchantClient, account_id: str, amount: int) -> str:
    body = {"merchant_order_id": f"c-{next(_accounts)}", "account_id": account_id,
            "amount": amount, "currency": "CNY", "payer": {
                "account_no": f"62170909{next(_accounts):011d}", "account_name": "Sun Qi",
                "bank_code": "102100099996"}}  # fmt: skip
    resp = await client.post("/v1/collections", body)
    assert resp.status == 201, resp.body
    collection_id: str = resp.json()["id"]
    return collection_id


async def collected(client: MerchantClient, collection_id: str, *statuses: str) -> Any:
    async def probe() -> Any:
        return (await client.get(f"/v1/collections/{collection_id}")).json()

    return await wait_until(probe, lambda c: c["status"] in statuses, timeout_s=15)


async def test_collections_are_reconciled_and_a_debit_the_gateway_failed_is_loud(
    world: BankWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Collections (代收) are on the statement beside payouts: a clean day matches them; the
    bank taking a debit the gateway failed is a loud exception, never applied."""
    _, client = await world.gw.merchant(CREDIT)
    cus = (await client.post("/v1/customers", {"external_id": "u-1", "name": "Sun Qi"})).json()
    acc = (await client.post("/v1/accounts", {"customer_id": cus["id"], "purpose": "wallet",
                                              "currency": "CNY"})).json()["id"]  # fmt: skip
    await world.profile("102", collection_outcomes={"succeeded": 1.0})
    done = [await collection(client, acc, 1_000 + i) for i in range(3)]
    for cid in done:
        assert (await collected(client, cid, "succeeded", "failed"))["status"] == "succeeded"
    day = (await world.record(done[0]))["business_date"]
    report = await reconcile(world, "102", day, apply=True)
    assert report["items"] == [] and report["summary"]["matched"] >= 3, report

    # The bank debits slowly; before it answers, a forged `failed` word reaches the gateway.
    await world.profile("102", callback_delay={"median_ms": 1500, "p99_ms": 1500})
    cid = await collection(client, acc, 4_321)

    async def at_bank() -> list[dict[str, Any]]:
        return [r for r in await world.records() if r["ref"] == cid]

    await wait_until(at_bank, lambda found: bool(found), timeout_s=15)  # the bank has it
    forged = await world.callback("102", [{
        "kind": "collection", "event_id": "forged-c1", "ref": cid, "status": "failed",
        "amount": 4_321, "failure_code": "card_frozen", "failure_message": "forged"}])  # fmt: skip
    assert forged.status == 200 and forged.json()["results"][0]["result"] == "applied"
    await wait_bank_status(world, cid, "succeeded")  # ... and the bank took the money anyway
    day = (await world.record(cid))["business_date"]
    with caplog.at_level(logging.WARNING, logger="paygate.recon"):
        report = await reconcile(world, "102", day, apply=True)
    (item,) = [i for i in report["items"] if i["payout_id"] == cid]
    assert item["kind"] == "status_mismatch" and "exception_id" in item
    assert item["action"].startswith("exception: bank took a debit the gateway failed")
    assert any(getattr(r, "payout_id", None) == cid for r in caplog.records)
    assert (await collected(client, cid, "failed"))["status"] == "failed"  # never applied
    await assert_ledger_ok(world.gw)
