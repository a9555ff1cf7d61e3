"""Accounts (三户, SPEC 16, first slice) over HTTP against real PostgreSQL and Redis: customers,
accounts and sub-accounts with rollups, transfers (个转个 / 个转商 / 商转个), freezes and claim
transfers (债权转让), refusals, idempotency, isolation between merchants, concurrency. The
ledger check passes after every test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.accounts.transfers import TransferItem, item, transfer_batch
from gateway.client import ApiResponse, MerchantClient
from gateway.contract.requests import TransferRequest
from gateway.storage.pools import init_connection
from protocol.ids import new_id
from tests.harness import LiveGateway
from tests.payloads import payout_body


@pytest.fixture
async def gw(gateway: LiveGateway) -> AsyncIterator[LiveGateway]:
    yield gateway
    check = await gateway.ledger_ok()
    assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


def ok(resp: ApiResponse, status: int = 201) -> dict[str, Any]:
    assert resp.status == status, (resp.status, resp.body)
    data: dict[str, Any] = resp.json()
    return data


def refused(resp: ApiResponse, status: int, code: str) -> None:
    assert (resp.status, resp.error_code) == (status, code), resp.body


async def customer(client: MerchantClient, external_id: str, name: str = "Zhang San") -> str:
    body = ok(await client.post("/v1/customers", {"external_id": external_id, "name": name}))
    return str(body["id"])


async def open_account(
    client: MerchantClient, customer_id: str, purpose: str = "wallet", parent: str | None = None
) -> str:
    body: dict[str, Any] = {"customer_id": customer_id, "purpose": purpose, "currency": "CNY"}
    if parent is not None:
        body["parent_id"] = parent
    return str(ok(await client.post("/v1/accounts", body))["id"])


async def settlement(client: MerchantClient) -> str:
    page = ok(await client.get("/v1/accounts"), 200)
    (found,) = [a for a in page["data"] if a["kind"] == "merchant"]
    return str(found["id"])


async def account(client: MerchantClient, account_id: str) -> dict[str, Any]:
    return ok(await client.get(f"/v1/accounts/{account_id}"), 200)


async def transfer(
    client: MerchantClient, src: str, dst: str, amount: int, **extra: Any
) -> ApiResponse:
    body = {"merchant_order_id": extra.pop("order", new_id("t")), "from_account": src,
            "to_account": dst, "amount": amount, **extra}  # fmt: skip
    return await client.post("/v1/transfers", body)


async def freeze(client: MerchantClient, account_id: str, amount: int, **extra: Any) -> ApiResponse:
    body = {"merchant_order_id": extra.pop("order", new_id("f")), "account_id": account_id,
            "amount": amount, "reason": extra.pop("reason", "collateral"), **extra}  # fmt: skip
    return await client.post("/v1/freezes", body)


async def unfreeze(client: MerchantClient, freeze_id: str, **body: Any) -> ApiResponse:
    """An unfreeze under a new key (`order=` to give one): a retry would reuse it."""
    key = body.pop("order", new_id("u"))
    return await client.post(f"/v1/freezes/{freeze_id}/unfreeze",
                             {"merchant_order_id": key, **body})  # fmt: skip


def figures(acc: dict[str, Any]) -> tuple[int, int, int]:
    return acc["available"], acc["frozen"], acc["total"]


async def funded_user(
    client: MerchantClient, amount: int, external_id: str | None = None
) -> tuple[str, str]:
    """A personal customer with one account holding `amount` (商转个 from settlement)."""
    cus = await customer(client, external_id or new_id("u"))
    acc = await open_account(client, cus)
    if amount:
        ok(await transfer(client, await settlement(client), acc, amount))
    return cus, acc


async def test_customers_are_created_replayed_read_and_listed(gw: LiveGateway) -> None:
    m, client = await gw.merchant()
    first = ok(await client.post("/v1/customers", {"external_id": "u-1", "name": "Zhang San"}))
    assert first["id"].startswith("cus_") and first["kind"] == "personal"
    assert first["external_id"] == "u-1"
    again = ok(await client.post("/v1/customers", {"external_id": "u-1", "name": "Zhang San"}), 200)
    assert again == first
    refused(await client.post("/v1/customers", {"external_id": "u-1", "name": "Li Si"}), 409,
            "idempotency_conflict")  # fmt: skip
    assert ok(await client.get(f"/v1/customers/{first['id']}"), 200) == first
    by_external = ok(await client.get("/v1/customers?external_id=u-1"), 200)
    assert by_external == {"data": [first], "next_cursor": None}
    assert ok(await client.get("/v1/customers?external_id=nobody"), 200)["data"] == []
    await customer(client, "u-2")
    # The merchant is a customer too (kind merchant), first in id order.
    page1 = ok(await client.get("/v1/customers?limit=2"), 200)
    assert [c["kind"] for c in page1["data"]] == ["merchant", "personal"]
    assert page1["data"][0]["name"] == m["name"] and page1["next_cursor"]
    page2 = ok(await client.get(f"/v1/customers?limit=2&cursor={page1['next_cursor']}"), 200)
    assert [c["external_id"] for c in page2["data"]] == ["u-2"]
    assert page2["next_cursor"] is None
    refused(await client.get("/v1/customers?merchant_order_id=x"), 400, "invalid_request")
    refused(await client.post("/v1/customers", {"external_id": "u-3", "name": "A", "x": 1}), 400,
            "invalid_request")  # fmt: skip


async def test_the_settlement_account_is_the_merchant_balance(gw: LiveGateway) -> None:
    _, client = await gw.merchant(100_000)
    page = ok(await client.get("/v1/accounts"), 200)
    (acc,) = page["data"]
    assert acc["kind"] == "merchant" and acc["purpose"] == "settlement"
    assert acc["parent_id"] is None and acc["currency"] == "CNY"
    assert figures(acc) == (100_000, 0, 100_000)
    assert acc["rollup"] == {"available": 100_000, "frozen": 0, "total": 100_000}
    owner = ok(await client.get(f"/v1/customers/{acc['customer_id']}"), 200)
    assert owner["kind"] == "merchant" and owner["external_id"] is None
    # A payout's hold shows as the settlement account's frozen money (held, 冻结).
    ok(await client.post("/v1/payouts", payout_body(30_000, "po-1")))
    assert figures(await account(client, acc["id"])) == (70_000, 30_000, 100_000)
    # The money is not duplicated: the balance row is still the one source.
    balance = ok(await client.get("/v1/balance"), 200)
    assert (balance["available"], balance["held"]) == (70_000, 30_000)
    # Accounts are opened for personal customers; the merchant has its settlement account.
    body = {"customer_id": acc["customer_id"], "purpose": "wallet", "currency": "CNY"}
    refused(await client.post("/v1/accounts", body), 400, "invalid_request")
    refused(await freeze(client, acc["id"], 1), 400, "invalid_request")
    refused(await transfer(client, acc["id"], acc["id"], 1), 400, "invalid_request")


async def test_accounts_and_sub_accounts_roll_up_their_subtree(gw: LiveGateway) -> None:
    _, client = await gw.merchant(1_000_000)
    cus = await customer(client, "lender-1")
    top = await open_account(client, cus, "wallet")
    sub = await open_account(client, cus, "loan", parent=top)
    subsub = await open_account(client, cus, "interest", parent=sub)
    sibling = await open_account(client, cus, "savings")
    got = await account(client, sub)
    assert (got["customer_id"], got["parent_id"], got["kind"]) == (cus, top, "personal")
    # Opening the same (customer, parent, purpose) again is a replay; CNY is the one currency.
    again = {"customer_id": cus, "parent_id": top, "purpose": "loan", "currency": "CNY"}
    assert ok(await client.post("/v1/accounts", again), 200)["id"] == sub
    usd = {"customer_id": cus, "purpose": "wallet", "currency": "USD"}
    refused(await client.post("/v1/accounts", usd), 400, "invalid_request")
    settle = await settlement(client)
    for acc, amount in ((top, 1_000), (sub, 200), (subsub, 30), (sibling, 4)):
        ok(await transfer(client, settle, acc, amount))
    ok(await freeze(client, subsub, 10))
    assert figures(await account(client, subsub)) == (20, 10, 30)
    got = await account(client, top)
    assert figures(got) == (1_000, 0, 1_000)
    assert got["rollup"] == {"available": 1_220, "frozen": 10, "total": 1_230}
    assert (await account(client, sub))["rollup"] == {"available": 220, "frozen": 10, "total": 230}
    assert (await account(client, sibling))["rollup"]["total"] == 4
    listed = ok(await client.get(f"/v1/accounts?customer_id={cus}&limit=3"), 200)
    assert len(listed["data"]) == 3 and listed["next_cursor"]
    rest = ok(await client.get(f"/v1/accounts?customer_id={cus}&cursor={listed['next_cursor']}"),
              200)  # fmt: skip
    assert {a["id"] for a in listed["data"] + rest["data"]} == {top, sub, subsub, sibling}
    # Trees stay within one customer and four levels.
    other = await customer(client, "lender-2")
    refused(await client.post("/v1/accounts", {"customer_id": other, "parent_id": top,
                                               "purpose": "x", "currency": "CNY"}), 400,
            "invalid_request")  # fmt: skip
    parent = subsub
    for level in range(2):
        parent = await open_account(client, cus, f"deep-{level}", parent=parent)
    refused(await client.post("/v1/accounts", {"customer_id": cus, "parent_id": parent,
                                               "purpose": "too-deep", "currency": "CNY"}), 400,
            "invalid_request")  # fmt: skip
    refused(await client.post("/v1/accounts", {"customer_id": "cus_nobody", "purpose": "w",
                                               "currency": "CNY"}), 404, "not_found")  # fmt: skip
    refused(await client.post("/v1/accounts", {"customer_id": cus, "parent_id": "acc_nobody",
                                               "purpose": "w", "currency": "CNY"}), 404,
            "not_found")  # fmt: skip


async def test_transfers_move_money_between_personal_and_settlement_accounts(
    gw: LiveGateway,
) -> None:
    _, client = await gw.merchant(50_000, notify_events=["*"])
    settle = await settlement(client)
    _, alice = await funded_user(client, 0)
    _, bob = await funded_user(client, 0)
    m2p = ok(await transfer(client, settle, alice, 10_000, order="t-1"))  # 商转个
    assert m2p["id"].startswith("tr_") and m2p["kind"] == "merchant_to_personal"
    assert (m2p["from_account"], m2p["to_account"], m2p["amount"]) == (settle, alice, 10_000)
    assert m2p["status"] == "completed" and m2p["currency"] == "CNY"
    p2p = ok(await transfer(client, alice, bob, 3_000))  # 个转个
    assert p2p["kind"] == "personal_to_personal"
    p2m = ok(await transfer(client, bob, settle, 1_000))  # 个转商
    assert p2m["kind"] == "personal_to_merchant"
    assert figures(await account(client, alice)) == (7_000, 0, 7_000)
    assert figures(await account(client, bob)) == (2_000, 0, 2_000)
    assert ok(await client.get("/v1/balance"), 200)["available"] == 41_000
    # Replay: same fields -> 200 with the same transfer and no second move; else 409.
    assert ok(await transfer(client, settle, alice, 10_000, order="t-1"), 200) == m2p
    refused(await transfer(client, settle, alice, 10_001, order="t-1"), 409,
            "idempotency_conflict")  # fmt: skip
    assert figures(await account(client, alice)) == (7_000, 0, 7_000)
    assert ok(await client.get(f"/v1/transfers/{m2p['id']}"), 200) == m2p
    assert ok(await client.get("/v1/transfers?merchant_order_id=t-1"), 200)["data"] == [m2p]
    page = ok(await client.get("/v1/transfers?limit=2"), 200)
    assert [t["id"] for t in page["data"]] == [m2p["id"], p2p["id"]] and page["next_cursor"]
    rest = ok(await client.get(f"/v1/transfers?cursor={page['next_cursor']}"), 200)
    assert [t["id"] for t in rest["data"]] == [p2m["id"]] and rest["next_cursor"] is None
    events = ok(await client.get("/v1/events?limit=200"), 200)["data"]
    completed = [e for e in events if e["type"] == "transfer.completed"]
    assert {e["object_id"] for e in completed} == {m2p["id"], p2p["id"], p2m["id"]}
    assert all(e["sequence"] == 1 for e in completed)


async def test_transfer_refusals(gw: LiveGateway) -> None:
    _, client = await gw.merchant(5_000)
    settle = await settlement(client)
    cus, alice = await funded_user(client, 1_000)
    _, bob = await funded_user(client, 0)
    refused(await transfer(client, alice, bob, 1_001, order="r-1"), 422, "insufficient_funds")
    refused(await transfer(client, settle, bob, 4_001), 422, "insufficient_funds")
    ok(await freeze(client, alice, 600))
    # 400 available + 600 frozen: 500 would need frozen money.
    refused(await transfer(client, alice, bob, 500), 422, "account_frozen_funds")
    refused(await transfer(client, alice, bob, 1_001), 422, "insufficient_funds")
    refused(await transfer(client, alice, alice, 1), 400, "invalid_request")
    refused(await transfer(client, alice, "acc_nobody", 1), 404, "not_found")
    refused(await transfer(client, "acc_nobody", alice, 1), 404, "not_found")
    # Accounts in different currencies (another currency enabled for this account only).
    conn = await gw.db()
    try:
        usd = new_id("acc")
        await conn.execute(
            """INSERT INTO customer_accounts (id, merchant_id, customer_id, kind, purpose,
                   currency, depth)
               SELECT $1, merchant_id, id, 'personal', 'usd', 'USD', 0 FROM customers
               WHERE id = $2""",
            usd,
            cus,
        )
        await conn.execute("INSERT INTO account_balances (account_id) VALUES ($1)", usd)
        await conn.executemany(
            "INSERT INTO accounts (code, kind, currency, account_id) VALUES ($1, $2, 'USD', $3)",
            [(f"{usd}:{kind}", kind, usd) for kind in ("available", "frozen")],
        )
    finally:
        await conn.close()
    resp = await transfer(client, alice, usd, 1)
    refused(resp, 400, "invalid_request")
    assert resp.json()["error"]["field"] == "to_account"
    # A refused transfer is not recorded: its order id stays free.
    assert ok(await client.get("/v1/transfers?merchant_order_id=r-1"), 200)["data"] == []
    ok(await transfer(client, alice, bob, 400, order="r-1"))
    bad = {"merchant_order_id": "r-2", "from_account": alice, "to_account": bob, "amount": 0}
    refused(await client.post("/v1/transfers", bad), 400, "invalid_request")
    refused(await client.post("/v1/transfers", {**bad, "amount": 1, "currency": "CNY"}), 400,
            "invalid_request")  # fmt: skip
    assert figures(await account(client, alice)) == (0, 600, 600)
    assert figures(await account(client, bob)) == (400, 0, 400)


async def test_another_merchants_customers_accounts_and_objects_are_not_found(
    gw: LiveGateway,
) -> None:
    _, mine = await gw.merchant(10_000)
    _, theirs = await gw.merchant(10_000)
    cus, acc = await funded_user(theirs, 5_000)
    frz = ok(await freeze(theirs, acc, 1_000))
    _, their_bob = await funded_user(theirs, 0)
    tr = ok(await transfer(theirs, acc, their_bob, 100))
    my_cus, my_acc = await funded_user(mine, 1_000)
    for path in (f"/v1/customers/{cus}", f"/v1/accounts/{acc}", f"/v1/freezes/{frz['id']}",
                 f"/v1/transfers/{tr['id']}"):  # fmt: skip
        refused(await mine.get(path), 404, "not_found")
    refused(await unfreeze(mine, frz["id"]), 404, "not_found")
    refused(await transfer(mine, acc, my_acc, 1), 404, "not_found")
    refused(await transfer(mine, my_acc, acc, 1), 404, "not_found")
    refused(await freeze(mine, acc, 1), 404, "not_found")
    refused(await mine.post("/v1/accounts", {"customer_id": cus, "purpose": "w",
                                             "currency": "CNY"}), 404, "not_found")  # fmt: skip
    refused(await mine.post("/v1/accounts", {"customer_id": my_cus, "parent_id": acc,
                                             "purpose": "w", "currency": "CNY"}), 404,
            "not_found")  # fmt: skip
    refused(await transfer(mine, my_acc, await settlement(mine), 1, from_freeze=frz["id"]), 404,
            "not_found")  # fmt: skip
    listed = ok(await mine.get("/v1/accounts?limit=200"), 200)["data"]
    assert acc not in {a["id"] for a in listed}
    assert ok(await mine.get(f"/v1/accounts?customer_id={cus}"), 200)["data"] == []
    # The same order id is free for each merchant.
    assert ok(await mine.get("/v1/freezes"), 200)["data"] == []
    assert figures(await account(theirs, acc)) == (3_900, 1_000, 4_900)


async def test_freeze_and_unfreeze_whole_or_part(gw: LiveGateway) -> None:
    _, client = await gw.merchant(10_000, notify_events=["*"])
    _, acc = await funded_user(client, 1_000)
    frz = ok(await freeze(client, acc, 300, order="f-1"))
    assert frz["id"].startswith("frz_") and frz["status"] == "active"
    assert (frz["amount"], frz["released"], frz["transferred"], frz["remaining"]) == (
        300,
        0,
        0,
        300,
    )
    assert figures(await account(client, acc)) == (700, 300, 1_000)
    assert ok(await freeze(client, acc, 300, order="f-1"), 200) == frz
    refused(await freeze(client, acc, 301, order="f-1"), 409, "idempotency_conflict")
    refused(await freeze(client, acc, 701), 422, "insufficient_funds")
    part = ok(await unfreeze(client, frz["id"], amount=100), 200)
    assert (part["status"], part["released"], part["remaining"]) == ("active", 100, 200)
    assert figures(await account(client, acc)) == (800, 200, 1_000)
    refused(await unfreeze(client, frz["id"], amount=201), 422, "insufficient_funds")
    rest = ok(await unfreeze(client, frz["id"]), 200)  # all that is left
    assert (rest["status"], rest["released"], rest["remaining"]) == ("released", 300, 0)
    assert figures(await account(client, acc)) == (1_000, 0, 1_000)
    refused(await unfreeze(client, frz["id"]), 409, "invalid_state")
    refused(await unfreeze(client, "frz_nobody"), 404, "not_found")
    assert ok(await client.get(f"/v1/freezes/{frz['id']}"), 200) == rest
    assert ok(await client.get("/v1/freezes?merchant_order_id=f-1"), 200)["data"] == [rest]
    events = ok(await client.get("/v1/events?limit=200"), 200)["data"]
    mine = [(e["type"], e["sequence"], e["data"]["status"]) for e in events
            if e["object_id"] == frz["id"]]  # fmt: skip
    assert mine == [("freeze.created", 1, "active"), ("freeze.released", 2, "active"),
                    ("freeze.released", 3, "released")]  # fmt: skip


async def test_frozen_money_moves_only_by_a_claim_transfer(gw: LiveGateway) -> None:
    _, client = await gw.merchant(10_000)
    settle = await settlement(client)
    _, lender = await funded_user(client, 1_000)
    _, buyer = await funded_user(client, 0)
    _, other = await funded_user(client, 500)
    frz = ok(await freeze(client, lender, 1_000))
    refused(await transfer(client, lender, buyer, 1), 422, "account_frozen_funds")
    refused(await transfer(client, lender, settle, 1), 422, "account_frozen_funds")
    # 债权转让: the claim's frozen money goes to the buyer, part then the rest.
    part = ok(await transfer(client, lender, buyer, 400, from_freeze=frz["id"]))
    assert part["from_freeze"] == frz["id"] and part["kind"] == "personal_to_personal"
    got = ok(await client.get(f"/v1/freezes/{frz['id']}"), 200)
    assert (got["status"], got["transferred"], got["remaining"]) == ("active", 400, 600)
    assert figures(await account(client, lender)) == (0, 600, 600)
    assert figures(await account(client, buyer)) == (400, 0, 400)
    refused(await transfer(client, lender, buyer, 601, from_freeze=frz["id"]), 422,
            "insufficient_funds")  # fmt: skip
    refused(await transfer(client, other, buyer, 1, from_freeze=frz["id"]), 400,
            "invalid_request")  # fmt: skip
    refused(await transfer(client, lender, buyer, 1, from_freeze="frz_nobody"), 404, "not_found")
    ok(await unfreeze(client, frz["id"], amount=100), 200)
    last = ok(await transfer(client, lender, settle, 500, from_freeze=frz["id"]))
    assert last["kind"] == "personal_to_merchant"
    got = ok(await client.get(f"/v1/freezes/{frz['id']}"), 200)
    assert (got["status"], got["released"], got["transferred"], got["remaining"]) == (
        "transferred", 100, 900, 0)  # fmt: skip
    refused(await transfer(client, lender, buyer, 1, from_freeze=frz["id"]), 409, "invalid_state")
    refused(await unfreeze(client, frz["id"]), 409, "invalid_state")
    assert figures(await account(client, lender)) == (100, 0, 100)
    assert ok(await client.get("/v1/balance"), 200)["available"] == 10_000 - 1_500 + 500


async def test_frozen_personal_money_never_funds_a_payout(gw: LiveGateway) -> None:
    _, client = await gw.merchant(20_000)
    settle = await settlement(client)
    _, acc = await funded_user(client, 20_000)  # the merchant's available is now 0
    frz = ok(await freeze(client, acc, 15_000))
    refused(await client.post("/v1/payouts", payout_body(100, "po-1")), 422, "insufficient_funds")
    refused(await transfer(client, acc, settle, 6_000), 422, "account_frozen_funds")
    ok(await transfer(client, acc, settle, 5_000))  # the unfrozen part, 个转商
    refused(await client.post("/v1/payouts", payout_body(5_001, "po-2")), 422,
            "insufficient_funds")  # fmt: skip
    ok(await client.post("/v1/payouts", payout_body(5_000, "po-3")))
    # Only a claim transfer to the settlement account makes frozen money payable.
    ok(await transfer(client, acc, settle, 15_000, from_freeze=frz["id"]))
    ok(await client.post("/v1/payouts", payout_body(15_000, "po-4")))
    balance = ok(await client.get("/v1/balance"), 200)
    assert (balance["available"], balance["held"]) == (0, 20_000)
    assert figures(await account(client, acc)) == (0, 0, 0)


async def test_concurrent_transfers_never_overdraw_an_account(gw: LiveGateway) -> None:
    _, client = await gw.merchant(10_000)
    _, src = await funded_user(client, 10_000)
    _, dst = await funded_user(client, 0)
    replies = await asyncio.gather(*(transfer(client, src, dst, 700) for _ in range(50)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] * 14 + [422] * 36, statuses  # 14 * 700 = 9,800 <= 10,000
    assert {r.error_code for r in replies if r.status == 422} == {"insufficient_funds"}
    assert figures(await account(client, src)) == (200, 0, 200)
    assert figures(await account(client, dst)) == (9_800, 0, 9_800)


async def test_concurrent_transfer_transactions_on_shared_accounts_stay_exact(
    gw: LiveGateway,
) -> None:
    """Batches on separate connections (as several gateway processes run them) lock the
    same rows in one order: no deadlock, no overdraft, every decision on fresh figures."""
    m, client = await gw.merchant(6_000)
    settle = await settlement(client)
    accounts = [(await funded_user(client, 1_000))[1] for _ in range(5)]  # settlement: 1,000
    conns: list[asyncpg.Connection] = []
    for _ in range(6):
        conn = await asyncpg.connect(gw.settings.database_url)
        await init_connection(conn)
        conns.append(conn)

    def batch(k: int) -> list[TransferItem]:
        # Each batch sends around the ring and to and from the settlement account.
        items = []
        for i in range(12):
            src = ([settle, *accounts])[(k + i) % 6]
            dst = ([settle, *accounts])[(k + i + 1 + i % 4) % 6]
            req = TransferRequest(new_id("c"), src, dst, 150 + 10 * i)
            items.append(item(m["id"], req))
        return items

    try:
        results = await asyncio.gather(*(transfer_batch(c, batch(k)) for k, c in
                                         enumerate(conns)))  # fmt: skip
    finally:
        for conn in conns:
            await conn.close()
    outcomes = [r.http_status for rs in results for r in rs]
    assert set(outcomes) <= {201, 422} and 201 in outcomes, outcomes
    everything = [await account(client, a) for a in (settle, *accounts)]
    assert sum(a["available"] for a in everything) == 6_000
    assert all(a["available"] >= 0 for a in everything)


async def test_account_lists_and_bodies_refuse_what_is_unknown(gw: LiveGateway) -> None:
    _, client = await gw.merchant()
    refused(await client.get("/v1/accounts?status=x"), 400, "invalid_request")
    refused(await client.get("/v1/transfers?cursor=%20"), 400, "invalid_request")
    refused(await client.get("/v1/freezes?limit=0"), 400, "invalid_request")
    refused(await client.get("/v1/accounts/acc_nobody"), 404, "not_found")
    refused(await client.get("/v1/transfers/tr_nobody"), 404, "not_found")
    refused(await client.get("/v1/customers/cus_nobody"), 404, "not_found")
    _, acc = await funded_user(client, 0)
    refused(await freeze(client, acc, 1, reason=" "), 400, "invalid_request")
    refused(await unfreeze(client, "frz_x", amount=0), 400, "invalid_request")
