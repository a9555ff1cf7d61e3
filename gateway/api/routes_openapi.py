"""`GET /openapi.json`: the API described (built once per process; gateway/api/openapi.py)."""

from __future__ import annotations

from functools import cache

import orjson
from aiohttp import web

from gateway.api.openapi import build_document

routes = web.RouteTableDef()


@cache
def document_bytes() -> bytes:
    return orjson.dumps(build_document())


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=document_bytes(), content_type="application/json")
