"""Merchant B2B payments in (SPEC 7/11): POST /v1/b2b-payments, GET /v1/b2b-payments/{id},
GET /v1/b2b-payments (by merchant_order_id, or a page filtered by status)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import CURSOR, LIMIT, ORDER_ID, Op, path_id
from gateway.api.paging import cursor, found_page, page, page_limit
from gateway.api.params import Param, query
from gateway.api.services import SERVICES
from gateway.b2b.create import create_b2b
from gateway.b2b.model import B2B_PAYMENTS
from gateway.b2b.state import B2BStatus
from gateway.contract.requests import B2BRequest
from gateway.storage import owned
from protocol.errors import InvalidRequest, NotFound, ServiceUnavailable

routes = web.RouteTableDef()

B2B_STATUS = Param("status", {"type": "string", "enum": [s.value for s in B2BStatus]})

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/v1/b2b-payments",
        "Fund the account by a B2B payment",
        "merchant",
        {201: answers.B2BPayment, 200: answers.B2BPayment},
        B2BRequest,
        errors=(409,),
        example={
            "merchant_order_id": "b-1",
            "amount": 100000,
            "currency": "CNY",
            "payer_bank": "102",
        },
    ),
    Op(
        "get",
        "/v1/b2b-payments/{b2b_id}",
        "One B2B payment",
        "merchant",
        {200: answers.B2BPayment},
        params=(path_id("b2b_id"),),
        errors=(404,),
    ),
    Op(
        "get",
        "/v1/b2b-payments",
        "B2B payments: by merchant_order_id, or a page by status",
        "merchant",
        {200: answers.B2BPage},
        params=(ORDER_ID, B2B_STATUS, LIMIT, CURSOR),
    ),
)


@routes.post("/v1/b2b-payments")
async def create(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    req = await read_json(request, B2BRequest)
    if req.currency != merchant.currency:
        raise InvalidRequest(f"currency must be {merchant.currency}", field="currency")
    bank_channels = await services.bank_channel_ids()
    if req.payer_bank not in bank_channels:
        raise InvalidRequest(f"payer_bank must be one of {sorted(bank_channels)}",
                             field="payer_bank")  # fmt: skip
    if services.b2b_bank is None:
        raise ServiceUnavailable("no bank is configured", code="bank_unavailable")
    status, payment = await create_b2b(
        services.pool, services.b2b_bank, merchant.id, req, services.clock.now(),
        services.settings.realtime_clear_delay_s,
    )  # fmt: skip
    return json_response(payment, status=status)


@routes.get("/v1/b2b-payments")
async def list_payments(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    params = query(request)
    order_id = params.text("merchant_order_id")
    if order_id is not None:
        found = await owned.by_order_id(services.pool, B2B_PAYMENTS, merchant.id, order_id)
        return found_page(found)
    limit, status, before = page_limit(request), params.text("status"), cursor(request)
    rows = await services.reads.read_list(
        merchant.id,
        lambda pool: owned.list_newest_first(
            pool, B2B_PAYMENTS, merchant.id, status, before, limit + 1
        ),
    )
    return page(rows, limit)


@routes.get("/v1/b2b-payments/{b2b_id}")
async def get(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    payment = await owned.get(
        services.pool, B2B_PAYMENTS, current_merchant(request).id, request.match_info["b2b_id"]
    )
    if payment is None:
        raise NotFound("no such B2B payment")
    return json_response(payment)
