"""Collections (代收, SPEC 16) through the real bank simulator: a debit of the payer's card,
its signed async result, queried when silent and never resent; refusals and idempotency;
advance_on_failure (公司垫付) fronted and repaid by the payer's next success. The ledger
check passes after every test."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.client import MerchantClient
from gateway.settings import Settings
from protocol.ids import new_id
from tests.banks import BankWorld, bank_world
from tests.harness import wait_until
from tests.integration.test_accounts import customer, ok, open_account, refused, settlement

_cards = itertools.count(1)
BANKS = ("102", "103", "104", "105", "308", "ibps")


def payer(bank_code: str = "102100099996") -> dict[str, Any]:
    return {"account_no": f"62170001{next(_cards):011d}", "account_name": "Wang Wu",
            "bank_code": bank_code}  # fmt: skip


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BankWorld]:
    async with bank_world(settings) as w:
        for bank_id in BANKS:  # only what a test scripts goes wrong
            await w.profile(bank_id, collection_outcomes={"succeeded": 1.0})
        yield w
        check = await w.gw.ledger_ok()
        assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


async def personal_account(client: MerchantClient) -> str:
    return await open_account(client, await customer(client, new_id("u")))


def collection_body(account_id: str, amount: int, who: dict[str, Any], **extra: Any) -> Any:
    return {"merchant_order_id": extra.pop("order", new_id("c")), "account_id": account_id,
            "amount": amount, "currency": "CNY", "payer": who, **extra}  # fmt: skip


async def collect(client: MerchantClient, account_id: str, amount: int, who: dict[str, Any],
                  **extra: Any) -> dict[str, Any]:  # fmt: skip
    created = ok(await client.post("/v1/collections",
                                   collection_body(account_id, amount, who, **extra)))  # fmt: skip
    assert created["status"] == "pending" and created["id"].startswith("col_"), created
    return created


async def final(client: MerchantClient, collection_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return ok(await client.get(f"/v1/collections/{collection_id}"), 200)

    return await wait_until(probe, lambda c: c["status"] != "pending", timeout_s=20)


async def available(client: MerchantClient, account_id: str) -> int:
    return int(ok(await client.get(f"/v1/accounts/{account_id}"), 200)["available"])


async def test_collection_debits_the_payer_and_credits_the_account(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0, notify_events=["*"])
    acc = await personal_account(client)
    who = payer()
    col = await collect(client, acc, 25_000, who)
    done = await final(client, col["id"])
    assert done["status"] == "succeeded" and done["bank_id"] == "102" and done["bank_ref"]
    assert (done["advanced"], done["repaid"], done["failure"]) == (0, 0, None)
    assert await available(client, acc) == 25_000
    record = await world.record(col["id"])
    assert (record["direction"], record["submissions"], record["amount"]) == ("debit", 1, 25_000)
    assert record["payee"]["account_no"] == who["account_no"]
    events = ok(await client.get("/v1/events?limit=200"), 200)["data"]
    assert [e["type"] for e in events if e["object_id"] == col["id"]] == ["collection.succeeded"]
    # Into the merchant's own settlement account too (代收 for the merchant itself).
    own = await settlement(client)
    done = await final(client, (await collect(client, own, 700, payer()))["id"])
    assert done["status"] == "succeeded"
    assert ok(await client.get("/v1/balance"), 200)["available"] == 700


@pytest.mark.parametrize("code", ["insufficient_balance", "card_frozen", "no_debit_agreement"])
async def test_failed_debit_credits_nothing(world: BankWorld, code: str) -> None:
    _, client = await world.gw.merchant(0)
    acc = await personal_account(client)
    who = payer()
    await world.script("102", who["account_no"], outcome=code)
    done = await final(client, (await collect(client, acc, 5_000, who))["id"])
    assert done["status"] == "failed" and done["failure"]["code"] == code, done
    assert done["advanced"] == 0
    assert await available(client, acc) == 0


@pytest.mark.parametrize("fault", [{"sync": "timeout"}, {"sync": "reset"}, {"callback": "lost"}])
async def test_unknown_or_silent_debit_is_queried_never_resent(
    world: BankWorld, fault: dict[str, str]
) -> None:
    _, client = await world.gw.merchant(0)
    acc = await personal_account(client)
    who = payer()
    await world.script("102", who["account_no"], **fault)
    # The bank decides a second after taking the debit, so its synchronous answer (sent at
    # once) cannot already carry the outcome, even on a loaded machine: with the callback
    # lost, only a query can find it out.
    await world.profile("102", callback_delay={"median_ms": 1_000, "p99_ms": 1_200})
    done = await final(client, (await collect(client, acc, 3_000, who))["id"])
    assert done["status"] == "succeeded"
    assert (await world.record(done["id"]))["submissions"] == 1
    if "callback" in fault:  # no word ever comes: only a query can have found it out
        assert world.workers.collection_poller.queries >= 1
    assert await available(client, acc) == 3_000


async def test_refusals_replays_and_isolation(world: BankWorld) -> None:
    _, client = await world.gw.merchant(0)
    _, other = await world.gw.merchant(0)
    acc = await personal_account(client)
    theirs = await personal_account(other)
    who = payer()
    body = collection_body(acc, 1_000, who, order="same-order")
    first = ok(await client.post("/v1/collections", body))
    assert ok(await client.post("/v1/collections", body), 200)["id"] == first["id"]
    changed = collection_body(acc, 1_001, who, order="same-order")
    refused(await client.post("/v1/collections", changed), 409, "idempotency_conflict")
    refused(await client.post("/v1/collections", collection_body(theirs, 1_000, who)),
            404, "not_found")  # fmt: skip
    refused(await client.post("/v1/collections", collection_body(acc, 1_000, who) | {
        "currency": "USD"}), 400, "invalid_request")  # fmt: skip
    refused(await client.post("/v1/collections", collection_body(acc, 0, who)),
            400, "invalid_request")  # fmt: skip
    refused(await client.post("/v1/collections", collection_body(acc, 1, who) | {"x": 1}),
            400, "invalid_request")  # fmt: skip
    bad_payer = {**who, "bank_code": "12"}
    refused(await client.post("/v1/collections", collection_body(acc, 1, bad_payer)),
            400, "invalid_request")  # fmt: skip
    # A prefunded merchant has no advance line to front a failed debit from.
    refused(await client.post("/v1/collections", collection_body(
        acc, 1_000, who, advance_on_failure=True)), 422, "advance_limit_exceeded")  # fmt: skip
    refused(await other.get(f"/v1/collections/{first['id']}"), 404, "not_found")
    found = ok(await client.get("/v1/collections?merchant_order_id=same-order"), 200)
    assert [c["id"] for c in found["data"]] == [first["id"]]
    assert ok(await other.get("/v1/collections?merchant_order_id=same-order"), 200)["data"] == []
    assert (await final(client, first["id"]))["status"] == "succeeded"


async def exposure_of(world: BankWorld, merchant_id: str) -> dict[str, Any]:
    data = ok(await world.gw.admin.get("/admin/exposure"), 200)
    found = [m for m in data["merchants"] if m["merchant_id"] == merchant_id]
    return found[0] if found else {"advance_used": 0, "collections_fronted": 0}


async def test_failed_debit_is_fronted_then_repaid_by_the_next_success(world: BankWorld) -> None:
    m, client = await world.gw.merchant(0, funding_mode="advance", advance_limit=100_000)
    acc = await personal_account(client)
    who = payer()
    await world.script("102", who["account_no"], outcome="insufficient_balance")
    failed = await final(client, (await collect(client, acc, 30_000, who,
                                                advance_on_failure=True))["id"])  # fmt: skip
    assert failed["status"] == "failed" and failed["advanced"] == 30_000, failed
    assert await available(client, acc) == 30_000  # the company fronted it (公司垫付)
    exposed = await exposure_of(world, m["id"])
    assert (exposed["advance_used"], exposed["collections_fronted"]) == (30_000, 30_000)

    # Too big for what is left of the line: the failure stands alone, nothing fronted.
    big = await final(client, (await collect(client, acc, 80_000, who,
                                             advance_on_failure=True))["id"])  # fmt: skip
    assert big["status"] == "failed" and big["advanced"] == 0

    await world.script("102", who["account_no"], outcome="succeeded")
    repaid = await final(client, (await collect(client, acc, 50_000, who))["id"])
    assert repaid["status"] == "succeeded" and repaid["repaid"] == 30_000, repaid
    assert await available(client, acc) == 30_000 + 20_000
    exposed = await exposure_of(world, m["id"])
    assert (exposed["advance_used"], exposed["collections_fronted"]) == (0, 0)
    # Another payer's success repays nothing of it (there is nothing left, and not theirs).
    other = await final(client, (await collect(client, acc, 1_000, payer()))["id"])
    assert other["repaid"] == 0
