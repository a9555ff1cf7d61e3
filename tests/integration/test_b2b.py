"""B2B funding in (SPEC 7, issue 5) at time-scale 1000: notification, realtime and T+1
clearing, advance repayment, reversal, duplicate/late/lost notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.client import MerchantClient
from gateway.settings import Settings
from protocol.clock import BUSINESS_TZ
from tests.banks import BankWorld, bank_world
from tests.harness import wait_until
from tests.payloads import payout_body

REALTIME_BANK = "102"  # ICBC clears realtime
T1_BANK = "103"  # ABC clears T+1 at 17:00


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings.with_(time_scale=1000)) as w:
        for bank_id in ("102", "103", "104", "105", "308", "ibps"):
            await w.profile(bank_id, outcomes={"succeeded": 1.0})
        yield w


async def script(world: BankWorld, bank_id: str, payer: str, **s: Any) -> None:
    current = await world.sim_get(f"/banks/{bank_id}/profile")
    scripted = dict(current.get("b2b_scripted") or {})
    scripted[payer] = s
    await world.profile(bank_id, b2b_scripted=scripted)


async def fund(
    client: MerchantClient, amount: int, bank: str, payer: str, order: str | None = None
) -> dict[str, Any]:
    order_id = order or f"b2b-{payer.replace(' ', '-')}-{amount}"
    body = {"merchant_order_id": order_id, "amount": amount, "currency": "CNY",
            "payer_bank": bank, "payer_account_name": payer}  # fmt: skip
    resp = await client.post("/v1/b2b-payments", body)
    assert resp.status == 201, resp.body
    data: dict[str, Any] = resp.json()
    assert data["status"] == "pending" and data["bank_page_url"]
    return data


async def b2b(client: MerchantClient, b2b_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        resp = await client.get(f"/v1/b2b-payments/{b2b_id}")
        assert resp.status == 200, resp.body
        data: dict[str, Any] = resp.json()
        return data

    return await wait_until(probe, lambda p: p["status"] == status, timeout_s=15)


async def balance(client: MerchantClient) -> dict[str, Any]:
    resp = await client.get("/v1/balance")
    assert resp.status == 200, resp.body
    data: dict[str, Any] = resp.json()
    return data


async def jump_past(world: BankWorld, when: str) -> None:
    """Move simulated time just past `when` (every process follows the shared anchor)."""
    now = datetime.fromisoformat((await world.gw.admin.get("/admin/clock")).json()["now"])
    target = datetime.fromisoformat(when)
    resp = await world.gw.admin.post("/admin/clock/advance",
                                     {"advance_s": (target - now).total_seconds() + 1})  # fmt: skip
    assert resp.status == 200, resp.body


async def test_realtime_clearing_makes_funds_spendable_in_seconds(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    await script(world, REALTIME_BANK, "Acme Trading", outcome="succeeded", clearing="cleared")
    p = await fund(client, 123_456, REALTIME_BANK, "Acme Trading")
    assert p["clearing"] == "realtime"
    done = await b2b(client, p["id"], "cleared")
    notified_at = datetime.fromisoformat(done["notified_at"])
    promised = datetime.fromisoformat(done["expected_clear_at"]) - notified_at
    took = datetime.fromisoformat(done["cleared_at"]) - notified_at
    assert promised.total_seconds() == 5  # realtime: 5 simulated seconds after the notice
    # Cleared at its time, give or take the workers' own (wall) latency x1000; T+1 is a day.
    assert 5 <= took.total_seconds() < 900, took
    bal = await balance(client)
    assert (bal["available"], bal["pending_in"], bal["spendable"]) == (123_456, 0, 123_456)
    assert (await world.gw.ledger_ok())["ok"]


async def test_t1_funds_stay_pending_until_the_next_cutoff(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    await script(world, T1_BANK, "Beta Foods", outcome="succeeded", clearing="cleared")
    p = await fund(client, 50_000, T1_BANK, "Beta Foods")
    notified = await b2b(client, p["id"], "notified")
    assert notified["clearing"] == "t+1"
    clear_at = datetime.fromisoformat(notified["expected_clear_at"]).astimezone(BUSINESS_TZ)
    notified_at = datetime.fromisoformat(notified["notified_at"]).astimezone(BUSINESS_TZ)
    assert (clear_at.hour, clear_at.minute) == (17, 0)  # the cut-off, China time
    assert clear_at.date() == notified_at.date() + timedelta(days=1)
    bal = await balance(client)
    assert (bal["available"], bal["pending_in"]) == (0, 50_000)
    # Simulated minutes pass (time-scale 1000): still not cleared before the cut-off.
    before = (await world.gw.admin.get("/admin/clock")).json()["now"]
    await wait_until(lambda: world.gw.admin.get("/admin/clock"),
                     lambda r: r.json()["now"] > before and
                     (datetime.fromisoformat(r.json()["now"]) -
                      datetime.fromisoformat(before)).total_seconds() > 300)  # fmt: skip
    assert (await b2b(client, p["id"], "notified"))["status"] == "notified"
    await jump_past(world, notified["expected_clear_at"])
    await b2b(client, p["id"], "cleared")
    bal = await balance(client)
    assert (bal["available"], bal["pending_in"]) == (50_000, 0)
    assert (await world.gw.ledger_ok())["ok"]


async def test_advance_merchant_pays_against_pending_funds_and_clearing_repays_first(
    world: BankWorld,
) -> None:
    _, client = await world.gw.merchant(0, funding_mode="advance", advance_limit=50_000)
    await script(world, T1_BANK, "Gamma Ltd", outcome="succeeded", clearing="cleared")
    p = await fund(client, 30_000, T1_BANK, "Gamma Ltd")
    notified = await b2b(client, p["id"], "notified")
    po = await client.post("/v1/payouts", payout_body(40_000))
    assert po.status == 201, po.body
    assert po.json()["funding"] == {"balance": 0, "advance": 40_000}
    over = await client.post("/v1/payouts", payout_body(10_001))
    assert over.status == 422 and over.error_code == "advance_limit_exceeded"
    bal = await balance(client)
    assert (bal["advance_used"], bal["pending_in"], bal["available"]) == (40_000, 30_000, 0)
    await jump_past(world, notified["expected_clear_at"])
    await b2b(client, p["id"], "cleared")
    bal = await balance(client)
    # 30,000 repays the advance first: 10,000 still fronted, nothing left for available.
    assert (bal["advance_used"], bal["pending_in"], bal["available"]) == (10_000, 0, 0)
    assert (await world.gw.ledger_ok())["ok"]


async def test_reversal_leaves_the_advance_outstanding_and_exposure_shows_it(
    world: BankWorld,
) -> None:
    m, client = await world.gw.merchant(0, funding_mode="advance", advance_limit=50_000)
    await script(world, T1_BANK, "Delta Co", outcome="succeeded", clearing="reversed")
    p = await fund(client, 30_000, T1_BANK, "Delta Co")
    notified = await b2b(client, p["id"], "notified")
    assert (await client.post("/v1/payouts", payout_body(20_000))).status == 201
    await jump_past(world, notified["expected_clear_at"])
    reversed_ = await b2b(client, p["id"], "reversed")
    assert reversed_["failure"]["code"]
    bal = await balance(client)
    assert (bal["advance_used"], bal["pending_in"], bal["available"]) == (20_000, 0, 0)
    exposure = (await world.gw.admin.get("/admin/exposure")).json()
    mine = next(e for e in exposure["merchants"] if e["merchant_id"] == m["id"])
    assert (mine["advance_used"], mine["pending_in"], mine["uncovered"]) == (20_000, 0, 20_000)
    assert exposure["pool"]["used"] >= 20_000
    assert (await world.gw.ledger_ok())["ok"]


async def test_duplicate_and_late_notifications_change_nothing(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    await script(world, REALTIME_BANK, "Echo Inc", outcome="succeeded", clearing="cleared",
                 callback="duplicate")  # fmt: skip
    p = await fund(client, 7_000, REALTIME_BANK, "Echo Inc")
    await b2b(client, p["id"], "cleared")
    late = await world.callback(REALTIME_BANK, [
        {"kind": "b2b", "event_id": "late-1", "ref": p["id"], "status": "succeeded",
         "amount": 7_000},
        {"kind": "b2b", "event_id": "late-2", "ref": p["id"], "status": "failed",
         "amount": 7_000},
    ])  # fmt: skip
    assert late.status == 200, late.body
    assert [r["result"] for r in late.json()["results"]] == ["no_change", "no_change"]
    bal = await balance(client)
    assert (bal["available"], bal["pending_in"]) == (7_000, 0)  # credited exactly once
    assert (await b2b(client, p["id"], "cleared"))["status"] == "cleared"
    assert (await world.gw.ledger_ok())["ok"]


async def test_lost_notification_is_recovered_by_asking_the_bank(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    await script(world, REALTIME_BANK, "Foxtrot", outcome="succeeded", clearing="cleared",
                 callback="lost")  # fmt: skip
    p = await fund(client, 9_900, REALTIME_BANK, "Foxtrot")
    await b2b(client, p["id"], "cleared")
    assert (await balance(client))["available"] == 9_900


async def test_failed_b2b_moves_no_money(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    await script(world, REALTIME_BANK, "Golf", outcome="failed")
    p = await fund(client, 5_000, REALTIME_BANK, "Golf")
    failed = await b2b(client, p["id"], "failed")
    assert failed["failure"]["code"]
    bal = await balance(client)
    assert (bal["available"], bal["pending_in"]) == (0, 0)


async def test_b2b_bad_input_and_idempotency(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    base = {"merchant_order_id": "b2b-idem", "amount": 1_000, "currency": "CNY",
            "payer_bank": REALTIME_BANK}  # fmt: skip
    for bad, field in ((dict(base, payer_bank="ibps"), "payer_bank"),
                       (dict(base, payer_bank="999"), "payer_bank"),
                       (dict(base, amount=0), "amount"),
                       (dict(base, extra=1), "extra")):  # fmt: skip
        resp = await client.post("/v1/b2b-payments", bad)
        assert resp.status == 400 and resp.error_code == "invalid_request", resp.body
        assert resp.json()["error"]["field"] == field
    first = await client.post("/v1/b2b-payments", base)
    assert first.status == 201, first.body
    again = await client.post("/v1/b2b-payments", base)
    assert again.status == 200 and again.json()["id"] == first.json()["id"]
    other = await client.post("/v1/b2b-payments", dict(base, amount=2_000))
    assert other.status == 409 and other.error_code == "idempotency_conflict"
    _, stranger = await world.gw.merchant(0)
    assert (await stranger.get(f"/v1/b2b-payments/{first.json()['id']}")).status == 404


async def test_b2b_list_by_order_id_status_and_pages(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    made = [await fund(client, 1_000 + n, REALTIME_BANK, f"Lister {n}", f"b2b-list-{n}")
            for n in range(3)]  # fmt: skip
    await b2b(client, made[0]["id"], "cleared")
    by_order = await client.get("/v1/b2b-payments?merchant_order_id=b2b-list-1")
    assert by_order.status == 200, by_order.body
    assert [p["id"] for p in by_order.json()["data"]] == [made[1]["id"]]
    assert (await client.get("/v1/b2b-payments?merchant_order_id=nope")).json()["data"] == []
    first = (await client.get("/v1/b2b-payments?limit=2")).json()
    assert [p["id"] for p in first["data"]] == [made[2]["id"], made[1]["id"]]  # newest first
    rest = (await client.get(f"/v1/b2b-payments?limit=2&cursor={first['next_cursor']}")).json()
    assert [p["id"] for p in rest["data"]] == [made[0]["id"]] and rest["next_cursor"] is None
    cleared = (await client.get("/v1/b2b-payments?status=cleared")).json()["data"]
    assert made[0]["id"] in {p["id"] for p in cleared}
    assert all(p["status"] == "cleared" for p in cleared)
    for bad in ("status=done", "limit=0", "cursor=%2F", "surprise=1"):
        resp = await client.get(f"/v1/b2b-payments?{bad}")
        assert resp.status == 400 and resp.error_code == "invalid_request", (bad, resp.body)
    _, stranger = await world.gw.merchant(0)
    assert (await stranger.get("/v1/b2b-payments?merchant_order_id=b2b-list-1")).json()[
        "data"
    ] == []


async def test_a_payout_fronted_then_repaid_by_clearing_fails_back_to_available(
    world: BankWorld,
) -> None:
    """The advance that fronted a payout was repaid by a B2B clearing before the payout
    failed: its release cannot give the advance back to the line (it is not used any more);
    the money comes back to available (was: advance_used below zero, a CHECK violation, and
    the payout stuck for good)."""
    _, client = await world.gw.merchant(0, funding_mode="advance", advance_limit=50_000)
    # The payout's bank answers late and fails it; the B2B payment clears meanwhile.
    await world.profile("105", callback_delay={"median_ms": 3_000_000, "p99_ms": 3_000_000})
    await world.script("105", "6227000000000105", outcome="account_frozen")
    payee = {"account_no": "6227000000000105", "account_name": "Li Si",
             "bank_code": "105100000017", "account_type": "personal"}  # fmt: skip
    body = payout_body(10_000, payee=payee)
    po = await client.post("/v1/payouts", body)
    assert po.status == 201, po.body
    assert po.json()["funding"] == {"balance": 0, "advance": 10_000}
    await script(world, REALTIME_BANK, "Delta Ltd", outcome="succeeded", clearing="cleared")
    p = await fund(client, 50_000, REALTIME_BANK, "Delta Ltd")
    await b2b(client, p["id"], "cleared")
    bal = await balance(client)
    assert (bal["advance_used"], bal["available"], bal["held"]) == (0, 40_000, 10_000)
    failed = await world.wait_payout(client, po.json()["id"], timeout_s=30)
    assert failed["status"] == "failed", failed
    bal = await balance(client)
    assert (bal["advance_used"], bal["available"], bal["held"]) == (0, 50_000, 0)
    assert (await world.gw.ledger_ok())["ok"]
