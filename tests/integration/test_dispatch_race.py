"""Two dispatcher workers never both send one order (SPEC 6 "never resubmitted", SPEC 15 scale
out): `mark_sending` of two workers over the same due orders, the second a few ms behind (its
statement's snapshot taken before the first commits, its locks after), marks each order
`sending` for one of them only — payouts and collections alike.

A race test, not a proof: on 2026-12-06 it passed against the old lock (payout row only) at 30
trials of 3,000 orders, for both kinds, on a quiet machine; it was cut to 10 trials (it took
70 s a kind on a loaded one). The lock's reasoning is in payouts/transitions.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.collection.orders import CollectionOrders
from gateway.payouts.bank_orders import BankOrders, Claimed
from gateway.payouts.orders import PayoutOrders
from gateway.storage.pools import init_connection
from protocol.ids import new_id
from tests.harness import LiveGateway
from tests.integration.test_accounts import customer, open_account
from tests.payloads import payout_body

ORDERS = 3000
TRIALS = 10


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    a = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=init_connection)
    b = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=init_connection)
    yield a, b
    await a.close()
    await b.close()


async def queued_payouts(gw: LiveGateway) -> list[str]:
    _, client = await gw.merchant(10**11)
    for b in range(ORDERS // 500):
        items = [payout_body(1_000, payee={"account_no": f"6222{b}{i:010d}", "account_name": "Z",
                 "bank_code": "102100099996", "account_type": "personal"})
                 for i in range(500)]  # fmt: skip
        resp = await client.post("/v1/payout-batches", {"items": items})
        assert resp.status == 200 and resp.json()["accepted"] == 500, resp.body
    conn = await gw.db()
    try:
        return [r["payout_id"] for r in await conn.fetch(
            "SELECT payout_id FROM payout_queue WHERE state = 'queued'")]  # fmt: skip
    finally:
        await conn.close()


async def queued_collections(gw: LiveGateway) -> list[str]:
    m, client = await gw.merchant(0)
    acc = await open_account(client, await customer(client, "race-user"))
    conn = await gw.db()
    try:
        rows = await conn.fetch(
            """WITH c AS (
                   INSERT INTO collections (id, merchant_id, merchant_order_id, request_hash,
                       account_id, amount_fen, currency, payer, payer_account_no)
                   SELECT ($4::text[])[n], $1, 'race-' || n, 'h', $2, 1000, 'CNY',
                          jsonb_build_object('account_no', '6217' || n, 'account_name', 'Z',
                                             'bank_code', '102100099996'), '6217' || n
                   FROM generate_series(1, $3) n RETURNING id)
               INSERT INTO collection_queue (collection_id) SELECT id FROM c
               RETURNING collection_id""",
            m["id"], acc, ORDERS, [new_id("col") for _ in range(ORDERS)],
        )  # fmt: skip
        return [r["collection_id"] for r in rows]
    finally:
        await conn.close()


@pytest.mark.parametrize("kind", ["payout", "collection"])
async def test_two_workers_never_both_send_an_order(
    gateway: LiveGateway, pools: tuple[asyncpg.Pool, asyncpg.Pool], kind: str
) -> None:
    orders: BankOrders = PayoutOrders() if kind == "payout" else CollectionOrders()
    ids = await (queued_payouts(gateway) if kind == "payout" else queued_collections(gateway))
    assert len(ids) == ORDERS
    claimed = [Claimed(i, "accepted", 1_000, "CNY", {}, None, 0) for i in ids]
    table, key = (("payout_queue", "payout_id") if kind == "payout"
                  else ("collection_queue", "collection_id"))  # fmt: skip
    rng = random.Random(7)
    conn = await gateway.db()
    try:
        for trial in range(TRIALS):
            await conn.execute(f"UPDATE {table} SET state = 'queued' WHERE {key} = ANY($1)", ids)
            poll_at = datetime.now(UTC) + timedelta(seconds=60)

            async def second(wait_s: float, poll_at: datetime = poll_at) -> set[str]:
                await asyncio.sleep(wait_s)  # a stagger between two workers, not a sync point
                return await orders.mark_sending(pools[1], [(c, "103") for c in claimed], {},
                                                 poll_at)  # fmt: skip

            first, later = await asyncio.gather(
                orders.mark_sending(pools[0], [(c, "102") for c in claimed], {}, poll_at),
                second(rng.uniform(0, 0.06)),
            )
            assert not first & later, f"trial {trial}: {len(first & later)} sent by both"
            assert first | later == set(ids)
    finally:
        await conn.close()
