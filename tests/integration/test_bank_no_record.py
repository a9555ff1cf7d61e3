""" "The bank never received it" (issue 22 item 5): an order is failed `bank_no_record` (its
hold released) only on the bank's own signed "no such order", seen on `bank_no_record_polls`
consecutive queries spread over at least `bank_no_record_min_s` of simulated time. Fewer, or
quicker, or broken by any other answer (unavailable, found), or a 404 that is not the bank's
(a wrong path, something else answering): the order stays unknown and is asked again.

Each order here was marked `sending` by a worker that died before the HTTP call (the real
way an order the bank never received comes about); a poller of the test's own, on a
simulated clock the test moves, asks the real bank simulator over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web

from channels.bank_sim.app import build_bank_sim_app
from channels.bank_sim.config import BankSimConfig
from channels.client import BankClient
from gateway.client import MerchantClient
from gateway.collection.orders import CollectionOrders
from gateway.payouts.bank_orders import BankOrders, Claimed
from gateway.payouts.orders import PayoutOrders
from gateway.server import start_site
from gateway.settings import Settings
from gateway.storage.pools import init_connection
from gateway.workers.poll import StatusPoller
from protocol.clock import SimClock
from protocol.ids import new_id
from tests.harness import LiveGateway, wait_until
from tests.integration.test_accounts import customer, ok, open_account
from tests.payloads import payout_body

POLLS = 3
MIN_S = 600.0
CREDIT = 1_000_000
AMOUNT = 12_000
PAYEE = {"account_no": "6222050500000000001", "account_name": "Sun Qi",
         "bank_code": "102100099996", "account_type": "personal"}  # fmt: skip


@dataclass
class Bench:
    gw: LiveGateway
    settings: Settings
    pool: asyncpg.Pool
    http: aiohttp.ClientSession
    sim_url: str
    clock: SimClock  # the poller's: the test moves it

    def poller(self, orders: BankOrders, base_url: str | None = None) -> StatusPoller:
        bank = BankClient(self.http, base_url or self.sim_url, self.settings.bank_master_secret,
                          submit_timeout_s=1, query_timeout_s=1)  # fmt: skip
        return StatusPoller(self.settings, self.pool, bank, self.clock, orders)

    async def profile(self, **fields: Any) -> None:
        async with self.http.put(f"{self.sim_url}/banks/102/profile",
                                 data=orjson.dumps(fields)) as resp:  # fmt: skip
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def bench(gateway: LiveGateway) -> AsyncIterator[Bench]:
    settings = gateway.settings.with_(bank_no_record_polls=POLLS, bank_no_record_min_s=MIN_S,
                                      poll_max_interval_s=0.5, unknown_first_query_ms=50.0,
                                      query_timeout_s=1.0)  # fmt: skip
    sim = build_bank_sim_app(BankSimConfig(seed=5, master_secret=settings.bank_master_secret,
                                           callback_url=""))  # fmt: skip
    runner, port = await start_site(sim, "127.0.0.1", 0)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4,
                                     init=init_connection)  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            yield Bench(gateway, settings, pool, http, f"http://127.0.0.1:{port}", SimClock())
    finally:
        await pool.close()
        await runner.cleanup()
    check = await gateway.ledger_ok()
    assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


@dataclass
class Order:
    kind: str
    id: str
    client: MerchantClient
    claimed: Claimed

    @property
    def orders(self) -> BankOrders:
        return PayoutOrders() if self.kind == "payout" else CollectionOrders()

    async def get(self) -> dict[str, Any]:
        return ok(await self.client.get(f"/v1/{self.kind}s/{self.id}"), 200)


async def sent_but_never_arrived(bench: Bench, kind: str = "payout") -> Order:
    """An order a worker marked `sending` to bank 102 and then died: the bank never saw it."""
    if kind == "payout":
        _, client = await bench.gw.merchant(CREDIT)
        order_id = ok(await client.post("/v1/payouts", payout_body(AMOUNT, payee=PAYEE)))["id"]
        claimed = Claimed(order_id, "accepted", AMOUNT, "CNY", PAYEE, None, 0)
    else:
        _, client = await bench.gw.merchant(0)
        acc = await open_account(client, await customer(client, new_id("u")))
        payer = {k: v for k, v in PAYEE.items() if k != "account_type"}
        body = {"merchant_order_id": new_id("c"), "account_id": acc, "amount": AMOUNT,
                "currency": "CNY", "payer": payer}  # fmt: skip
        order_id = ok(await client.post("/v1/collections", body))["id"]
        claimed = Claimed(order_id, "pending", AMOUNT, "CNY", PAYEE, "collection", 0,
                          direction="debit")  # fmt: skip
    order = Order(kind, order_id, client, claimed)
    sent = await order.orders.mark_sending(bench.pool, [(claimed, "102")], {},
                                           datetime.now(UTC))  # fmt: skip
    assert sent == {order_id}
    return order


async def ask(poller: StatusPoller, order: Order) -> None:
    """One more query of the order, as soon as it is due (none once it is final)."""

    async def once() -> int | str:
        asked: int = await poller.run_once()
        if asked:
            return asked
        status = str((await order.get())["status"])
        return 0 if status in ("processing", "pending") else status

    await wait_until(once, lambda r: r != 0)


async def held(client: MerchantClient) -> int:
    return int(ok(await client.get("/v1/balance"), 200)["held"])


@pytest.mark.parametrize("kind", ["payout", "collection"])
async def test_no_such_order_on_n_queries_over_the_minimum_time_fails_it(
    bench: Bench, kind: str
) -> None:
    order = await sent_but_never_arrived(bench, kind)
    poller = bench.poller(order.orders)
    for _ in range(POLLS):
        await ask(poller, order)
    # N answers, but within seconds: the bank may not show it yet. Not concluded.
    assert (await order.get())["status"] in ("processing", "pending")
    for _ in range(POLLS):
        await ask(poller, order)
    assert (await order.get())["status"] in ("processing", "pending")
    # The same answer once the streak spans the minimum simulated time: it never arrived.
    bench.clock.advance(MIN_S)
    await ask(poller, order)
    done = await order.get()
    assert done["status"] == "failed" and done["failure"]["code"] == "bank_no_record", done
    if kind == "payout":
        assert await held(order.client) == 0
        assert ok(await order.client.get("/v1/balance"), 200)["available"] == CREDIT


async def test_any_other_answer_starts_the_streak_again(bench: Bench) -> None:
    order = await sent_but_never_arrived(bench)
    poller = bench.poller(order.orders)
    await bench.profile(maintenance_now=True)
    for _ in range(POLLS - 1):  # answered 503 maintenance: says nothing about the order
        await ask(poller, order)
    await bench.profile(maintenance_now=False)
    await ask(poller, order)  # no such order: 1
    bench.clock.advance(MIN_S)
    await ask(poller, order)  # no such order: 2 (N - 1), over the minimum time
    assert (await order.get())["status"] == "processing"
    # The submission the worker made after all arrives late: the next answer finds it.
    arrived = await poller_bank(bench).submit("102", order.claimed.submission())
    assert arrived.record is not None and arrived.record.ref == order.id

    async def asked() -> str:
        await ask(poller, order)
        return str((await order.get())["status"])

    # Found, then asked until final: paid once, as the bank says; never failed no-record.
    assert await wait_until(asked, lambda s: s != "processing", timeout_s=20) == "succeeded"
    assert await held(order.client) == 0


def poller_bank(bench: Bench) -> BankClient:
    return BankClient(bench.http, bench.sim_url, bench.settings.bank_master_secret,
                      submit_timeout_s=5, query_timeout_s=1)  # fmt: skip


async def plain_404(request: web.Request) -> web.Response:
    """Something that is not the bank answering (a proxy, another service): the 404 and the
    body the bank used to send, unsigned."""
    body = {"code": "not_found", "message": "no such payout at this bank"}
    return web.json_response(body, status=404)


@pytest.mark.parametrize("where", ["wrong_path", "not_the_bank"])
async def test_a_404_that_is_not_the_banks_word_never_concludes_no_record(
    bench: Bench, where: str
) -> None:
    other: web.AppRunner | None = None
    if where == "wrong_path":  # the simulator itself, a path it has no route for
        base = bench.sim_url + "/v2"
    else:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", plain_404)
        other, port = await start_site(app, "127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
    try:
        order = await sent_but_never_arrived(bench)
        poller = bench.poller(order.orders, base)
        for _ in range(POLLS + 1):
            await ask(poller, order)
        bench.clock.advance(MIN_S)
        for _ in range(POLLS + 1):
            await ask(poller, order)
    finally:
        if other is not None:
            await other.cleanup()
    assert (await order.get())["status"] == "processing"
    assert await held(order.client) == AMOUNT
    conn = await bench.gw.db()
    try:
        state = await conn.fetchval("SELECT state FROM payout_queue WHERE payout_id = $1", order.id)
    finally:
        await conn.close()
    assert state in ("sending", "unknown")  # still asked about


async def test_an_order_the_bank_acknowledged_is_never_concluded_not_received(
    bench: Bench,
) -> None:
    order = await sent_but_never_arrived(bench)
    await bench.profile(callback_delay={"median_ms": 600_000, "p99_ms": 600_000})
    arrived = await poller_bank(bench).submit("102", order.claimed.submission())
    assert arrived.record is not None
    await ask(bench.poller(order.orders), order)  # found: the bank holds it (its bank_ref)
    assert (await order.get())["bank_ref"] == arrived.record.bank_ref
    # A bank that forgot it (a simulator without books, started afresh) then denies it.
    forgetful = build_bank_sim_app(
        BankSimConfig(seed=6, callback_url="", master_secret=bench.settings.bank_master_secret)
    )
    runner, port = await start_site(forgetful, "127.0.0.1", 0)
    try:
        poller = bench.poller(order.orders, f"http://127.0.0.1:{port}")
        for _ in range(POLLS):
            await ask(poller, order)
        bench.clock.advance(MIN_S)
        for _ in range(POLLS):
            await ask(poller, order)
    finally:
        await runner.cleanup()
    # Contradicted, not concluded: still held, still asked about (reconciliation shows it).
    assert (await order.get())["status"] == "processing"
    assert await held(order.client) == AMOUNT
