"""Merchant endpoints (signed with `paygate-hmac-v1`): balance and ledger."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response
from gateway.api.services import SERVICES
from gateway.ledger.balances import read_balance

routes = web.RouteTableDef()


@routes.get("/v1/balance")
async def balance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return json_response(await read_balance(services.pool, current_merchant(request).id))


@routes.post("/v1/noop")
async def noop(request: web.Request) -> web.Response:
    """A signed no-op: the whole request path (signature, nonce + rate limit in Redis,
    middleware) and nothing else — the bare ceiling `paygate bench` compares against."""
    return json_response({"ok": True})
