"""Accepting payouts: funds at the exact boundaries, idempotency, concurrency, no overdraft."""

import asyncio

import asyncpg

from gateway.settings import Settings
from tests.harness import LiveGateway, live_gateway
from tests.payloads import payout_body

FEE_FIXED = 100
FEE_BPS = 10  # 0.1 %


async def test_prefunded_accepts_exactly_available_and_refuses_one_fen_over(
    gateway: LiveGateway,
) -> None:
    # amount 100_000 -> fee 100 + 100 = 200; total 100_200.
    _m, client = await gateway.merchant(credit_fen=100_200, fee_fixed=FEE_FIXED, fee_bps=FEE_BPS)
    over = await client.post("/v1/payouts", payout_body(100_001))
    assert over.status == 422
    assert over.error_code == "insufficient_funds"
    exact = await client.post("/v1/payouts", payout_body(100_000))
    assert exact.status == 201, exact.body
    payout = exact.json()
    assert payout["fee"] == 200
    assert payout["status"] == "accepted"
    assert payout["funding"] == {"balance": 100_200, "advance": 0}
    assert payout["id"].startswith("po_")
    balance = (await client.get("/v1/balance")).json()
    assert (balance["available"], balance["held"]) == (0, 100_200)


async def test_fee_rounds_the_proportional_part_up_to_a_whole_fen(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(credit_fen=10**9, fee_fixed=0, fee_bps=3)
    # 1 fen * 3 bps = 0.0003 fen -> 1 fen; 10_000 * 3 / 10_000 = 3 exactly.
    assert (await client.post("/v1/payouts", payout_body(1))).json()["fee"] == 1
    assert (await client.post("/v1/payouts", payout_body(10_000))).json()["fee"] == 3
    assert (await client.post("/v1/payouts", payout_body(10_001))).json()["fee"] == 4


async def test_advance_fronts_what_the_balance_lacks_up_to_the_line(gateway: LiveGateway) -> None:
    # available 300, line 1_000: spendable 1_300 = amount 1_200 + fee 100.
    _m, client = await gateway.merchant(
        credit_fen=300, funding_mode="advance", advance_limit=1_000, fee_fixed=100
    )
    assert (await client.get("/v1/balance")).json()["spendable"] == 1_300
    over = await client.post("/v1/payouts", payout_body(1_201))
    assert over.status == 422
    assert over.error_code == "advance_limit_exceeded"
    exact = await client.post("/v1/payouts", payout_body(1_200))
    assert exact.status == 201, exact.body
    assert exact.json()["funding"] == {"balance": 300, "advance": 1_000}
    balance = (await client.get("/v1/balance")).json()
    assert balance["available"] == 0
    assert balance["advance_used"] == 1_000
    assert balance["held"] == 1_300
    assert balance["spendable"] == 0
    assert (await gateway.ledger_ok())["ok"]


async def test_advance_is_bounded_by_the_platform_pool(
    gateway: LiveGateway, db: asyncpg.Connection
) -> None:
    await db.execute("UPDATE advance_pool SET cap_fen = 500 WHERE id = 1")
    _, client = await gateway.merchant(funding_mode="advance", advance_limit=10_000)
    assert (await client.post("/v1/payouts", payout_body(501))).error_code == (
        "advance_limit_exceeded"
    )
    assert (await client.post("/v1/payouts", payout_body(500))).status == 201
    assert await db.fetchval("SELECT used_fen FROM advance_pool") == 500


async def test_same_order_id_same_fields_replays_and_different_fields_conflict(
    gateway: LiveGateway,
) -> None:
    _, client = await gateway.merchant(credit_fen=10**6)
    body = payout_body(5_000, order_id="order-1")
    first = await client.post("/v1/payouts", body)
    # Same fields in another key order are the same request.
    reordered = dict(reversed(list(body.items())))
    again = await client.post("/v1/payouts", reordered)
    changed = await client.post("/v1/payouts", {**body, "amount": 5_001})
    assert (first.status, again.status, changed.status) == (201, 200, 409)
    assert again.json() == first.json()
    assert changed.error_code == "idempotency_conflict"
    assert (await client.get("/v1/balance")).json()["held"] == 5_000


async def test_concurrent_duplicates_create_exactly_one_payout(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(credit_fen=10**6)
    body = payout_body(1_000, order_id="dup-1")
    resps = await asyncio.gather(*(client.post("/v1/payouts", body) for _ in range(50)))
    statuses = sorted(r.status for r in resps)
    assert statuses.count(201) == 1
    assert statuses.count(200) == 49
    assert len({r.json()["id"] for r in resps}) == 1
    assert (await client.get("/v1/balance")).json()["held"] == 1_000


async def test_200_concurrent_payouts_never_overdraw_a_prefunded_merchant(
    gateway: LiveGateway,
) -> None:
    # Funds for exactly 73 payouts of 1_000 + fee 100.
    _, client = await gateway.merchant(credit_fen=73 * 1_100, fee_fixed=100)
    resps = await asyncio.gather(
        *(client.post("/v1/payouts", payout_body(1_000)) for _ in range(200))
    )
    codes = [r.status for r in resps]
    assert codes.count(201) == 73
    assert {r.error_code for r in resps if r.status != 201} == {"insufficient_funds"}
    balance = (await client.get("/v1/balance")).json()
    assert (balance["available"], balance["held"]) == (0, 73 * 1_100)
    assert (await gateway.ledger_ok())["ok"]


async def test_200_concurrent_payouts_never_exceed_the_credit_line(gateway: LiveGateway) -> None:
    # 5_000 balance + 50_000 line = 55_000 = exactly 50 payouts of 1_000 + fee 100.
    _, client = await gateway.merchant(
        credit_fen=5_000, funding_mode="advance", advance_limit=50_000, fee_fixed=100
    )
    resps = await asyncio.gather(
        *(client.post("/v1/payouts", payout_body(1_000)) for _ in range(200))
    )
    assert [r.status for r in resps].count(201) == 50
    assert {r.error_code for r in resps if r.status != 201} == {"advance_limit_exceeded"}
    balance = (await client.get("/v1/balance")).json()
    assert balance["advance_used"] == 50_000
    assert balance["available"] == 0
    assert (await gateway.ledger_ok())["ok"]


async def test_amount_over_the_merchant_max_is_refused(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(credit_fen=10**9, max_amount=1_000)
    assert (await client.post("/v1/payouts", payout_body(1_000))).status == 201
    over = await client.post("/v1/payouts", payout_body(1_001))
    assert over.status == 422
    assert over.error_code == "amount_limit_exceeded"


async def test_payout_of_a_suspended_merchant_is_403(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant(credit_fen=10**6)
    await gateway.admin.patch(f"/admin/merchants/{m['id']}", {"status": "suspended"})
    resp = await client.post("/v1/payouts", payout_body(100))
    assert resp.status == 403
    assert resp.error_code == "merchant_suspended"


async def test_accepted_payout_writes_an_outbox_event_in_its_transaction(
    gateway: LiveGateway, db: asyncpg.Connection
) -> None:
    _, client = await gateway.merchant(credit_fen=10**6)
    payout = (await client.post("/v1/payouts", payout_body(100))).json()
    rows = await db.fetch(
        "SELECT type, sequence FROM outbox_events WHERE object_id = $1", payout["id"]
    )
    assert [(r["type"], r["sequence"]) for r in rows] == [("payout.accepted", 1)]


async def test_a_lone_accept_does_not_wait_for_company(settings: Settings) -> None:
    # The accepts' group commit gathers for PAYGATE_ACCEPT_BATCH_WAIT_MS only when it finds a
    # batch in flight; a payout that finds none is written at once. With a two-minute wait, a
    # lone payout answered within the deadline did not wait (a waiting one would time out).
    slow = settings.with_(accept_batch_wait_ms=120_000.0)
    async with live_gateway(slow) as gw:
        _, client = await gw.merchant(credit_fen=10**6)
        for i in range(3):
            resp = await asyncio.wait_for(
                client.post("/v1/payouts", payout_body(1_000, order_id=f"alone-{i}")), 30
            )
            assert resp.status == 201, resp.body
        assert (await client.get("/v1/balance")).json()["held"] == 3_000
