"""`POST /v1/payouts` and `POST /v1/noop` on the lean server (gateway/api/lean_front.py)
answer as aiohttp's path does: the same statuses, error codes, fields and headers for every
case below, with the lean front on and off; every other request, and a payout it cannot read
itself, is handed to aiohttp on the same connection."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from gateway.api.app import build_app
from gateway.client import AdminClient
from gateway.server import LeanSite, start_site
from gateway.settings import Settings
from protocol import signing
from tests.harness import ADMIN_TOKEN, LiveGateway
from tests.payloads import payout_body

PATH = "/v1/payouts"
NOOP = "/v1/noop"
# What may differ between the two fronts' answers: aiohttp's own headers.
FRAMEWORK_HEADERS = {"date", "server", "content-type", "content-length", "connection"}


@asynccontextmanager
async def gateway_with(settings: Settings) -> AsyncIterator[tuple[LiveGateway, LeanSite | None]]:
    runner, port = await start_site(build_app(settings), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    gw = LiveGateway(url=url, settings=settings, admin=AdminClient(url, ADMIN_TOKEN))
    await gw.admin.__aenter__()
    lean = next((s for s in runner.sites if isinstance(s, LeanSite)), None)
    try:
        yield gw, lean
    finally:
        for client in gw.clients:
            await client.close()
        await gw.admin.close()
        await runner.cleanup()


def signed(m: dict[str, Any], body: bytes, path: str = PATH, **kw: Any) -> dict[str, str]:
    headers = signing.sign_request(m["id"], m["secret"], "POST", path, body, **kw)
    return {"Content-Type": "application/json", **headers}


async def cases(gw: LiveGateway) -> dict[str, tuple[int, Any, frozenset[str], str]]:
    """Each case's (status, error code and field or the payout's fields, header names,
    media type)."""
    m, _ = await gw.merchant(credit_fen=10_000_000)
    slow, _ = await gw.merchant(credit_fen=10_000_000, rate_limit={"rps": 1, "burst": 1})
    seen: dict[str, tuple[int, Any, frozenset[str], str]] = {}
    good = orjson.dumps(payout_body(order_id="lean-1"))
    nonce = "a-nonce-used-twice-0123"
    negative = orjson.dumps(payout_body(-1))
    merchant_sends: list[tuple[str, dict[str, Any], bytes, dict[str, str]]] = [
        ("created", m, good, signed(m, good)),
        ("replayed order", m, good, signed(m, good)),
        ("conflicting order", m, orjson.dumps(payout_body(7, order_id="lean-1")),
         signed(m, orjson.dumps(payout_body(7, order_id="lean-1")))),
        ("wrong secret", m, good, signed({**m, "secret": "nope"}, good)),
        ("unknown key", m, good, signed({"id": "m_nobody", "secret": "x"}, good)),
        ("stale", m, good, signed(m, good, timestamp=int(time.time()) - 3_600)),
        ("nonce once", m, orjson.dumps(payout_body(order_id="lean-2")),
         signed(m, orjson.dumps(payout_body(order_id="lean-2")), nonce=nonce)),
        ("nonce twice", m, orjson.dumps(payout_body(order_id="lean-3")),
         signed(m, orjson.dumps(payout_body(order_id="lean-3")), nonce=nonce)),
        ("not json", m, b"{nope", signed(m, b"{nope")),
        ("missing field", m, b'{"amount": 5}', signed(m, b'{"amount": 5}')),
        ("bad amount", m, negative, signed(m, negative)),
        ("text body", m, good, {**signed(m, good), "Content-Type": "text/plain"}),
        ("too big", m, b"x" * (gw.settings.max_body_bytes + 1),
         signed(m, b"x" * (gw.settings.max_body_bytes + 1))),
        ("limited 1", slow, orjson.dumps(payout_body(order_id="s-1")),
         signed(slow, orjson.dumps(payout_body(order_id="s-1")))),
        ("limited 2", slow, orjson.dumps(payout_body(order_id="s-2")),
         signed(slow, orjson.dumps(payout_body(order_id="s-2")))),
    ]  # fmt: skip
    sends = [(name, PATH, body, headers) for name, _, body, headers in merchant_sends]
    sends += [
        ("noop", NOOP, b"{}", signed(m, b"{}", NOOP)),
        ("noop forged", NOOP, b"{}", signed(m, b"{}", PATH)),
    ]
    async with aiohttp.ClientSession() as http:
        for name, path, body, headers in sends:
            async with http.post(gw.url + path, data=body, headers=headers) as resp:
                data = orjson.loads(await resp.read())
                if "error" in data:
                    detail: Any = (data["error"]["code"], data["error"]["field"])
                    assert data["error"]["request_id"] == resp.headers["X-Request-Id"]
                else:
                    detail = sorted(data)
                names = frozenset(h.lower() for h in resp.headers) - FRAMEWORK_HEADERS
                seen[name] = (resp.status, detail, names, resp.content_type)
    return seen


async def test_the_lean_and_the_aiohttp_front_answer_alike(settings: Settings) -> None:
    async with gateway_with(settings.with_(lean_front=True)) as (gw, lean):
        assert lean is not None
        before = lean.lean.requests
        lean_seen = await cases(gw)
        assert lean.lean.requests - before == len(lean_seen) - 1  # "too big": refused unread
    async with gateway_with(settings.with_(lean_front=False)) as (gw, lean):
        assert lean is None
        aiohttp_seen = await cases(gw)
    assert lean_seen == aiohttp_seen
    statuses = {name: seen[0] for name, seen in lean_seen.items()}
    assert statuses == {
        "created": 201, "replayed order": 200, "conflicting order": 409, "wrong secret": 401,
        "unknown key": 401, "stale": 401, "nonce once": 201, "nonce twice": 401,
        "not json": 400, "missing field": 400, "bad amount": 400, "text body": 415,
        "too big": 413, "limited 1": 201, "limited 2": 429, "noop": 200, "noop forged": 401,
    }  # fmt: skip
    assert lean_seen["nonce twice"][1] == ("replayed_request", None)
    assert "retry-after" in lean_seen["limited 2"][2]
    assert {"x-ratelimit-limit", "x-request-id"} <= lean_seen["created"][2]


async def test_lean_answers_carry_a_date_header(gateway: LiveGateway) -> None:
    m, _ = await gateway.merchant()
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.url + NOOP, data=b"{}", headers=signed(m, b"{}", NOOP)) as resp,
    ):
        assert resp.status == 200
        stamp = parsedate_to_datetime(resp.headers["Date"])
    assert abs(stamp.timestamp() - time.time()) < 5


async def test_other_requests_and_unreadable_payouts_go_to_aiohttp_on_the_same_connection(
    settings: Settings,
) -> None:
    async with gateway_with(settings) as (gw, lean):
        assert lean is not None
        m, client = await gw.merchant(credit_fen=1_000_000)
        connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection for all
        async with aiohttp.ClientSession(connector=connector) as http:
            handed = lean.lean.handed_off
            body = orjson.dumps(payout_body(order_id="keep-1"))
            async with http.post(gw.url + PATH, data=body, headers=signed(m, body)) as resp:
                assert resp.status == 201
                payout_id = (await resp.json())["id"]
            assert lean.lean.handed_off == handed  # still the lean server's
            path = f"/v1/payouts/{payout_id}"
            headers = signing.sign_request(m["id"], m["secret"], "GET", path, b"")
            async with http.get(gw.url + path, headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["id"] == payout_id
            assert lean.lean.handed_off == handed + 1

            async def chunks() -> AsyncIterator[bytes]:
                yield body[:10]
                yield body[10:]

        # A chunked body (no Content-Length) is aiohttp's to read: the same replay answer.
        async with (
            aiohttp.ClientSession() as http,
            http.post(gw.url + PATH, data=chunks(), headers=signed(m, body)) as resp,
        ):
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["id"] == payout_id
        assert lean.lean.handed_off == handed + 2
        resp2 = await client.get(path)
        assert resp2.status == 200
