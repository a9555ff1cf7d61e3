"""Merchant transfers and freezes (SPEC 16): POST/GET /v1/transfers (group-committed),
GET /v1/transfers/{id}; POST/GET /v1/freezes, GET /v1/freezes/{id},
POST /v1/freezes/{id}/unfreeze."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.accounts import freezes, transfers
from gateway.accounts.model import FREEZES, TRANSFERS
from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response, read_body, read_json
from gateway.api.operations import CURSOR, LIMIT, ORDER_ID, Op, path_id
from gateway.api.paging import cursor, found_page, page, page_limit
from gateway.api.params import query
from gateway.api.services import SERVICES
from gateway.contract.requests import FreezeRequest, TransferRequest, UnfreezeRequest
from gateway.storage import owned
from gateway.storage.owned import Owned
from protocol.errors import InvalidRequest, NotFound

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/v1/transfers",
        "Internal transfer (个转个 / 个转商 / 商转个; from_freeze: 债权转让)",
        "merchant",
        {201: answers.Transfer, 200: answers.Transfer},
        TransferRequest,
        errors=(404, 409, 422),
        example={
            "merchant_order_id": "t-1",
            "from_account": "acc_0123456789abcdefghjkmnpqrs",
            "to_account": "acc_0123456789abcdefghjkmnpqrt",
            "amount": 5000,
        },
    ),
    Op(
        "get",
        "/v1/transfers",
        "Transfers: by merchant_order_id, or a page",
        "merchant",
        {200: answers.TransferPage},
        params=(ORDER_ID, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/transfers/{transfer_id}",
        "One transfer",
        "merchant",
        {200: answers.Transfer},
        params=(path_id("transfer_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/freezes",
        "Freeze money of a personal account (冻结)",
        "merchant",
        {201: answers.Freeze, 200: answers.Freeze},
        FreezeRequest,
        errors=(404, 409, 422),
        example={
            "merchant_order_id": "f-1",
            "account_id": "acc_0123456789abcdefghjkmnpqrs",
            "amount": 3000,
            "reason": "loan collateral",
        },
    ),
    Op(
        "get",
        "/v1/freezes",
        "Freezes: by merchant_order_id, or a page",
        "merchant",
        {200: answers.FreezePage},
        params=(ORDER_ID, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/freezes/{freeze_id}",
        "One freeze",
        "merchant",
        {200: answers.Freeze},
        params=(path_id("freeze_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/freezes/{freeze_id}/unfreeze",
        "Give frozen money back (解冻), whole or part; once per merchant_order_id (a replay"
        " answers 200 with the first answer, other fields 409)",
        "merchant",
        {200: answers.Freeze},
        UnfreezeRequest,
        params=(path_id("freeze_id"),),
        errors=(404, 409, 422),
        example={"merchant_order_id": "u-1", "amount": 1000},
    ),
)


@routes.post("/v1/transfers")
async def create_transfer(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    req = await read_json(request, TransferRequest)
    result = await services.transfers.submit(transfers.item(current_merchant(request).id, req))
    if result.error is not None:
        raise result.error
    return json_response(result.transfer, result.http_status)


async def list_objects(request: web.Request, table: Owned) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    order_id = query(request).text("merchant_order_id")
    if order_id is not None:
        found = await owned.by_order_id(services.pool, table, merchant.id, order_id)
        return found_page(found)
    limit, after = page_limit(request), cursor(request)
    rows = await services.reads.read_list(
        merchant.id, lambda pool: owned.list_page(pool, table, merchant.id, after, limit + 1)
    )
    return page(rows, limit)


async def get_object(request: web.Request, table: Owned, name: str) -> web.Response:
    services = request.app[SERVICES]
    found = await owned.get(
        services.pool, table, current_merchant(request).id, request.match_info[f"{name}_id"]
    )
    if found is None:
        raise NotFound(f"no such {name}")
    return json_response(found)


@routes.get("/v1/transfers")
async def list_transfers(request: web.Request) -> web.Response:
    return await list_objects(request, TRANSFERS)


@routes.get("/v1/transfers/{transfer_id}")
async def get_transfer(request: web.Request) -> web.Response:
    return await get_object(request, TRANSFERS, "transfer")


@routes.post("/v1/freezes")
async def create_freeze(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    req = await read_json(request, FreezeRequest)
    async with services.pool.acquire() as conn:
        status, frozen = await freezes.create_freeze(conn, current_merchant(request).id, req)
    return json_response(frozen, status)


@routes.get("/v1/freezes")
async def list_freezes(request: web.Request) -> web.Response:
    return await list_objects(request, FREEZES)


@routes.get("/v1/freezes/{freeze_id}")
async def get_freeze(request: web.Request) -> web.Response:
    return await get_object(request, FREEZES, "freeze")


@routes.post("/v1/freezes/{freeze_id}/unfreeze")
async def unfreeze(request: web.Request) -> web.Response:
    """Body `{"merchant_order_id", "amount"?}`; without `amount` it releases everything the
    freeze still holds. A new unfreeze and a replay both answer 200 with the freeze (as that
    unfreeze left it): the answer is the freeze, not a new object."""
    services = request.app[SERVICES]
    if not (await read_body(request)).strip():
        raise InvalidRequest("merchant_order_id is required", field="merchant_order_id")
    req = await read_json(request, UnfreezeRequest)
    async with services.pool.acquire() as conn:
        released = await freezes.unfreeze(
            conn, current_merchant(request).id, request.match_info["freeze_id"], req
        )
    return json_response(released)
