"""Caller mistakes are 4xx with the SPEC 11 error body; never a 5xx."""

from typing import Any

import pytest

from gateway.client import ApiResponse
from tests.harness import LiveGateway


def assert_error(resp: ApiResponse, status: int, code: str, field: str | None = None) -> None:
    assert resp.status == status, (resp.status, resp.body)
    err = resp.json()["error"]
    assert set(err) == {"code", "message", "field", "request_id"}
    assert err["code"] == code
    assert err["message"]
    assert err["request_id"] == resp.headers["X-Request-Id"]
    if field is not None:
        assert err["field"] == field


async def test_malformed_json_is_400(gateway: LiveGateway) -> None:
    resp = await gateway.admin.post("/admin/merchants", body=b'{"name": "x"')
    assert_error(resp, 400, "invalid_request")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "fee_bps": "5"}, "fee_bps"),
        ({"name": "x", "fee_bps": 1.5}, "fee_bps"),
        ({"name": "x", "fee_bps": 10001}, "fee_bps"),
        ({"name": "x", "advance_limit": -1}, "advance_limit"),
        ({"name": "x", "funding_mode": "credit"}, "funding_mode"),
        ({"name": "x", "surprise": 1}, "surprise"),
        ({"name": "x", "rate_limit": {"rps": 1}}, "rate_limit.burst"),
        ({"name": "x", "rate_limit": {"rps": 1, "burst": 1, "x": 1}}, "rate_limit.x"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({}, "name"),
        ({"name": "x", "notify_url": "ftp://x"}, "notify_url"),
        ({"name": "x", "currency": "USD"}, "currency"),
        ({"name": "x", "notify_events": ["payout.nope"]}, "notify_events"),
        ({"name": "x", "notify_events": ["b2b.pending"]}, "notify_events"),  # never written
        ({"name": "x", "notify_events": ["*", "payout.failed"]}, "notify_events"),
        ({"name": "x", "notify_events": []}, "notify_events"),
        ({"name": "x", "notify_events": ["payout.failed"] * 33}, "notify_events"),
        ({"name": "x", "notify_events": "*"}, "notify_events"),
    ],
)
async def test_bad_merchant_fields_are_400_with_field(
    gateway: LiveGateway, body: dict[str, Any], field: str
) -> None:
    resp = await gateway.admin.post("/admin/merchants", body)
    assert_error(resp, 400, "invalid_request", field)


async def test_json_that_is_not_an_object_is_400(gateway: LiveGateway) -> None:
    for raw in (b"[]", b"1", b'"x"', b"null", b""):
        resp = await gateway.admin.post("/admin/merchants", body=raw or b" ")
        assert_error(resp, 400, "invalid_request")


async def test_body_over_one_mebibyte_is_413(gateway: LiveGateway) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    resp = await gateway.admin.post("/admin/merchants", body=big)
    assert_error(resp, 413, "payload_too_large")


async def test_signed_body_over_one_mebibyte_is_413(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant()
    resp = await client.post("/v1/balance", body=b"x" * (1024 * 1024 + 1))
    assert_error(resp, 413, "payload_too_large")


async def test_bad_credit_bodies_are_400(gateway: LiveGateway) -> None:
    m, _ = await gateway.merchant()
    path = f"/admin/merchants/{m['id']}/credits"
    cases = [
        ({"amount": 0, "currency": "CNY", "reference": "r"}, "amount"),
        ({"amount": 10**13 + 1, "currency": "CNY", "reference": "r"}, "amount"),
        ({"amount": 100, "currency": "CNY"}, "reference"),
        ({"amount": 100, "currency": "usd", "reference": "r"}, "currency"),
        ({"amount": 100, "currency": "USD", "reference": "r"}, "currency"),
        ({"amount": True, "currency": "CNY", "reference": "r"}, "amount"),
    ]
    for body, field in cases:
        assert_error(await gateway.admin.post(path, body), 400, "invalid_request", field)


async def test_unknown_route_and_wrong_method_have_error_bodies(gateway: LiveGateway) -> None:
    assert_error(await gateway.admin.get("/admin/nothing-here"), 404, "not_found")
    assert_error(await gateway.admin.get("/nowhere"), 404, "not_found")
    resp = await gateway.admin.request("DELETE", "/admin/merchants")
    assert_error(resp, 405, "method_not_allowed")


async def test_healthz_and_readyz(gateway: LiveGateway) -> None:
    assert (await gateway.admin.get("/healthz")).status == 200
    ready = await gateway.admin.get("/readyz")
    assert ready.status == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_nul_characters_are_400_never_500(gateway: LiveGateway) -> None:
    """PostgreSQL cannot store NUL: refused at the edge, in a query, a path or a JSON body."""
    _, client = await gateway.merchant(1_000_000)

    def nul_refused(resp: ApiResponse) -> None:
        assert_error(resp, 400, "invalid_request")
        assert "NUL" in resp.json()["error"]["message"]

    for path in (
        "/v1/payouts?merchant_order_id=%00",
        "/v1/payouts/po_%00x",
        "/v1/events?cursor=a%00",
    ):
        nul_refused(await client.get(path))
    body = (b'{"merchant_order_id": "nul-1", "amount": 100, "currency": "CNY", "payee": '
            b'{"account_no": "6222020200112233445", "account_name": "Zhang\\u0000San", '
            b'"bank_code": "102100099996", "account_type": "personal"}}')  # fmt: skip
    nul_refused(await client.post("/v1/payouts", body=body))
    meta = body.replace(b"Zhang\\u0000San", b"Zhang San")[:-1] + b', "metadata": {"k": "v\\u0000"}}'
    nul_refused(await client.post("/v1/payouts", body=meta))
    # An escaped backslash followed by "u0000" is just text.
    fine = b'{"name": "back\\\\u0000slash"}'
    made = await gateway.admin.post("/admin/merchants", body=fine)
    assert made.status == 201, made.body
    assert made.json()["name"] == "back\\u0000slash"
