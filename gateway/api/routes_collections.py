"""Collections (代收, SPEC 16): POST/GET /v1/collections, GET /v1/collections/{id}."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import CURSOR, LIMIT, ORDER_ID, Op, path_id
from gateway.api.routes_transfers import get_object, list_objects
from gateway.api.services import SERVICES
from gateway.collection.create import create_collection
from gateway.collection.model import COLLECTIONS
from gateway.contract.requests import CollectionRequest

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/v1/collections",
        "Collection (代收) from a payer's card into an account; advance_on_failure: 公司垫付",
        "merchant",
        {201: answers.Collection, 200: answers.Collection},
        CollectionRequest,
        errors=(404, 409, 422),
        example={
            "merchant_order_id": "c-1",
            "account_id": "acc_0123456789abcdefghjkmnpqrs",
            "amount": 20000,
            "currency": "CNY",
            "payer": {
                "account_no": "6222020200112233445",
                "account_name": "张三",
                "bank_code": "102100099996",
            },
            "advance_on_failure": True,
        },
    ),
    Op(
        "get",
        "/v1/collections",
        "Collections: by merchant_order_id, or a page",
        "merchant",
        {200: answers.CollectionPage},
        params=(ORDER_ID, LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/collections/{collection_id}",
        "One collection",
        "merchant",
        {200: answers.Collection},
        params=(path_id("collection_id"),),
        errors=(404,),
    ),
)


@routes.post("/v1/collections")
async def create(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    req = await read_json(request, CollectionRequest)
    async with services.pool.acquire() as conn:
        status, collection = await create_collection(
            conn, merchant.id, merchant.advance_limit_fen, req
        )
    return json_response(collection, status)


@routes.get("/v1/collections")
async def list_collections(request: web.Request) -> web.Response:
    return await list_objects(request, COLLECTIONS)


@routes.get("/v1/collections/{collection_id}")
async def get_collection(request: web.Request) -> web.Response:
    return await get_object(request, COLLECTIONS, "collection")
