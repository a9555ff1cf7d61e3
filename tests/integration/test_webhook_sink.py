"""The demo merchant webhook sink over real HTTP: signed notifications are verified and
recorded, forged ones refused, and each merchant answers as told (ok, error, slow, hang)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from loadtest.sink.webhook import start_sink
from protocol import signing
from tests.harness import Reply, raw_request, wait_until

SECRET_A = "sink-secret-a-0123456789abcdef"
SECRET_B = "sink-secret-b-0123456789abcdef"
A = "m_sink_a"
B = "m_sink_b"


def event(
    event_id: str = "evt_1",
    object_id: str = "po_1",
    sequence: int = 1,
    type_: str = "payout.succeeded",
) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": type_,
            "object_id": object_id,
            "sequence": sequence,
            "data": {"id": object_id, "status": "succeeded", "amount": 10_000},
            "created_at": "2025-11-25T00:00:00+00:00",
        }
    )


@dataclass
class LiveSink:
    url: str
    http: aiohttp.ClientSession

    async def raw(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        timeout_s: float = 5.0,
    ) -> Reply:
        return await raw_request(self.http, method, self.url + path, body, headers, timeout_s)

    async def notify(
        self,
        merchant_id: str,
        body: bytes | None = None,
        *,
        key: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        timeout_s: float = 5.0,
    ) -> Reply:
        """POST a notification signed the way the gateway signs it (key = merchant id)."""
        body = event() if body is None else body
        path = f"/notify/{merchant_id}"
        headers = signing.sign_request(
            key or merchant_id,
            secret or {A: SECRET_A, B: SECRET_B}.get(merchant_id, "unknown"),
            "POST",
            path,
            body,
            timestamp=timestamp,
            nonce=nonce,
        )
        return await self.raw("POST", path, body, headers, timeout_s=timeout_s)

    async def put(self, path: str, body: dict[str, Any]) -> Reply:
        return await self.raw("PUT", path, orjson.dumps(body))

    async def behave(self, merchant_id: str, **behaviour: Any) -> None:
        reply = await self.put(f"/merchants/{merchant_id}/behaviour", behaviour)
        assert reply.status == 200, reply.body

    async def received(self, merchant_id: str) -> dict[str, Any]:
        reply = await self.raw("GET", f"/merchants/{merchant_id}/received")
        assert reply.status == 200, reply.body
        data: dict[str, Any] = reply.body
        return data

    async def stats(self, merchant_id: str) -> dict[str, Any]:
        reply = await self.raw("GET", "/stats")
        assert reply.status == 200, reply.body
        data: dict[str, Any] = reply.body["merchants"][merchant_id]
        return data


@pytest.fixture
async def sink() -> AsyncIterator[LiveSink]:
    sink_server, port = await start_sink("127.0.0.1", 0, {A: SECRET_A, B: SECRET_B})
    try:
        async with aiohttp.ClientSession() as http:
            yield LiveSink(f"http://127.0.0.1:{port}", http)
    finally:
        await sink_server.close()


async def test_signed_notification_is_answered_ok_and_recorded(sink: LiveSink) -> None:
    before_s = time.time()
    reply = await sink.notify(A, event("evt_ok", "po_ok", 3))
    assert (reply.status, reply.body) == (200, {"ok": True})
    received = await sink.received(A)
    assert received["rejected"] == 0
    [record] = received["data"]
    assert record["event_id"] == "evt_ok"
    assert record["type"] == "payout.succeeded"
    assert (record["object_id"], record["sequence"], record["attempt"]) == ("po_ok", 3, 1)
    assert record["answer_status"] == 200
    assert before_s <= record["received_wall_s"] <= time.time()
    assert record["received_mono_s"] <= time.monotonic()
    assert record["received_at"].startswith(time.strftime("%Y-", time.gmtime(before_s)))
    assert (await sink.received(B))["data"] == []


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_secret", "invalid_signature"),
        ("tampered_body", "invalid_signature"),
        ("stale_timestamp", "stale_request"),
        ("another_merchants_key", "invalid_signature"),
        ("missing_signature", "invalid_signature"),
    ],
)
async def test_forged_notification_is_refused_and_counted_as_rejected(
    sink: LiveSink, case: str, code: str
) -> None:
    path = f"/notify/{A}"
    body = event()
    match case:
        case "wrong_secret":
            reply = await sink.notify(A, body, secret="not-the-merchants-secret")
        case "tampered_body":
            headers = signing.sign_request(A, SECRET_A, "POST", path, body)
            tampered = body.replace(b'"amount":10000', b'"amount":99999')
            assert tampered != body
            reply = await sink.raw("POST", path, tampered, headers)
        case "stale_timestamp":
            reply = await sink.notify(A, body, timestamp=int(time.time()) - 400)
        case "another_merchants_key":
            # B's valid signature, sent to A's endpoint.
            headers = signing.sign_request(B, SECRET_B, "POST", path, body)
            reply = await sink.raw("POST", path, body, headers)
        case "missing_signature":
            headers = signing.sign_request(A, SECRET_A, "POST", path, body)
            del headers[signing.H_SIGNATURE]
            reply = await sink.raw("POST", path, body, headers)
    assert (reply.status, reply.code) == (401, code)
    received = await sink.received(A)
    assert received["data"] == []
    assert received["rejected"] == 1
    assert received["rejected_by_code"] == {code: 1}
    stats = await sink.stats(A)
    assert (stats["received"], stats["rejected"]) == (0, 1)


async def test_replayed_nonce_is_refused(sink: LiveSink) -> None:
    nonce = "replayed-nonce-0123456789"
    assert signing.NONCE_RE.match(nonce)
    first = await sink.notify(A, nonce=nonce)
    again = await sink.notify(A, nonce=nonce)
    assert first.status == 200
    assert (again.status, again.code) == (401, "replayed_request")
    received = await sink.received(A)
    assert [r["attempt"] for r in received["data"]] == [1]
    assert received["rejected_by_code"] == {"replayed_request": 1}


async def test_notification_for_unknown_merchant_is_refused(sink: LiveSink) -> None:
    reply = await sink.notify("m_nobody")
    assert (reply.status, reply.code) == (401, "invalid_signature")
    stats = (await sink.raw("GET", "/stats")).body
    assert stats["unknown_merchant_rejected"] == 1
    assert "m_nobody" not in stats["merchants"]
    assert (await sink.raw("GET", "/merchants/m_nobody/received")).status == 404


async def test_signed_body_that_is_not_an_event_is_refused(sink: LiveSink) -> None:
    reply = await sink.notify(A, orjson.dumps({"id": "evt_x", "type": "payout.succeeded"}))
    assert (reply.status, reply.code) == (400, "invalid_request")
    received = await sink.received(A)
    assert received["data"] == []
    assert received["rejected_by_code"] == {"invalid_request": 1}


async def test_fail_next_answers_errors_then_recovers_counting_attempts(sink: LiveSink) -> None:
    await sink.behave(A, fail_next=2)
    statuses = [(await sink.notify(A, event("evt_retry"))).status for _ in range(3)]
    assert statuses == [500, 500, 200]
    records = (await sink.received(A))["data"]
    assert [r["attempt"] for r in records] == [1, 2, 3]
    assert [r["answer_status"] for r in records] == [500, 500, 200]
    stats = await sink.stats(A)
    assert (stats["received"], stats["distinct_events"], stats["duplicates"]) == (3, 1, 2)
    assert stats["behaviour"] == {"mode": "ok", "status": 500, "delay_ms": 0, "fail_next": 0}


async def test_error_mode_answers_the_given_status(sink: LiveSink) -> None:
    await sink.behave(A, mode="error", status=503)
    assert (await sink.notify(A)).status == 503
    assert (await sink.notify(A, event("evt_2"))).status == 503
    assert (await sink.notify(B)).status == 200


async def test_slow_mode_delays_the_answer_by_at_least_delay_ms(sink: LiveSink) -> None:
    await sink.behave(A, mode="slow", delay_ms=300)
    started = time.monotonic()
    reply = await sink.notify(A)
    took_s = time.monotonic() - started
    assert reply.status == 200
    assert took_s >= 0.3
    [record] = (await sink.received(A))["data"]
    assert (record["answer_status"], record["answer_delay_ms"]) == (200, 300)


async def test_hang_mode_makes_the_client_time_out(sink: LiveSink) -> None:
    await sink.behave(A, mode="hang")
    with pytest.raises(TimeoutError):
        await sink.notify(A, timeout_s=0.3)
    [record] = (await sink.received(A))["data"]
    assert record["answer_status"] is None


async def test_hanging_merchant_does_not_delay_another(sink: LiveSink) -> None:
    await sink.behave(A, mode="hang")
    hanging = asyncio.create_task(sink.notify(A, timeout_s=30))
    try:
        await wait_until(lambda: sink.received(A), lambda r: len(r["data"]) == 1)
        started = time.monotonic()
        reply = await sink.notify(B)
        took_s = time.monotonic() - started
        assert reply.status == 200
        assert took_s < 0.25
        assert not hanging.done()
    finally:
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging


async def test_shutdown_releases_held_requests() -> None:
    sink_server, port = await start_sink("127.0.0.1", 0, {A: SECRET_A})
    stopped = False
    try:
        async with aiohttp.ClientSession() as http:
            live = LiveSink(f"http://127.0.0.1:{port}", http)
            await live.behave(A, mode="hang")
            hanging = asyncio.create_task(live.notify(A, timeout_s=30))
            await wait_until(lambda: live.received(A), lambda r: len(r["data"]) == 1)
            started = time.monotonic()
            await sink_server.close()
            stopped = True
            assert time.monotonic() - started < 2.0
            # The held request ends: answered 503 at shutdown, or its connection closed.
            try:
                reply = await asyncio.wait_for(hanging, 2.0)
            except aiohttp.ClientError:
                pass
            else:
                assert reply.status == 503
    finally:
        if not stopped:
            await sink_server.close()


async def test_merchant_registered_at_runtime_gets_its_notifications(sink: LiveSink) -> None:
    secret = "runtime-secret-0123456789"
    reply = await sink.put("/merchants/m_new", {"secret": secret})
    assert reply.status == 200, reply.body
    assert reply.body["id"] == "m_new"
    assert "secret" not in reply.body
    assert (await sink.notify("m_new", secret=secret)).status == 200
    assert (await sink.notify("m_new", secret=SECRET_A)).status == 401
    received = await sink.received("m_new")
    assert (len(received["data"]), received["rejected"]) == (1, 1)


@pytest.mark.parametrize(
    "behaviour",
    [
        {"mode": "sometimes"},
        {"mode": "error", "status": 200},
        {"mode": "slow", "delay_ms": -1},
        {"fail_next": -1},
        {"mode": "ok", "colour": "red"},
    ],
)
async def test_bad_behaviour_is_refused_and_the_old_one_kept(
    sink: LiveSink, behaviour: dict[str, Any]
) -> None:
    await sink.behave(A, mode="error", status=502)
    reply = await sink.put(f"/merchants/{A}/behaviour", behaviour)
    assert (reply.status, reply.code) == (400, "invalid_request")
    current = await sink.raw("GET", f"/merchants/{A}/behaviour")
    assert current.body == {"mode": "error", "status": 502, "delay_ms": 0, "fail_next": 0}


async def test_stats_count_duplicates_and_last_sequence_per_object(sink: LiveSink) -> None:
    for body in (
        event("evt_1", "po_1", 1),
        event("evt_2", "po_1", 2),
        event("evt_1", "po_1", 1),  # a redelivery, arriving after a later event
        event("evt_3", "po_2", 1),
    ):
        assert (await sink.notify(A, body)).status == 200
    stats = await sink.stats(A)
    assert stats["received"] == 4
    assert (stats["distinct_events"], stats["duplicates"]) == (3, 1)
    assert stats["out_of_order"] == 1
    assert stats["last_sequence"] == {"po_1": 1, "po_2": 1}
    assert stats["rejected"] == 0
    records = (await sink.received(A))["data"]
    assert [(r["event_id"], r["attempt"]) for r in records] == [
        ("evt_1", 1),
        ("evt_2", 1),
        ("evt_1", 2),
        ("evt_3", 1),
    ]


async def test_healthz(sink: LiveSink) -> None:
    reply = await sink.raw("GET", "/healthz")
    assert (reply.status, reply.body) == (200, {"status": "ok", "service": "webhook-sink"})
