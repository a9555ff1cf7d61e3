"""Merchant notifications (SPEC 10, issue 7): outbox -> signed POSTs to notify_url, the retry
schedule in simulated time, per-merchant isolation, the events API and redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from gateway.client import MerchantClient
from gateway.notifications.event_types import DEFAULT_NOTIFY_EVENTS
from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent, apply_events_in_tx
from gateway.settings import Settings
from loadtest.sink.webhook import start_sink
from tests.banks import BankWorld, bank_world
from tests.harness import LiveGateway, wait_until
from tests.payloads import payout_body

CREDIT = 10_000_000
EVERY = ["*"]  # notify_events: every event type, not only the final ones (the default)


@dataclass
class NotifyWorld:
    world: BankWorld
    sink_url: str
    http: aiohttp.ClientSession

    async def merchant(self, **fields: Any) -> tuple[dict[str, Any], MerchantClient]:
        m, client = await self.world.gw.merchant(CREDIT, **fields)
        url = f"{self.sink_url}/notify/{m['id']}"
        resp = await self.world.gw.admin.patch(f"/admin/merchants/{m['id']}", {"notify_url": url})
        assert resp.status == 200, resp.body
        await self._put(f"/merchants/{m['id']}", {"secret": m["secret"]})
        return m, client

    async def behaviour(self, merchant_id: str, **b: Any) -> None:
        await self._put(f"/merchants/{merchant_id}/behaviour", b)

    async def received(self, merchant_id: str) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.sink_url}/merchants/{merchant_id}/received") as r:
            assert r.status == 200
            data: list[dict[str, Any]] = orjson.loads(await r.read())["data"]
            return data

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.sink_url}/stats") as r:
            data: dict[str, Any] = orjson.loads(await r.read())
            return data

    async def _put(self, path: str, body: dict[str, Any]) -> None:
        async with self.http.put(self.sink_url + path, data=orjson.dumps(body)) as r:
            assert r.status == 200, await r.text()


@asynccontextmanager
async def notify_world(
    settings: Settings, time_scale: float, notify_timeout_s: float = 0.3
) -> AsyncIterator[NotifyWorld]:
    sink_server, port = await start_sink("127.0.0.1", 0)
    try:
        s = settings.with_(time_scale=time_scale, notify_timeout_s=notify_timeout_s)
        async with bank_world(s) as world, aiohttp.ClientSession() as http:
            yield NotifyWorld(world, f"http://127.0.0.1:{port}", http)
    finally:
        await sink_server.close()


async def events_of(client: MerchantClient, object_id: str) -> list[dict[str, Any]]:
    resp = await client.get("/v1/events?limit=200")
    assert resp.status == 200, resp.body
    return [e for e in resp.json()["data"] if e["object_id"] == object_id]


async def event_detail(client: MerchantClient, event_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/events/{event_id}")
    assert resp.status == 200, resp.body
    data: dict[str, Any] = resp.json()
    return data


async def delivery_of(client: MerchantClient, object_id: str) -> list[tuple[str, str]]:
    """(type, delivery status) of the object's events, in sequence order."""
    return [(e["type"], e["delivery"]["status"]) for e in await events_of(client, object_id)]


async def arrived(nw: NotifyWorld, merchant_id: str, object_id: str) -> list[tuple[int, str]]:
    """(sequence, type) of what reached the merchant's notify_url for the object."""
    rs = await nw.received(merchant_id)
    return [(r["sequence"], r["type"]) for r in rs if r["object_id"] == object_id]


async def pay(client: MerchantClient, amount: int = 1_000) -> str:
    resp = await client.post("/v1/payouts", payout_body(amount))
    assert resp.status == 201, resp.body
    payout_id: str = resp.json()["id"]
    return payout_id


async def test_event_is_written_only_if_its_change_commits(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(CREDIT, review_threshold=5_000)
    resp = await client.post("/v1/payouts", payout_body(6_000))
    assert resp.status == 201 and resp.json()["status"] == "review_pending"
    pid = resp.json()["id"]
    refused = await client.post("/v1/payouts", payout_body(CREDIT * 2))
    assert refused.status == 422  # a refused payout writes nothing
    conn = await gateway.db()
    try:

        async def count() -> int:
            n: int = await conn.fetchval("SELECT count(*) FROM outbox_events")
            return n

        assert await count() == 1
        try:
            async with conn.transaction():
                applied = await apply_events_in_tx(conn, [PayoutEvent(pid, Event.APPROVE)])
                assert applied[0].applied
                assert await count() == 2  # inside the transaction, the event is there
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert await count() == 1  # rolled back with its change
    finally:
        await conn.close()


async def test_failing_sink_gets_attempts_on_the_schedule_then_one_delivery(
    settings: Settings,
) -> None:
    # 100x: the schedule's 15 s is 150 ms of wall time, well above a round's own latency.
    async with notify_world(settings, time_scale=100) as nw:
        m, client = await nw.merchant(notify_events=EVERY)
        await nw.behaviour(m["id"], mode="ok", fail_next=2, status=500)
        pid = await pay(client)
        [first] = [e for e in await events_of(client, pid) if e["sequence"] == 1]
        done = await wait_until(lambda: event_detail(client, first["id"]),
                                lambda e: e["delivery"]["status"] == "delivered",
                                timeout_s=20)  # fmt: skip
        history = done["delivery"]["history"]
        assert [h["http_status"] for h in history] == [500, 500, 200]
        at = [datetime.fromisoformat(h["sim_at"]) for h in history]
        gap1, gap2 = ((at[1] - at[0]).total_seconds(), (at[2] - at[1]).total_seconds())
        assert 15 <= gap1 < 60, gap1  # 15 s after the first failure (simulated time)
        assert 60 <= gap2 < 300, gap2  # then 1 min
        arrivals = [r for r in await nw.received(m["id"]) if r["event_id"] == first["id"]]
        assert [r["attempt"] for r in arrivals] == [1, 2, 3]


async def test_sink_that_never_answers_ends_failed_after_the_last_attempt(
    settings: Settings,
) -> None:
    async with notify_world(settings, time_scale=200_000) as nw:
        m, client = await nw.merchant(notify_events=EVERY)
        await nw.behaviour(m["id"], mode="hang")
        pid = await pay(client)
        [first] = [e for e in await events_of(client, pid) if e["sequence"] == 1]
        done = await wait_until(lambda: event_detail(client, first["id"]),
                                lambda e: e["delivery"]["status"] == "failed",
                                timeout_s=30)  # fmt: skip
        history = done["delivery"]["history"]
        assert len(history) == 9  # the first attempt and the 8 retries of the schedule
        assert all(h["http_status"] is None and h["error"] for h in history)


async def test_slow_merchant_does_not_hold_up_another(settings: Settings) -> None:
    # Each of the slow merchant's attempts holds a slot for 2 s: any head-of-line blocking
    # would cost the other merchant at least that.
    async with notify_world(settings, time_scale=1, notify_timeout_s=2.0) as nw:
        slow, slow_client = await nw.merchant(notify_events=EVERY)
        await nw.behaviour(slow["id"], mode="hang")
        for _ in range(30):
            await pay(slow_client)
        fast, fast_client = await nw.merchant(notify_events=EVERY)
        started = asyncio.get_running_loop().time()
        pid = await pay(fast_client)
        await wait_until(
            lambda: nw.received(fast["id"]), lambda rs: any(r["object_id"] == pid for r in rs)
        )
        waited = asyncio.get_running_loop().time() - started
        assert waited < 1.0, waited


async def test_sequences_arrive_in_order_signed_and_redelivery_works(settings: Settings) -> None:
    async with notify_world(settings, time_scale=1) as nw:
        m, client = await nw.merchant(notify_events=EVERY)
        pid = await pay(client)
        await nw.world.wait_payout(client, pid)

        async def arrived() -> list[int]:
            return [r["sequence"] for r in await nw.received(m["id"]) if r["object_id"] == pid]

        seqs = await wait_until(arrived, lambda s: len(s) >= 3, timeout_s=10)
        assert seqs == sorted(seqs) == [1, 2, 3]
        events = await events_of(client, pid)
        assert [e["type"] for e in events] == ["payout.accepted", "payout.processing",
                                               "payout.succeeded"]  # fmt: skip
        again = await client.post(f"/v1/events/{events[0]['id']}/redeliver")
        assert again.status == 202, again.body
        first_id = events[0]["id"]
        await wait_until(
            lambda: nw.received(m["id"]), lambda rs: sum(r["event_id"] == first_id for r in rs) == 2
        )
        _, other = await nw.merchant()
        assert (await other.get(f"/v1/events/{events[0]['id']}")).status == 404
        assert (await other.post(f"/v1/events/{events[0]['id']}/redeliver")).status == 404
        stats = await nw.stats()
        assert stats["merchants"][m["id"]]["rejected"] == 0  # every signature verified


async def test_default_merchant_is_sent_only_the_final_event_but_lists_every_one(
    settings: Settings,
) -> None:
    async with notify_world(settings, time_scale=1) as nw:
        m, client = await nw.merchant()
        assert m["notify_events"] == list(DEFAULT_NOTIFY_EVENTS)
        pid = await pay(client)
        assert (await nw.world.wait_payout(client, pid))["status"] == "succeeded"
        listed = await wait_until(lambda: delivery_of(client, pid),
                                  lambda d: d[-1][1] == "delivered")  # fmt: skip
        assert listed == [
            ("payout.accepted", "skipped"),
            ("payout.processing", "skipped"),
            ("payout.succeeded", "delivered"),
        ]
        # Skipped events were never pending, so nothing else can still arrive.
        assert await arrived(nw, m["id"], pid) == [(3, "payout.succeeded")]
        for event in (await events_of(client, pid))[:2]:
            detail = await event_detail(client, event["id"])
            assert detail["delivery"]["attempts"] == 0
            assert detail["delivery"]["history"] == []


async def test_merchant_choosing_one_type_is_sent_just_that_type(settings: Settings) -> None:
    async with notify_world(settings, time_scale=1) as nw:
        m, client = await nw.merchant(notify_events=["payout.processing"])
        assert m["notify_events"] == ["payout.processing"]
        pid = await pay(client)
        assert (await nw.world.wait_payout(client, pid))["status"] == "succeeded"
        listed = await wait_until(lambda: delivery_of(client, pid),
                                  lambda d: d[1][1] == "delivered")  # fmt: skip
        assert listed == [
            ("payout.accepted", "skipped"),
            ("payout.processing", "delivered"),
            ("payout.succeeded", "skipped"),
        ]
        assert await arrived(nw, m["id"], pid) == [(2, "payout.processing")]


async def test_patched_notify_events_apply_to_the_events_written_after_it(
    settings: Settings,
) -> None:
    async with notify_world(settings, time_scale=1) as nw:
        m, client = await nw.merchant(review_threshold=5_000)
        pid = await pay(client, 6_000)  # held for review: payout.review_pending is a default
        await wait_until(lambda: arrived(nw, m["id"], pid),
                         lambda a: a == [(1, "payout.review_pending")])  # fmt: skip
        patched = await nw.world.gw.admin.patch(
            f"/admin/merchants/{m['id']}", {"notify_events": ["*"]}
        )
        assert patched.status == 200, patched.body
        assert patched.json()["notify_events"] == ["*"]
        approved = await nw.world.gw.admin.post(f"/admin/payouts/{pid}/approve")
        assert approved.status == 200, approved.body
        assert (await nw.world.wait_payout(client, pid))["status"] == "succeeded"
        got = await wait_until(lambda: arrived(nw, m["id"], pid), lambda a: len(a) >= 4)
        assert got == [
            (1, "payout.review_pending"),
            (2, "payout.accepted"),
            (3, "payout.processing"),
            (4, "payout.succeeded"),
        ]


async def test_redelivery_of_a_skipped_event_delivers_it(settings: Settings) -> None:
    async with notify_world(settings, time_scale=1) as nw:
        m, client = await nw.merchant()
        pid = await pay(client)
        await nw.world.wait_payout(client, pid)
        await wait_until(lambda: delivery_of(client, pid), lambda d: d[-1][1] == "delivered")
        accepted = (await events_of(client, pid))[0]
        assert accepted["delivery"]["status"] == "skipped"
        again = await client.post(f"/v1/events/{accepted['id']}/redeliver")
        assert again.status == 202, again.body
        assert again.json()["delivery"]["status"] == "pending"
        done = await wait_until(lambda: event_detail(client, accepted["id"]),
                                lambda e: e["delivery"]["status"] == "delivered")  # fmt: skip
        assert [h["http_status"] for h in done["delivery"]["history"]] == [200]
        assert await arrived(nw, m["id"], pid) == [(3, "payout.succeeded"), (1, "payout.accepted")]
        assert (await delivery_of(client, pid))[1] == ("payout.processing", "skipped")
