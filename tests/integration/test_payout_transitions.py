"""Succeed, fail and return move exactly the spec's amounts, once; review approve/reject."""

from typing import Any

import asyncpg

from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent, apply_events
from gateway.storage.pools import init_connection
from tests.harness import LiveGateway
from tests.payloads import payout_body


async def _conn(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


async def _apply(url: str, *events: PayoutEvent) -> list[Any]:
    conn = await _conn(url)
    try:
        return await apply_events(conn, list(events))
    finally:
        await conn.close()


async def _platform_balance(db: asyncpg.Connection, account: str) -> int:
    return int(
        await db.fetchval(
            "SELECT coalesce(sum(amount_fen), 0) FROM postings WHERE account = $1", account
        )
    )


async def test_success_moves_the_amount_to_the_bank_reserve_and_the_fee_to_income(
    gateway: LiveGateway, db: asyncpg.Connection, database_url: str
) -> None:
    _, client = await gateway.merchant(credit_fen=50_000, fee_fixed=100, fee_bps=0)
    payout = (await client.post("/v1/payouts", payout_body(10_000))).json()
    results = await _apply(
        database_url,
        PayoutEvent(payout["id"], Event.SUBMIT, bank_id="102", bank_ref="B1"),
        PayoutEvent(payout["id"], Event.SUCCEED),
    )
    assert [r.status for r in results] == ["processing", "succeeded"]
    balance = (await client.get("/v1/balance")).json()
    assert (balance["available"], balance["held"]) == (50_000 - 10_100, 0)
    assert await _platform_balance(db, "platform:reserve:102") == 10_000
    assert await _platform_balance(db, "platform:fee_income") == 100
    got = (await client.get(f"/v1/payouts/{payout['id']}")).json()
    assert (got["status"], got["bank_id"], got["bank_ref"]) == ("succeeded", "102", "B1")
    assert (await gateway.ledger_ok())["ok"]


async def test_failure_releases_balance_and_advance_parts_exactly(
    gateway: LiveGateway, database_url: str
) -> None:
    _, client = await gateway.merchant(
        credit_fen=300, funding_mode="advance", advance_limit=1_000, fee_fixed=100
    )
    before = (await client.get("/v1/balance")).json()
    payout = (await client.post("/v1/payouts", payout_body(1_000))).json()
    assert payout["funding"] == {"balance": 300, "advance": 800}
    await _apply(
        database_url,
        PayoutEvent(payout["id"], Event.SUBMIT, bank_id="102"),
        PayoutEvent(payout["id"], Event.FAIL, failure_code="account_not_found",
                    failure_message="no such account"),
    )  # fmt: skip
    after = (await client.get("/v1/balance")).json()
    assert after == before
    got = (await client.get(f"/v1/payouts/{payout['id']}")).json()
    assert got["failure"] == {"code": "account_not_found", "message": "no such account"}
    assert (await gateway.ledger_ok())["ok"]


async def test_return_after_success_credits_the_amount_and_keeps_the_fee(
    gateway: LiveGateway, db: asyncpg.Connection, database_url: str
) -> None:
    _, client = await gateway.merchant(credit_fen=20_000, fee_fixed=100)
    payout = (await client.post("/v1/payouts", payout_body(10_000))).json()
    await _apply(
        database_url,
        PayoutEvent(payout["id"], Event.SUBMIT, bank_id="105"),
        PayoutEvent(payout["id"], Event.SUCCEED),
        PayoutEvent(payout["id"], Event.RETURN),
    )
    balance = (await client.get("/v1/balance")).json()
    assert balance["available"] == 20_000 - 100
    assert await _platform_balance(db, "platform:reserve:105") == 0
    assert await _platform_balance(db, "platform:fee_income") == 100
    assert (await gateway.ledger_ok())["ok"]


async def test_duplicate_and_out_of_order_events_move_no_money(
    gateway: LiveGateway, db: asyncpg.Connection, database_url: str
) -> None:
    _, client = await gateway.merchant(credit_fen=20_000)
    payout = (await client.post("/v1/payouts", payout_body(10_000))).json()
    pid = payout["id"]
    await _apply(database_url, PayoutEvent(pid, Event.SUBMIT, bank_id="102"),
                 PayoutEvent(pid, Event.SUCCEED))  # fmt: skip
    entries_before = await db.fetchval("SELECT count(*) FROM journal_entries")
    late = await _apply(
        database_url,
        PayoutEvent(pid, Event.SUCCEED),
        PayoutEvent(pid, Event.FAIL, failure_code="late"),
        PayoutEvent(pid, Event.SUBMIT),
    )
    assert [r.applied for r in late] == [False, False, False]
    assert all(r.status == "succeeded" for r in late)
    assert await db.fetchval("SELECT count(*) FROM journal_entries") == entries_before
    events = await db.fetch(
        "SELECT sequence, type FROM outbox_events WHERE object_id = $1 ORDER BY sequence", pid
    )
    assert [(e["sequence"], e["type"]) for e in events] == [
        (1, "payout.accepted"),
        (2, "payout.processing"),
        (3, "payout.succeeded"),
    ]
    assert (await gateway.ledger_ok())["ok"]


async def test_review_threshold_holds_then_approve_or_reject(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(credit_fen=100_000, review_threshold=5_000)
    small = (await client.post("/v1/payouts", payout_body(4_999))).json()
    big = (await client.post("/v1/payouts", payout_body(5_000))).json()
    other = (await client.post("/v1/payouts", payout_body(6_000))).json()
    assert small["status"] == "accepted"
    assert big["status"] == "review_pending"
    assert (await client.get("/v1/balance")).json()["held"] == 4_999 + 5_000 + 6_000
    reviews = (await gateway.admin.get("/admin/reviews")).json()["data"]
    assert {r["id"] for r in reviews} == {big["id"], other["id"]}

    approved = await gateway.admin.post(f"/admin/payouts/{big['id']}/approve")
    assert approved.status == 200
    assert approved.json()["status"] == "accepted"
    rejected = await gateway.admin.post(f"/admin/payouts/{other['id']}/reject",
                                        {"reason": "payee looks wrong"})  # fmt: skip
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["failure"]["code"] == "rejected_by_review"
    twice = await gateway.admin.post(f"/admin/payouts/{other['id']}/approve")
    assert twice.status == 409
    assert twice.error_code == "invalid_state"
    missing = await gateway.admin.post("/admin/payouts/po_nothing/approve")
    assert missing.status == 404
    balance = (await client.get("/v1/balance")).json()
    assert balance["held"] == 4_999 + 5_000
    assert balance["available"] == 100_000 - 4_999 - 5_000
    assert (await gateway.admin.get("/admin/reviews")).json()["data"] == []
    assert (await gateway.ledger_ok())["ok"]
