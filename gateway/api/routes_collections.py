"""Collections (代收, SPEC 16): POST/GET /v1/collections, GET /v1/collections/{id}."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response, read_json
from gateway.api.routes_transfers import get_object, list_objects
from gateway.api.services import SERVICES
from gateway.collection.create import create_collection
from gateway.collection.model import COLLECTIONS
from gateway.contract.requests import CollectionRequest

routes = web.RouteTableDef()


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
