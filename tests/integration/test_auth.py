"""Signed merchant requests: the right signature passes, everything else is a 401 with a code."""

import time

import redis.asyncio as aioredis

from gateway.client import MerchantClient
from protocol import signing
from risk.ratelimit import boot_key
from tests.harness import LiveGateway


async def test_correctly_signed_request_gets_200(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant()
    resp = await client.get("/v1/balance")
    assert resp.status == 200, resp.body
    assert resp.json()["currency"] == "CNY"


async def test_tampered_body_is_invalid_signature(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant()
    body = b'{"x":1}'
    headers = signing.sign_request(m["id"], m["secret"], "GET", "/v1/balance", body)
    resp = await client.request("GET", "/v1/balance", body=b'{"x":2}', headers=headers)
    assert resp.status == 401
    assert resp.error_code == "invalid_signature"


async def test_unknown_merchant_key_is_invalid_signature(gateway: LiveGateway) -> None:
    async with MerchantClient(gateway.url, "m_nobody", "whatever-secret") as client:
        resp = await client.get("/v1/balance")
    assert resp.status == 401
    assert resp.error_code == "invalid_signature"


async def test_wrong_secret_is_invalid_signature(gateway: LiveGateway) -> None:
    m, _ = await gateway.merchant()
    async with MerchantClient(gateway.url, m["id"], m["secret"] + "0") as client:
        resp = await client.get("/v1/balance")
    assert resp.status == 401
    assert resp.error_code == "invalid_signature"


async def test_stale_timestamp_is_refused(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant()
    for offset in (-301, 301):
        headers = signing.sign_request(
            m["id"], m["secret"], "GET", "/v1/balance", b"", timestamp=int(time.time()) + offset
        )
        resp = await client.request("GET", "/v1/balance", headers=headers)
        assert resp.status == 401
        assert resp.error_code == "stale_request"


async def test_timestamp_inside_window_is_accepted(
    gateway: LiveGateway, redis_client: aioredis.Redis
) -> None:
    m, client = await gateway.merchant()
    # Its Redis has been up longer than the window (a fresh one refuses what was signed earlier).
    await redis_client.set(boot_key(m["id"]), int(time.time()) - 300)
    headers = signing.sign_request(
        m["id"], m["secret"], "GET", "/v1/balance", b"", timestamp=int(time.time()) - 290
    )
    resp = await client.request("GET", "/v1/balance", headers=headers)
    assert resp.status == 200


async def test_reused_nonce_is_replayed_request(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant()
    headers = signing.sign_request(m["id"], m["secret"], "GET", "/v1/balance", b"")
    first = await client.request("GET", "/v1/balance", headers=headers)
    second = await client.request("GET", "/v1/balance", headers=headers)
    assert first.status == 200
    assert second.status == 401
    assert second.error_code == "replayed_request"


async def test_nonce_of_a_failed_signature_is_not_burnt(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant()
    good = signing.sign_request(m["id"], m["secret"], "GET", "/v1/balance", b"")
    bad = {**good, signing.H_SIGNATURE: "v1=" + "0" * 64}
    assert (await client.request("GET", "/v1/balance", headers=bad)).status == 401
    assert (await client.request("GET", "/v1/balance", headers=good)).status == 200


async def test_missing_or_malformed_headers_are_invalid_signature(gateway: LiveGateway) -> None:
    m, _ = await gateway.merchant()
    good = signing.sign_request(m["id"], m["secret"], "GET", "/v1/balance", b"")
    variants = []
    for name in good:
        variants.append({k: v for k, v in good.items() if k != name})
    variants.append({**good, signing.H_NONCE: "short"})
    variants.append({**good, signing.H_NONCE: "bad nonce with spaces!!"})
    variants.append({**good, signing.H_TIMESTAMP: "yesterday"})
    variants.append({**good, signing.H_SIGNATURE: good[signing.H_SIGNATURE][3:]})
    variants.append({**good, signing.H_SIGNATURE: good[signing.H_SIGNATURE].upper()})
    async with MerchantClient(gateway.url, "unused", "unused") as raw:
        for headers in variants:
            # Send without the client's own signing: only these headers.
            assert raw._session is not None
            async with raw._session.get(gateway.url + "/v1/balance", headers=headers) as r:
                body = await r.json()
                assert r.status == 401, headers
                assert body["error"]["code"] == "invalid_signature"
                assert body["error"]["request_id"]


async def test_suspended_merchant_is_forbidden(gateway: LiveGateway) -> None:
    m, client = await gateway.merchant()
    resp = await gateway.admin.patch(f"/admin/merchants/{m['id']}", {"status": "suspended"})
    assert resp.status == 200
    resp = await client.get("/v1/balance")
    assert resp.status == 403
    assert resp.error_code == "merchant_suspended"
